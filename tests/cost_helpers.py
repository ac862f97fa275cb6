"""Bars of two very different instrument kinds for the cost-model tests (MNQ-like 1m near
18,000 with a 0.25 tick; EURUSD-like 1h near 1.08 with a 0.00001 tick), built with numpy
only, on each instrument's tick grid."""

from __future__ import annotations

import numpy as np
import pandas as pd

# symbol -> (bar seconds, first price, tick, typical bar move in ticks)
KINDS: dict[str, tuple[int, float, float, float]] = {
    "MNQ": (60, 18_000.0, 0.25, 8.0),
    "EURUSD": (3600, 1.08, 0.00001, 60.0),
}


def kind_bars(symbol: str, n: int, seed: int = 0, start: str = "2024-03-04 14:30") -> pd.DataFrame:
    """``n`` canonical bars of the instrument kind ``symbol`` (a random walk on the tick
    grid, consecutive bars from ``start`` UTC)."""
    step, first, tick, move = KINDS[symbol]
    rng = np.random.default_rng(seed)
    ts = pd.date_range(start, periods=n, freq=f"{step}s", tz="UTC").as_unit("ns")
    steps = np.round(rng.normal(0.0, move, n))
    close_ticks = np.round(first / tick) + np.cumsum(steps)
    open_ticks = np.concatenate(([close_ticks[0]], close_ticks[:-1]))
    high_ticks = np.maximum(open_ticks, close_ticks) + np.round(rng.exponential(move / 2, n))
    low_ticks = np.minimum(open_ticks, close_ticks) - np.round(rng.exponential(move / 2, n))
    return pd.DataFrame({"ts": ts, "open": open_ticks * tick, "high": high_ticks * tick,
                         "low": low_ticks * tick, "close": close_ticks * tick,
                         "volume": np.full(n, 10.0)})
