"""Compact per-day storage of generated bars (prices in whole ticks) until assembly."""

from __future__ import annotations

import numpy as np

from stratforge.data.synthetic.day import DayBars

COLUMNS = ("ts_s", "open", "high", "low", "close", "volume")


def storage_dtypes(reference_ticks: int) -> dict[str, type]:
    """Compact per-day storage: int32 ticks unless the price could approach 2**31 ticks."""
    ticks = np.int32 if reference_ticks < 2 ** 27 else np.int64
    return {"ts_s": np.int64, "open": ticks, "high": ticks, "low": ticks, "close": ticks,
            "volume": np.uint32}


def empty_columns() -> dict[str, list]:
    """Per-column lists of per-day arrays, empty."""
    return {name: [] for name in COLUMNS}


def append_day(columns: dict[str, list], bars: DayBars, dtypes: dict[str, type]) -> None:
    """Append one day's bars to ``columns`` in the compact dtypes."""
    for name in COLUMNS:
        columns[name].append(getattr(bars, name).astype(dtypes[name]))
