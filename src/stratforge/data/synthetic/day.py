"""One trade date of the synthetic market: volatility state, activity, whole-tick prices, volume.

Prices are whole ticks (int64) until the very end. The close moves only on active seconds, by
``rint(s * z)`` with ``z`` symmetric and independent of everything before it, so the close is
an exact martingale on the tick grid (the planted drift is the only exception).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from stratforge.data.synthetic.model import MarketModel, PlantedRule, TwoBehaviourRule
from stratforge.data.synthetic.planted import PlantedEvent, planted_drift
from stratforge.data.synthetic.profile import IntradayProfile
from stratforge.data.synthetic.two_behaviour import two_behaviour_drift

STREAMS = ("volatility", "activity", "noise", "gap", "wick", "volume", "events")


@dataclass(frozen=True)
class DayPlan:
    """What one trade date looks like before any randomness: geometry and profile."""

    open_s: int            # UTC epoch seconds of the session open
    close_s: int           # UTC epoch seconds of the session close
    core_start: int        # seconds from the open
    core_end: int
    gap_share: float       # share of the daily variance in the gap before the open
    intraday_share: float  # share of the daily variance inside the session
    profile: IntradayProfile


@dataclass(frozen=True)
class Carry:
    """State handed from one trade date to the next."""

    close_ticks: int
    base_ticks: int        # the close without the planted drift: it sets the volatility scale
    day_vol: float | None  # day-level log-volatility (None before the first day)
    minute_vol: float      # last minute-level log-volatility
    close_s: int           # UTC epoch seconds of the previous session close


@dataclass(frozen=True)
class DayBars:
    """One trade date's bars: bar start (UTC epoch seconds), prices in ticks, volume."""

    ts_s: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray


@dataclass(frozen=True)
class RunSettings:
    """Settings shared by every day of one market."""

    seed: int
    heavy_tails: bool          # Student-t increments ("realistic", "planted") or Gaussian
    rule: PlantedRule | TwoBehaviourRule | None   # the planted edge, or None
    resolution_s: int
    daily_volatility: float
    min_ticks: float           # price (in ticks) below which volatility stops shrinking
    model: MarketModel


def day_streams(seed: int, day_index: int) -> dict[str, np.random.Generator]:
    """Independent random streams of one trade date, one per component (see ``STREAMS``).

    Keyed by (day, component) so a day's draws depend neither on how many days are made nor
    on how many numbers another component consumed.
    """
    return {name: np.random.Generator(np.random.PCG64(
        np.random.SeedSequence(seed, spawn_key=(day_index, i)))) for i, name in enumerate(STREAMS)}


def volatility_multiplier(rng: np.random.Generator, carry: Carry, plan: DayPlan,
                          model: MarketModel) -> tuple[np.ndarray, float, float]:
    """Per-minute volatility multipliers (mean square one), the day level, the last minute level.

    Log-volatility is a day-level AR(1) plus a minute-level AR(1) whose state decays over the
    break between sessions.
    """
    minutes = -(-(plan.close_s - plan.open_s) // 60)
    eps = rng.standard_normal(minutes + 1)
    if carry.day_vol is None:
        day, decay = model.day_vol_std * eps[0], 0.0
    else:
        rho = model.day_vol_persistence
        day = rho * carry.day_vol + np.sqrt(1 - rho ** 2) * model.day_vol_std * eps[0]
        decay = 0.5 ** ((plan.open_s - carry.close_s) / 60 / model.minute_vol_halflife)
    phi = 0.5 ** (1 / model.minute_vol_halflife)
    first = decay * carry.minute_vol + np.sqrt(1 - decay ** 2) * model.minute_vol_std * eps[1]
    rest, _ = lfilter([np.sqrt(1 - phi ** 2) * model.minute_vol_std], [1.0, -phi], eps[2:],
                      zi=[phi * first])
    level = np.concatenate(([first], rest))
    return np.exp(day + level - model.log_vol_variance), float(day), float(level[-1])


def symmetric_draws(rng: np.random.Generator, size: int, heavy_tails: bool,
                    df: float) -> tuple[np.ndarray, np.ndarray]:
    """Unit-variance symmetric noise and the standard deviation it was drawn with.

    Gaussian (scale one) or, with ``heavy_tails``, Student-t(df) written as a Gaussian with a
    random variance ``(df - 2) / chi2(df)`` (mean one): given its scale every draw is
    Gaussian, which keeps the Brownian-bridge wicks fair.
    """
    gauss = rng.standard_normal(size)
    if not heavy_tails:
        return gauss, np.ones(size)
    scale = np.sqrt((df - 2) / rng.chisquare(df, size))
    return gauss * scale, scale


def bridge_extremes(rng: np.random.Generator, open_: np.ndarray, close: np.ndarray,
                    sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """High and low (whole ticks) of a Brownian bridge from open to close with std ``sigma``.

    The bridge maximum above the open is ``(x + sqrt(x**2 + 2 E sigma**2)) / 2`` with ``x`` the
    move and ``E`` a unit exponential (the exact law), floored to the tick grid: a price level
    is touched exactly when a Brownian path would have reached it, so a limit order filled by
    a wick expects the close at its own price (no edge from wicks), and high >= max(open,
    close), low <= min(open, close) by construction.
    """
    move = (close - open_).astype(np.float64)
    spread = 2.0 * sigma ** 2 * rng.exponential(size=(2, len(move)))
    up = np.floor((move + np.sqrt(move ** 2 + spread[0])) / 2).astype(np.int64)
    down = np.ceil((move - np.sqrt(move ** 2 + spread[1])) / 2).astype(np.int64)
    return open_ + np.maximum(up, np.maximum(move, 0).astype(np.int64)), \
        open_ + np.minimum(down, np.minimum(move, 0).astype(np.int64))


def simulate_day(plan: DayPlan, carry: Carry, day_index: int,
                 run: RunSettings) -> tuple[DayBars, Carry, list[PlantedEvent]]:
    """Bars of one trade date at ``run.resolution_s``, the carry for the next, planted events."""
    model, rng = run.model, day_streams(run.seed, day_index)
    length = plan.close_s - plan.open_s
    minute_mult, day_vol, minute_vol = volatility_multiplier(rng["volatility"], carry, plan, model)
    mult = np.repeat(minute_mult, 60)[:length]
    intensity = plan.profile.intensity * mult ** model.activity_vol_elasticity
    p_active = -np.expm1(-intensity)
    active = rng["activity"].random(length) < p_active
    daily_ticks = run.daily_volatility * max(carry.base_ticks, run.min_ticks)
    variance = plan.profile.variance_share * (plan.intraday_share * daily_ticks ** 2) * mult ** 2

    at = np.flatnonzero(active)
    sigma = np.sqrt(variance[at] / p_active[at])
    noise, scale = symmetric_draws(rng["noise"], len(at), run.heavy_tails, model.tail_df)
    move = np.rint(sigma * noise).astype(np.int64)
    base_move = int(move.sum())
    events: list[PlantedEvent] = []
    if isinstance(run.rule, TwoBehaviourRule):
        drift, events = two_behaviour_drift(rng["events"], active, variance, plan.open_s,
                                            plan.core_start, plan.core_end, run.rule)
        move += drift[at]
    elif run.rule is not None:
        drift, events = planted_drift(rng["events"], active, variance, plan.open_s,
                                      plan.core_start, plan.core_end, run.rule)
        move += drift[at]
    gap_noise = symmetric_draws(rng["gap"], 1, run.heavy_tails, model.tail_df)[0][0]
    gap = int(np.rint(np.sqrt(plan.gap_share) * daily_ticks * gap_noise))

    close = carry.close_ticks + gap + np.cumsum(move)
    open_ = np.concatenate(([carry.close_ticks + gap], close[:-1])) if len(at) else close
    high, low = bridge_extremes(rng["wick"], open_, close, sigma * scale)
    trades = intensity[at] / p_active[at]
    size = np.minimum(np.abs(move) / np.maximum(sigma, 1e-9), 6.0)  # moves draw volume
    mean_volume = model.contracts_per_trade * trades * (0.5 + 0.5 * size)
    volume = 1.0 + rng["volume"].poisson(np.maximum(mean_volume - 1.0, 0.0))

    bars = aggregate(at, plan.open_s, run.resolution_s, open_, high, low, close, volume)
    last = int(close[-1]) if len(at) else carry.close_ticks
    base = carry.base_ticks + (gap + base_move if len(at) else 0)
    return bars, Carry(last, base, day_vol, minute_vol, plan.close_s), events


def aggregate(offsets: np.ndarray, open_s: int, resolution_s: int, open_: np.ndarray,
              high: np.ndarray, low: np.ndarray, close: np.ndarray,
              volume: np.ndarray) -> DayBars:
    """Per-second bars (at ``offsets`` seconds from the open) folded into ``resolution_s`` bars.

    Buckets are anchored at the session open, like ``stratforge.data.resample``: open first,
    high max, low min, close last, volume sum; seconds without trades give no bar.
    """
    bucket = offsets - offsets % resolution_s
    if resolution_s == 1 or len(bucket) == 0:
        return DayBars(open_s + bucket, open_, high, low, close, volume.astype(np.float64))
    change = np.flatnonzero(bucket[1:] != bucket[:-1]) + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change, [len(bucket)])) - 1
    return DayBars(ts_s=open_s + bucket[starts], open=open_[starts],
                   high=np.maximum.reduceat(high, starts), low=np.minimum.reduceat(low, starts),
                   close=close[ends], volume=np.add.reduceat(volume, starts).astype(np.float64))
