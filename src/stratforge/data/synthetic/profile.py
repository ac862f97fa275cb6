"""The intraday activity and volatility profile, derived from a session and its core hours."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stratforge.data.synthetic.model import MarketModel


@dataclass(frozen=True)
class IntradayProfile:
    """Per-second shape of one trade date, indexed by seconds from the session open.

    ``intensity`` is the expected number of trades per second at a neutral volatility;
    ``variance_share`` sums to one and says how the day's price variance spreads over the
    seconds.
    """

    intensity: np.ndarray
    variance_share: np.ndarray


def intraday_profile(length: int, core_start: int, core_end: int,
                     model: MarketModel) -> IntradayProfile:
    """The profile of a session of ``length`` seconds whose core hours span the given offsets.

    Outside the core the market is quiet (``overnight_intensity``, a little busier in the
    session's first hour); activity ramps up before the core opens, is U-shaped inside the
    core (a burst at the open, a lull at midday, a smaller burst into the close) and decays
    after the core closes. For CME equity-index futures this is quiet Globex overnight trading
    and the 08:30-15:00 Chicago U-shape; for a day session (US equities) the whole session is
    core.
    """
    t = np.arange(length, dtype=np.float64)
    lam = model.overnight_intensity * (
        1.0 + model.session_open_burst * np.exp(-t / model.session_open_seconds))
    mid = model.core_intensity
    before = slice(0, max(core_start, 0))
    inside = slice(max(core_start, 0), min(core_end, length))
    after = slice(min(core_end, length), length)
    lam[before] += model.pre_core_level * mid * np.exp(
        -(core_start - t[before]) / model.pre_core_seconds)
    lam[inside] += mid * (
        1.0 + model.core_open_burst * np.exp(-(t[inside] - core_start) / model.core_open_seconds)
        + model.core_close_burst * np.exp(-(core_end - 1 - t[inside])
                                          / model.core_close_seconds))
    lam[after] += model.post_core_level * mid * np.exp(
        -(t[after] - core_end) / model.post_core_seconds)
    weight = lam ** model.variance_elasticity
    return IntradayProfile(intensity=lam, variance_share=weight / weight.sum())


class ProfileCache:
    """Profiles by (length, core start, core end): a market has only a handful of distinct ones."""

    def __init__(self, model: MarketModel) -> None:
        self._model = model
        self._known: dict[tuple[int, int, int], IntradayProfile] = {}

    def get(self, length: int, core_start: int, core_end: int) -> IntradayProfile:
        """The profile for one trade date's geometry, computed once."""
        key = (int(length), int(core_start), int(core_end))
        if key not in self._known:
            self._known[key] = intraday_profile(*key, self._model)
        return self._known[key]
