"""Entry fills: which bar and raw price each signal fills at, and which signals may trade.

A signal at bar i is known at the close of bar i. Its fill bar e is i (``close``), i + 1
(``next_open``) or i + d (``delayed_mid`` with ``delay_bars=d``) and its raw fill price is
``close[e]``, ``open[e]`` or ``(open[e] + close[e]) / 2``; slippage is added per parameter set
by the kernels. A signal is dropped (never trades) when its fill bar is the last bar of the
data or beyond it (no bar is left to check exits on), or when any bar from i to e carries the
session flag (the signal comes at or after the flat time, or the position would have to be
opened on or across the bar the session is flattened on).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stratforge.errors import ConfigError

FILL_MODES: tuple[str, ...] = ("close", "next_open", "delayed_mid")


def fill_offset(fill: str, delay_bars: int) -> int:
    """Bars from the signal bar to the fill bar for a fill mode."""
    if fill not in FILL_MODES:
        raise ConfigError(f"fill must be one of {', '.join(FILL_MODES)}, got {fill!r}")
    if isinstance(delay_bars, bool) or not isinstance(delay_bars, int | np.integer):
        raise ConfigError(f"delay_bars must be a whole number >= 1, got {delay_bars!r}")
    if delay_bars < 1:
        raise ConfigError(f"delay_bars must be >= 1 (a signal is known at the close of its "
                          f"bar), got {delay_bars}")
    return {"close": 0, "next_open": 1, "delayed_mid": int(delay_bars)}[fill]


@dataclass(frozen=True)
class EntryPlan:
    """The signals that may open a position, with their fill bars and raw fill prices."""

    signal_bar: np.ndarray  # int64, strictly increasing
    fill_bar: np.ndarray    # int64
    raw_price: np.ndarray   # float64, before slippage
    side: np.ndarray        # float64, +1.0 or -1.0

    def __len__(self) -> int:
        return len(self.signal_bar)


def plan_entries(entries: np.ndarray, sides: np.ndarray, open_: np.ndarray, close: np.ndarray,
                 session_last: np.ndarray, fill: str, delay_bars: int) -> EntryPlan:
    """Fill bar and raw price of every signal that may trade (see module docstring)."""
    offset = fill_offset(fill, delay_bars)
    n = len(close)
    fill_bar = entries + offset
    keep = fill_bar <= n - 2
    flagged_before = np.concatenate(([0], np.cumsum(session_last, dtype=np.int64)))
    safe_fill = np.where(keep, fill_bar, 0)
    keep &= flagged_before[safe_fill + 1] - flagged_before[entries] == 0
    signal_bar = entries[keep]
    fill_bar = fill_bar[keep]
    if fill == "close":
        raw = close[fill_bar]
    elif fill == "next_open":
        raw = open_[fill_bar]
    else:
        raw = (open_[fill_bar] + close[fill_bar]) / 2.0
    return EntryPlan(np.ascontiguousarray(signal_bar, dtype=np.int64),
                     np.ascontiguousarray(fill_bar, dtype=np.int64),
                     np.ascontiguousarray(raw, dtype=np.float64),
                     np.ascontiguousarray(sides[keep], dtype=np.float64))


def velocity_slip_ticks(close: np.ndarray, tick_size: float, velocity_slippage: float,
                        velocity_cap_ticks: float) -> np.ndarray:
    """Velocity slippage in ticks of a fill on each bar (float64, one value per bar).

    A fill on bar j pays ``velocity_slippage`` extra ticks per tick of the last bar completed
    before bar j opened (``|close[j-1] - close[j-2]|``), at most ``velocity_cap_ticks``
    (0 = no cap); the first two bars pay none. All zeros when ``velocity_slippage`` is 0.
    """
    n = len(close)
    extra = np.zeros(n, dtype=np.float64)
    if velocity_slippage <= 0.0 or n < 3:
        return extra
    move_ticks = np.abs(np.diff(np.asarray(close, dtype=np.float64))) / tick_size
    extra[2:] = velocity_slippage * move_ticks[:-1]
    if velocity_cap_ticks > 0.0:
        np.minimum(extra, velocity_cap_ticks, out=extra)
    return extra
