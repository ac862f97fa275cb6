"""Checks of a research run's market block against the bars themselves.

Computed independently of stratforge: the median daily range is high minus low per trade date
(read from the run's finest timeframe, booked by the date in the session's time zone), the
median true range per timeframe is written out with numpy.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from stratforge.data.load import load_bars


def median_true_range(bars: pd.DataFrame) -> float:
    """Median of max(high, previous close) - min(low, previous close) (first bar: high-low)."""
    high, low, close = (bars[c].to_numpy(float) for c in ("high", "low", "close"))
    prev = np.concatenate(([close[0]], close[:-1]))
    tr = np.maximum(high, prev) - np.minimum(low, prev)
    tr[0] = high[0] - low[0]
    return float(np.median(tr))


def median_daily_range(bars: pd.DataFrame, timezone: str, roll_hour: int = 0) -> float:
    """Median over trade dates of the day's high minus its low; a trade date starts at
    ``roll_hour`` local time (17 for CME and FX sessions, which roll in the evening)."""
    local = bars["ts"].dt.tz_convert(timezone) + pd.Timedelta(hours=24 - roll_hour
                                                              if roll_hour else 0)
    day = local.dt.date
    spans = bars.groupby(day).agg(high=("high", "max"), low=("low", "min"))
    return float((spans["high"] - spans["low"]).median())


def check_market_block(run: Path, home: Path, timezone: str, roll_hour: int = 0) -> dict:
    """Assert the run's costs and resolved stops fit its market; returns the summary.

    - the round-trip cost lies between 0.05% and 10% of the median daily range;
    - each traded timeframe's resolved stop range lies within 0.25x-10x of that timeframe's
      median true range (measured here on the in-sample bars, as the run must).
    """
    summary = json.loads((run / "summary.json").read_text())
    market = summary["market"]
    symbol = market["symbol"]
    timeframes = market["timeframes"]
    finest = timeframes[0]
    train_end = pd.Timestamp(summary["data"]["train_end"])
    bars = load_bars(symbol, finest, home=home)
    daily = median_daily_range(bars, timezone, roll_hour)
    cost = market["cost_model"]["round_trip_price"]
    assert 0.0005 * daily <= cost <= 0.10 * daily, (symbol, cost, daily)
    for tf in timeframes:
        frame = load_bars(symbol, tf, end=train_end, home=home)
        tr = median_true_range(frame)
        block = market["per_timeframe"][tf]
        assert np.isclose(block["yardstick_price"], tr, rtol=0.02,
                          atol=market["tick_size"]), (tf, block["yardstick_price"], tr)
        stop = block["resolved_space"]["stop_ticks"]
        assert 0.25 * tr <= stop["low_price"] and stop["high_price"] <= 10 * tr, (tf, stop, tr)
    return summary
