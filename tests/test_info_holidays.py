"""``stratforge data info``'s missing-days count skips exchange holidays (and weekends), on an
equity store (XNYS) and a CME futures store (CMES), against hand-listed trading days."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stratforge.data import atlas_info
from stratforge.data.ingest import ingest_files


def minute_bars(days: list[str], zone: str, start: str, end: str, level: float,
                tick: float) -> pd.DataFrame:
    """One-minute bars from local ``start`` to ``end`` on each local calendar day."""
    stamps = pd.DatetimeIndex(np.concatenate([
        pd.date_range(pd.Timestamp(f"{d} {start}", tz=zone), pd.Timestamp(f"{d} {end}", tz=zone),
                      freq="1min").tz_convert("UTC").as_unit("ns").asi8 for d in days]))
    stamps = stamps.tz_localize("UTC")
    n = len(stamps)
    close = level + tick * (np.arange(n) % 7)
    return pd.DataFrame({"ts": stamps, "open": close, "high": close + tick, "low": close - tick,
                         "close": close, "volume": np.ones(n)})


def missing_days(home, tmp_path, symbol: str, frame: pd.DataFrame) -> int:
    path = tmp_path / f"{symbol}.csv"
    out = frame.copy()
    out["ts"] = out["ts"].dt.strftime("%Y-%m-%d %H:%M:%S")
    out.to_csv(path, index=False)
    ingest_files([path], symbol, home=home)
    rows = {row.timeframe: row for row in atlas_info(symbol, home)}
    return rows["1m"].missing_days


# Thanksgiving week 2023: Thursday 23 November is an NYSE holiday, Friday closes at 13:00.
EQUITY_DAYS = ["2023-11-20", "2023-11-21", "2023-11-22", "2023-11-24", "2023-11-27"]
# Christmas 2023 on CME Globex: no session for trade date Monday 25 December; the session of
# trade date Tuesday 26 December opens on Monday evening (bars listed by the Chicago day).
CME_DAYS = ["2023-12-20", "2023-12-21", "2023-12-22", "2023-12-26", "2023-12-27"]


@pytest.mark.parametrize(("symbol", "days", "zone", "hours", "level", "tick"), [
    ("SPY", EQUITY_DAYS, "America/New_York", ("09:30", "12:59"), 450.0, 0.01),
    ("MNQ", CME_DAYS, "America/Chicago", ("08:30", "11:00"), 16_500.0, 0.25),
])
def test_missing_days_skips_the_holiday(home, tmp_path, symbol, days, zone, hours, level, tick):
    frame = minute_bars(days, zone, *hours, level, tick)
    assert missing_days(home, tmp_path, symbol, frame) == 0


@pytest.mark.parametrize(("symbol", "days", "zone", "level", "tick"), [
    ("SPY", EQUITY_DAYS, "America/New_York", 450.0, 0.01),
    ("MNQ", CME_DAYS, "America/Chicago", 16_500.0, 0.25),
])
def test_a_real_trading_day_without_bars_is_still_missing(home, tmp_path, symbol, days, zone,
                                                         level, tick):
    kept = [d for d in days if d != days[1]]
    frame = minute_bars(kept, zone, "09:30", "11:00", level, tick)
    assert missing_days(home, tmp_path, symbol, frame) == 1
