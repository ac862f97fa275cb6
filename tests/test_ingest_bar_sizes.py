"""Any bar size from 1s to 1D: detection from the bars' spacing, daily bars booked on their
session trade date (exactly where the ATLAS puts a 1D bar it builds), and the refusal of a bar
size other than the store's base.

Expected instants are computed with zoneinfo/datetime from the session's published hours,
never with stratforge's calendar code.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import random_bars
from stratforge.cli.main import app
from stratforge.data import build_atlas, ingest_files, load_bars
from stratforge.data.store import AtlasStore
from stratforge.errors import DataError

NEW_YORK = ZoneInfo("America/New_York")
CHICAGO = ZoneInfo("America/Chicago")
runner = CliRunner()


def _daily_frame(dates: list[date], level: float, tick: float, seed: int) -> pd.DataFrame:
    """Daily OHLCV on a price grid of ``tick`` near ``level`` (one row per date)."""
    rng = np.random.default_rng(seed)
    close = level + tick * np.cumsum(rng.integers(-40, 41, len(dates)))
    open_ = close + tick * rng.integers(-10, 11, len(dates))
    return pd.DataFrame({
        "Date": [d.isoformat() for d in dates],
        "Open": open_, "High": np.maximum(open_, close) + tick * rng.integers(0, 9, len(dates)),
        "Low": np.minimum(open_, close) - tick * rng.integers(0, 9, len(dates)),
        "Close": close, "Volume": rng.integers(1_000, 9_000, len(dates)).astype(float)})


def _business_days(first: str, last: str, holidays: tuple[str, ...] = ()) -> list[date]:
    days = [d.date() for d in pd.bdate_range(first, last)]
    return [d for d in days if d.isoformat() not in holidays]


def _snapshot(home) -> dict[str, bytes]:
    root = home / "atlas"
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != ".lock"}


def _ny_midnight(day: date) -> pd.Timestamp:
    return pd.Timestamp(datetime.combine(day, time(0), tzinfo=NEW_YORK)).tz_convert("UTC")


def _cme_day_start(day: date) -> pd.Timestamp:
    """Trade date ``day`` of CME Globex starts at 17:00 Chicago the evening before."""
    evening = datetime.combine(day - timedelta(days=1), time(17), tzinfo=CHICAGO)
    return pd.Timestamp(evening).tz_convert("UTC")


# --- daily bars ----------------------------------------------------------------------------

def test_daily_equity_dates_are_detected_and_booked_on_their_trade_date(home, tmp_path):
    # across the US daylight-saving change (2019-03-10), without weekends and MLK day
    dates = _business_days("2019-01-02", "2019-04-30", holidays=("2019-01-21", "2019-02-18"))
    frame = _daily_frame(dates, 100.0, 0.01, seed=1)
    path = tmp_path / "SPY.csv"
    frame.to_csv(path, index=False)
    report = ingest_files([path], "SPY")
    assert (report.base_timeframe, report.timeframe_source) == ("1D", "detected")
    stored = load_bars("SPY", "1D")
    assert list(stored["ts"]) == [_ny_midnight(d) for d in dates]
    for ours, theirs in (("open", "Open"), ("high", "High"), ("low", "Low"),
                         ("close", "Close"), ("volume", "Volume")):
        np.testing.assert_array_equal(stored[ours].to_numpy(), frame[theirs].to_numpy())


def test_daily_futures_bars_start_the_evening_before(home, tmp_path):
    dates = _business_days("2024-02-26", "2024-03-22")  # US DST change on 2024-03-10
    path = tmp_path / "mnq_daily.csv"
    _daily_frame(dates, 18_000.0, 0.25, seed=2).to_csv(path, index=False)
    assert ingest_files([path], "MNQ").base_timeframe == "1D"
    assert list(load_bars("MNQ", "1D")["ts"]) == [_cme_day_start(d) for d in dates]


@pytest.mark.parametrize("stamp", ["open", "close"])
def test_zone_stamped_daily_bars_land_on_their_own_trade_date(home, tmp_path, stamp):
    dates = _business_days("2019-03-04", "2019-03-15")
    frame = _daily_frame(dates, 100.0, 0.01, seed=3)
    clock = time(0) if stamp == "open" else time(16)
    frame["Date"] = [datetime.combine(d, clock, tzinfo=NEW_YORK).isoformat() for d in dates]
    path = tmp_path / "spy.csv"
    frame.to_csv(path, index=False)
    ingest_files([path], "SPY")
    assert list(load_bars("SPY", "1D")["ts"]) == [_ny_midnight(d) for d in dates]


def test_the_what_was_seen_goog_file_ingests_as_daily(home, tmp_path):
    (home / "instruments.yaml").parent.mkdir(parents=True, exist_ok=True)
    (home / "instruments.yaml").write_text(
        "GOOG:\n  tick_size: 0.01\n  point_value: 1\n  session: us_equity_rth\n")
    dates = _business_days("2019-01-02", "2019-02-28")
    path = tmp_path / "GOOG.csv"
    _daily_frame(dates, 1_050.0, 0.01, seed=4).to_csv(path, index=False)
    result = runner.invoke(app, ["--home", str(home), "data", "ingest", str(path),
                                 "--symbol", "GOOG"])
    assert result.exit_code == 0, result.output
    assert "bar size 1D, detected from the bars' spacing" in result.output
    assert f"stored {len(dates)} 1D bars of GOOG" in result.output
    # the explicit --timeframe 1D works too (today: "base bars must be intraday")
    result = runner.invoke(app, ["--home", str(home), "data", "ingest", str(path),
                                 "--symbol", "GOOG", "--timeframe", "1D", "--replace"])
    assert result.exit_code == 0, result.output
    assert "bar size 1D, as given" in result.output


def test_daily_bars_of_an_unknown_instrument_say_how_to_add_it(home, tmp_path):
    path = tmp_path / "XYZ.csv"
    _daily_frame(_business_days("2019-01-02", "2019-01-31"), 50.0, 0.01, 5).to_csv(path,
                                                                                  index=False)
    with pytest.raises(DataError, match=r"XYZ is not a known instrument.*instruments\.yaml"):
        ingest_files([path], "XYZ")


def test_two_bars_on_one_trade_date_are_refused(home, tmp_path):
    path = tmp_path / "twice.csv"
    path.write_text("ts,open,high,low,close,volume\n"
                    "2019-01-02T05:00:00Z,1,1,1,1,1\n"   # midnight New York, Jan 2
                    "2019-01-03T04:00:00Z,1,1,1,1,1\n"   # 23:00 New York, still Jan 2
                    "2019-01-04T05:00:00Z,1,1,1,1,1\n")
    with pytest.raises(DataError, match=r"rows 1 and 2.*trade date 2019-01-02"):
        ingest_files([path], "SPY")


def test_weekly_bars_are_refused_with_a_hint(home, tmp_path):
    weeks = [date(2019, 1, 7) + timedelta(days=7 * i) for i in range(10)]
    path = tmp_path / "weekly.csv"
    _daily_frame(weeks, 100.0, 0.01, 6).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"7 days apart.*weekly.*Ingest daily or finer"):
        ingest_files([path], "SPY")


def test_a_timeframe_that_contradicts_the_spacing_is_refused(home, tmp_path):
    path = tmp_path / "daily.csv"
    _daily_frame(_business_days("2019-01-02", "2019-01-31"), 100.0, 0.01, 7).to_csv(
        path, index=False)
    with pytest.raises(DataError, match=r"--timeframe 1m but the bars' spacing says 1D"):
        ingest_files([path], "SPY", timeframe="1m")
    assert not AtlasStore.open("SPY", home).exists


# --- the daily base looks like a derived 1D ------------------------------------------------

def _trade_date(start: pd.Timestamp, zone: ZoneInfo) -> date:
    """The trade date a 1D bar starting at ``start`` stands for: a bar starting in the
    evening (overnight sessions) belongs to the next calendar day."""
    local = start.tz_convert(zone)
    return local.date() + timedelta(days=1) if local.hour >= 12 else local.date()


@pytest.mark.parametrize(("symbol", "zone", "level", "tick"), [
    ("MNQ", CHICAGO, 18_000.0, 0.25),
    ("EURUSD", NEW_YORK, 1.08, 0.00001),
    ("SPY", NEW_YORK, 100.0, 0.01),
])
def test_daily_base_store_equals_the_1d_built_from_intraday_bars(tmp_path, symbol, zone, level,
                                                                 tick):
    bars = random_bars(8, "2024-02-19", "2024-04-13", step_seconds=3600, keep=0.9)
    bars = bars[bars["ts"].dt.day_of_week < 5].reset_index(drop=True)
    scale = level / 100.0
    for column in ("open", "high", "low", "close"):
        bars[column] = (bars[column] * scale / tick).round() * tick
    intraday_home, daily_home = tmp_path / "intraday", tmp_path / "daily"
    hourly = tmp_path / "hourly.csv"
    bars.assign(ts=bars["ts"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")).to_csv(hourly, index=False)
    ingest_files([hourly], symbol, home=intraday_home)
    build_atlas(symbol, home=intraday_home)
    derived = load_bars(symbol, "1D", home=intraday_home)

    # the same days as a vendor's daily file: dates only, one row per trade date
    daily = derived.assign(ts=[_trade_date(t, zone).isoformat() for t in derived["ts"]])
    path = tmp_path / "daily.csv"
    daily.to_csv(path, index=False)
    assert ingest_files([path], symbol, home=daily_home).base_timeframe == "1D"
    pd.testing.assert_frame_equal(load_bars(symbol, "1D", home=daily_home), derived)
    report = build_atlas(symbol, home=daily_home)
    assert report.timeframes == ["1W"]
    pd.testing.assert_frame_equal(load_bars(symbol, "1W", home=daily_home),
                                  load_bars(symbol, "1W", home=intraday_home))


# --- hourly FX and the refusal of another bar size ----------------------------------------

def test_hourly_fx_from_pandas_to_csv_is_detected_as_1h(home, tmp_path):
    hours = pd.date_range("2024-01-01 22:00", "2024-02-23 21:00", freq="1h", tz="UTC")
    local = hours.tz_convert(NEW_YORK)
    open_week = ~((local.day_of_week == 4) & (local.hour >= 17) | (local.day_of_week == 5)
                  | (local.day_of_week == 6) & (local.hour < 17))
    hours = hours[open_week]
    rng = np.random.default_rng(9)
    close = 1.08 + 0.00001 * np.cumsum(rng.integers(-30, 31, len(hours)))
    frame = pd.DataFrame({"Open": close, "High": close + 0.0002, "Low": close - 0.0002,
                          "Close": close, "Volume": 1.0}, index=hours)
    path = tmp_path / "eurusd.csv"
    frame.to_csv(path)  # unnamed index column
    result = runner.invoke(app, ["--home", str(home), "data", "ingest", str(path),
                                 "--symbol", "EURUSD"])
    assert result.exit_code == 0, result.output
    assert "bar size 1h, detected from the bars' spacing" in result.output
    assert "to build 4h, 1D, 1W from the 1h bars" in result.output
    assert list(load_bars("EURUSD", "1h")["ts"]) == list(hours)


def test_daily_bars_into_a_minute_store_are_refused_then_replace_rebuilds(home, tmp_path):
    minute = random_bars(10, "2024-01-02", "2024-01-06")
    minute_path = tmp_path / "minute.csv"
    minute.assign(ts=minute["ts"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")).to_csv(minute_path,
                                                                             index=False)
    ingest_files([minute_path], "MNQ")
    build_atlas("MNQ")
    before = _snapshot(home)
    dates = _business_days("2024-02-01", "2024-03-29")
    daily_path = tmp_path / "daily.csv"
    _daily_frame(dates, 18_000.0, 0.25, 11).to_csv(daily_path, index=False)

    result = runner.invoke(app, ["--home", str(home), "data", "ingest", str(daily_path),
                                 "--symbol", "MNQ"])
    assert result.exit_code == 1
    message = " ".join(result.output.split())
    assert "these bars are 1D bars" in message and "holds 1m bars" in message
    assert "another --symbol" in message and "--replace" in message
    assert _snapshot(home) == before

    report = ingest_files([daily_path], "MNQ", replace=True)
    assert (report.base_timeframe, report.rebuilt_from) == ("1D", "1m")
    store = AtlasStore.open("MNQ", home)
    assert [str(t) for t in store.timeframes()] == ["1D"]
    assert "built" not in store.manifest
    assert list(load_bars("MNQ", "1D")["ts"]) == [_cme_day_start(d) for d in dates]


def test_rebuilding_a_synthetic_store_drops_its_specification(home, tmp_path):
    from stratforge.data.demo import synthesize_into_store, synthetic_spec

    synthesize_into_store("MNQ", days=3, seed=1, resolution="1m")
    assert synthetic_spec("MNQ") is not None
    path = tmp_path / "daily.csv"
    _daily_frame(_business_days("2024-02-01", "2024-02-29"), 18_000.0, 0.25, 12).to_csv(
        path, index=False)
    ingest_files([path], "MNQ", replace=True)
    assert synthetic_spec("MNQ") is None   # real daily bars are not the synthetic market
    assert store_files_are_daily(home)


def store_files_are_daily(home) -> bool:
    root = home / "atlas" / "MNQ"
    return {p.parent.name for p in root.rglob("*.parquet")} == {"1D"}
