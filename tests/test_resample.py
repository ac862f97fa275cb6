"""Resampling against an independent pandas + zoneinfo reference."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from conftest import random_bars
from stratforge.data.resample import BarArrays, resample_bars, resample_chain
from stratforge.instruments import get_instrument
from stratforge.timeframes import ATLAS_TIMEFRAMES, parse_timeframe


def _reference_buckets(ts: pd.Series, symbol: str, timeframe: str) -> pd.Series:
    """Bar start of every timestamp, computed row by row from the session's definition."""
    session = get_instrument(symbol).session
    zone = ZoneInfo(session.timezone)
    overnight = session.open >= session.close
    tf = parse_timeframe(timeframe)

    def at(day, clock: time) -> int:
        local = datetime.combine(day, clock, tzinfo=zone)
        return int(pd.Timestamp(local).tz_convert("UTC").value)

    out = []
    for stamp in ts:
        local = stamp.tz_convert(zone).to_pydatetime()
        if overnight:
            roll = datetime.combine(local.date(), session.open, tzinfo=zone)
            trade_date = local.date() + timedelta(days=1) if local >= roll else local.date()
            day_start = at(trade_date - timedelta(days=1), session.open)
            anchor = day_start
        else:
            trade_date = local.date()
            day_start = at(trade_date, time(0))
            anchor = at(trade_date, session.open)
        value = stamp.value
        if tf.intraday:
            step = tf.seconds * 10**9
            out.append(max(anchor + (value - anchor) // step * step, day_start))
        elif tf.name == "1D":
            out.append(day_start)
        else:
            monday = trade_date - timedelta(days=trade_date.weekday())
            out.append(at(monday - timedelta(days=1), session.open) if overnight
                       else at(monday, time(0)))
    return pd.Series(out, index=ts.index)


def _reference_resample(bars: pd.DataFrame, symbol: str, timeframe: str) -> pd.DataFrame:
    keys = _reference_buckets(bars["ts"], symbol, timeframe)
    grouped = bars.groupby(keys.to_numpy(), sort=True)
    out = grouped.agg(open=("open", "first"), high=("high", "max"), low=("low", "min"),
                      close=("close", "last"), volume=("volume", "sum"))
    out.insert(0, "ts", pd.to_datetime(out.index.to_numpy(), utc=True))
    return out.reset_index(drop=True)


@pytest.mark.parametrize(("symbol", "seed"), [("MNQ", 1), ("SPY", 2), ("EURUSD", 3)])
@pytest.mark.parametrize("timeframe", ["5m", "1h", "4h", "1D", "1W"])
def test_resample_matches_reference_across_dst_and_gaps(symbol, seed, timeframe):
    # spans the US spring-forward (2024-03-10) and the EU one (2024-03-31)
    bars = random_bars(seed, "2024-02-26", "2024-04-08", step_seconds=60, keep=0.15)
    got = resample_bars(bars, parse_timeframe(timeframe), get_instrument(symbol).session)
    expected = _reference_resample(bars, symbol, timeframe)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)


def test_resample_autumn_dst_change():
    bars = random_bars(4, "2024-10-28", "2024-11-12", step_seconds=300, keep=0.6)
    session = get_instrument("MNQ").session
    for tf in ("1h", "4h", "1D", "1W"):
        got = resample_bars(bars, parse_timeframe(tf), session)
        pd.testing.assert_frame_equal(got, _reference_resample(bars, "MNQ", tf),
                                      check_dtype=False)


def test_cme_daily_bar_starts_at_1700_chicago_not_utc_midnight():
    ts = pd.to_datetime(["2024-01-08 22:59", "2024-01-08 23:00", "2024-01-09 15:00"], utc=True)
    bars = pd.DataFrame({"ts": ts, "open": [1.0, 2, 3], "high": [1.0, 2, 3],
                         "low": [1.0, 2, 3], "close": [1.0, 2, 3], "volume": [1.0, 1, 1]})
    daily = resample_bars(bars, parse_timeframe("1D"), get_instrument("MNQ").session)
    # 22:59 UTC = 16:59 CST belongs to Jan 8; 23:00 UTC = 17:00 CST opens trade date Jan 9
    assert list(daily["ts"]) == list(pd.to_datetime(["2024-01-07 23:00", "2024-01-08 23:00"],
                                                    utc=True))
    assert list(daily["open"]) == [1.0, 2.0]
    assert list(daily["close"]) == [1.0, 3.0]
    assert list(daily["volume"]) == [1.0, 2.0]


def test_chain_equals_direct_resampling_from_base():
    bars = random_bars(5, "2024-03-01", "2024-03-20", step_seconds=1, keep=0.02, drop_days=2)
    session = get_instrument("MNQ").session
    base = BarArrays.from_frame(bars)
    chained = resample_chain(base, ATLAS_TIMEFRAMES[0], ATLAS_TIMEFRAMES[1:], session)
    for tf, got in chained.items():
        direct = resample_bars(bars, tf, session)
        pd.testing.assert_frame_equal(got.to_frame(), direct)


def test_empty_buckets_produce_no_bar_and_volume_is_conserved():
    bars = random_bars(6, "2024-05-01", "2024-05-10", step_seconds=60, keep=0.05)
    session = get_instrument("MNQ").session
    for tf in ("15m", "1h", "1D"):
        out = resample_bars(bars, parse_timeframe(tf), session)
        assert out["volume"].sum() == pytest.approx(bars["volume"].sum())
        assert (out["volume"] > 0).all()
        assert out["ts"].is_monotonic_increasing and out["ts"].is_unique
        assert (out["high"] >= np.maximum(out["open"], out["close"])).all()


def test_bar_end_times_never_precede_the_last_member_bar():
    bars = random_bars(7, "2024-02-20", "2024-04-10", step_seconds=60, keep=0.2)
    session = get_instrument("MNQ").session
    base = BarArrays.from_frame(bars)
    from stratforge.data.resample import bar_end_times, bucket_starts, calendar_for

    calendar = calendar_for(base.ts, session)
    for tf in ("5m", "4h", "1D", "1W"):
        timeframe = parse_timeframe(tf)
        starts = bucket_starts(base.ts, timeframe, calendar)
        ends = bar_end_times(starts, timeframe, session)
        # every member bar (1 minute long) has finished by its bucket's end time
        assert (base.ts + 60 * 10**9 <= ends).all()
        assert (ends > starts).all()


@pytest.mark.parametrize(("symbol", "seed"), [("MNQ", 11), ("SPY", 12), ("EURUSD", 13)])
def test_weekly_from_a_daily_base_matches_reference(symbol, seed):
    """1W built from daily base bars (each at its trade date's start, across a DST change)
    equals the reference, and equals 1W built from the intraday bars behind them."""
    session = get_instrument(symbol).session
    intraday = random_bars(seed, "2024-02-05", "2024-04-20", step_seconds=1800, keep=0.5)
    daily = resample_bars(intraday, parse_timeframe("1D"), session)
    daily_ref = _reference_resample(intraday, symbol, "1D")
    pd.testing.assert_frame_equal(daily, daily_ref, check_dtype=False)
    weekly = resample_bars(daily, parse_timeframe("1W"), session)
    pd.testing.assert_frame_equal(weekly, _reference_resample(daily, symbol, "1W"),
                                  check_dtype=False)
    pd.testing.assert_frame_equal(weekly, resample_bars(intraday, parse_timeframe("1W"),
                                                        session))
    chained = resample_chain(BarArrays.from_frame(daily), parse_timeframe("1D"),
                             [parse_timeframe("1W")], session)
    pd.testing.assert_frame_equal(chained[parse_timeframe("1W")].to_frame(), weekly)
