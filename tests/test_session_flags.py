"""The simulator's session flags: early-close flats, sessions without a daily flat (24/7 crypto,
``flat: null``) and daily bars, each on hand-worked bars of more than one instrument kind."""

from __future__ import annotations

from datetime import time

import numpy as np
import pandas as pd
import pytest

from reference_simulator import session_flags as reference_flags
from stratforge.instruments import BUILTIN_INSTRUMENTS, Instrument
from stratforge.sessions import CRYPTO_24X7, Session
from stratforge.sim import ExitParams, simulate
from stratforge.sim.session_flags import is_daily_or_coarser, session_last_flags

SPY = BUILTIN_INSTRUMENTS["SPY"]
MNQ = BUILTIN_INSTRUMENTS["MNQ"]
EURUSD = BUILTIN_INSTRUMENTS["EURUSD"]
BTC = Instrument("BTCUSD", 0.01, 1.0, "USD", CRYPTO_24X7, "test crypto, 24/7")
# an FX-like market whose YAML says ``flat: null``: held across trade dates
FX_NO_FLAT = Instrument("EURUSD_HOLD", 0.00001, 100_000.0, "USD",
                        Session("America/New_York", time(17, 0), time(17, 0), None))


def bars_at(stamps: pd.DatetimeIndex, level: float, tick: float, seed: int = 0) -> pd.DataFrame:
    """Random-walk bars on the tick grid at the given UTC start times."""
    rng = np.random.default_rng(seed)
    n = len(stamps)
    close = level + tick * np.cumsum(rng.integers(-3, 4, n))
    open_ = np.concatenate(([level], close[:-1]))
    return pd.DataFrame({"ts": stamps.tz_convert("UTC").as_unit("ns"), "open": open_,
                         "high": np.maximum(open_, close) + tick,
                         "low": np.minimum(open_, close) - tick, "close": close,
                         "volume": np.ones(n)})


def local_minutes(start: str, end: str, zone: str) -> pd.DatetimeIndex:
    return pd.date_range(pd.Timestamp(start, tz=zone), pd.Timestamp(end, tz=zone), freq="1min")


def stamps_of(bars: pd.DataFrame) -> np.ndarray:
    return bars["ts"].array.asi8


def flagged_local(bars: pd.DataFrame, flags: np.ndarray, zone: str) -> list[str]:
    return [f"{t:%m-%d %H:%M}" for t in bars["ts"][flags].dt.tz_convert(zone)]


@pytest.mark.parametrize(("instrument", "zone", "day", "flat_bar"), [
    # US equities close 13:00 New York on 2023-11-24: flat 12:55, so 12:54 is the last bar
    (SPY, "America/New_York", "2023-11-24", "11-24 12:54"),
    # CME equity futures close 12:00 Chicago on 2023-07-04 (CMES): flat 11:55
    (MNQ, "America/Chicago", "2023-07-04", "07-04 11:54"),
])
def test_early_close_flags_the_bar_before_the_early_flat(instrument, zone, day, flat_bar):
    stamps = local_minutes(f"{day} 10:00", f"{day} 12:59", zone)
    bars = bars_at(stamps, 450.0 if instrument is SPY else 15_000.0, instrument.tick_size)
    flags = session_last_flags(stamps_of(bars), instrument.session)
    first = flagged_local(bars, flags, zone)[0]
    assert first == flat_bar
    assert flags.tolist() == reference_flags([int(x) for x in stamps_of(bars)],
                                             instrument.session)
    trades = simulate(bars, np.array([0]), np.array([1]), ExitParams(), instrument=instrument)
    exit_time = trades.iloc[0]["exit_time"].tz_convert(zone)
    assert (f"{exit_time:%m-%d %H:%M}", trades.iloc[0]["reason"]) == (flat_bar, "session")


def test_regular_day_still_flags_at_the_regular_flat():
    stamps = local_minutes("2023-11-27 15:30", "2023-11-27 15:59", "America/New_York")
    bars = bars_at(stamps, 450.0, 0.01)
    flags = session_last_flags(stamps_of(bars), SPY.session)
    assert flagged_local(bars, flags, "America/New_York")[0] == "11-27 15:54"


@pytest.mark.parametrize(("instrument", "freq", "level"), [
    (BTC, "1min", 42_000.0),         # crypto 24/7, one-minute bars through a weekend
    (FX_NO_FLAT, "1h", 1.08),        # FX hours with flat: null, hourly bars over a week
])
def test_no_daily_flat_gives_no_flags_and_holds_across_days(instrument, freq, level):
    stamps = pd.date_range("2023-12-29 20:00", "2024-01-02 04:00", freq=freq, tz="UTC")
    if instrument is FX_NO_FLAT:
        stamps = stamps[stamps.day_of_week < 5]
    bars = bars_at(stamps, level, instrument.tick_size, seed=3)
    flags = session_last_flags(stamps_of(bars), instrument.session)
    assert not flags.any()
    assert reference_flags([int(x) for x in stamps_of(bars)], instrument.session) == \
        [False] * len(bars)
    trades = simulate(bars, np.array([0]), np.array([-1]), ExitParams(), instrument=instrument)
    # held through every midnight and the weekend: only the end of the data ends it
    assert (trades.iloc[0]["exit_bar"], trades.iloc[0]["reason"]) == (len(bars) - 1, "end")


@pytest.mark.parametrize(("instrument", "level"), [
    (SPY, 450.0),        # daily equity bars at each trade date's start (New York midnight)
    (MNQ, 15_000.0),     # daily futures bars at 17:00 Chicago
    (EURUSD, 1.08),      # daily FX bars at 17:00 New York
])
def test_daily_bars_get_no_flags_and_hold_across_days(instrument, level):
    session = instrument.session
    days = session.trade_days(pd.Timestamp("2024-02-26").date(),
                              pd.Timestamp("2024-04-05").date())
    starts = days.day_start[days.is_trading_day]  # includes a DST change (10 March)
    bars = bars_at(pd.DatetimeIndex(starts.view("datetime64[ns]"), tz="UTC"), level,
                   instrument.tick_size, seed=5)
    assert is_daily_or_coarser(stamps_of(bars))
    assert not session_last_flags(stamps_of(bars), session).any()
    assert not session_last_flags(stamps_of(bars)[:2], session, bar_seconds=86_400).any()
    weekly = stamps_of(bars)[::5]
    assert not session_last_flags(weekly, session).any()
    trades = simulate(bars, np.array([1]), np.array([1]), ExitParams(), instrument=instrument)
    assert (trades.iloc[0]["exit_bar"], trades.iloc[0]["reason"]) == (len(bars) - 1, "end")
    held = simulate(bars, np.array([1]), np.array([1]), ExitParams(max_hold_bars=3),
                    instrument=instrument)
    assert (held.iloc[0]["exit_bar"], held.iloc[0]["reason"]) == (4, "timeout")


@pytest.mark.parametrize(("instrument", "freq"), [(EURUSD, "12h"), (SPY, "4h")])
def test_coarse_intraday_bars_still_flag(instrument, freq):
    # the coarsest intraday steps stay intraday: a position is flat by the day's end
    stamps = pd.date_range("2024-03-04 00:00", "2024-03-09 00:00", freq=freq, tz="UTC")
    ts = stamps.as_unit("ns").asi8
    assert not is_daily_or_coarser(ts)
    flags = session_last_flags(ts, instrument.session)
    assert flags.any()
    assert flags.tolist() == reference_flags([int(x) for x in ts], instrument.session)
    # a caller that knows the bar size may say so
    assert not session_last_flags(ts, instrument.session, bar_seconds=86_400).any()
