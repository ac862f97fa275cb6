"""Exchange calendars in sessions: holidays, early closes and their early flats, checked against
hand-worked dates and against the exchange_calendars library's own per-date answers."""

from __future__ import annotations

import warnings
from datetime import date, time
from functools import lru_cache

import exchange_calendars
import numpy as np
import pandas as pd
import pytest

from stratforge.errors import ConfigError
from stratforge.instruments import BUILTIN_INSTRUMENTS, get_instrument
from stratforge.sessions import (
    CALENDAR_FIRST,
    CME_GLOBEX,
    CRYPTO_24X7,
    FX_24X5,
    SESSION_PRESETS,
    US_EQUITY_RTH,
    Session,
)

SPY = BUILTIN_INSTRUMENTS["SPY"]
MNQ = BUILTIN_INSTRUMENTS["MNQ"]


def utc(text: str, zone: str) -> pd.Timestamp:
    """A local wall-clock time as a UTC timestamp."""
    return pd.Timestamp(text, tz=zone).tz_convert("UTC")


def day_row(session: Session, day: str) -> dict:
    days = session.trade_days(date.fromisoformat(day), date.fromisoformat(day))
    return {"trading": bool(days.is_trading_day[0]),
            "close": pd.Timestamp(int(days.session_close[0]), tz="UTC"),
            "flat": pd.Timestamp(int(days.flat[0]), tz="UTC")}


@lru_cache
def library(name: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return exchange_calendars.get_calendar(name, start="2004-01-01")


def test_presets_name_their_calendars():
    assert (CME_GLOBEX.calendar, US_EQUITY_RTH.calendar) == ("CMES", "XNYS")
    assert FX_24X5.calendar is None and CRYPTO_24X7.calendar is None
    assert SPY.session.calendar == "XNYS" and MNQ.session.calendar == "CMES"
    # hashable: the simulator caches calendars per session
    assert len({*SESSION_PRESETS.values(), CME_GLOBEX}) == len(SESSION_PRESETS)


def test_us_equity_thanksgiving_2023_holiday_and_early_close():
    new_york = "America/New_York"
    assert day_row(SPY.session, "2023-11-23")["trading"] is False  # Thanksgiving
    friday = day_row(SPY.session, "2023-11-24")
    assert friday["trading"]
    assert friday["close"] == utc("2023-11-24 13:00", new_york)
    assert friday["flat"] == utc("2023-11-24 12:55", new_york)
    monday = day_row(SPY.session, "2023-11-27")  # a regular day is unchanged
    assert (monday["close"], monday["flat"]) == (utc("2023-11-27 16:00", new_york),
                                                 utc("2023-11-27 15:55", new_york))


def test_cme_equity_calendar_july_4th_and_christmas_2023():
    chicago = "America/Chicago"
    # CMES (exchange_calendars 4.x): July 4th 2023 is a session that closes at 12:00 Chicago,
    # Christmas Day 2023 has no session; the regular flat keeps its 5 minutes on the close.
    july4 = day_row(MNQ.session, "2023-07-04")
    assert july4["trading"]
    assert (july4["close"], july4["flat"]) == (utc("2023-07-04 12:00", chicago),
                                               utc("2023-07-04 11:55", chicago))
    assert day_row(MNQ.session, "2023-12-25")["trading"] is False
    assert day_row(MNQ.session, "2023-12-26")["trading"]
    thanksgiving_friday = day_row(MNQ.session, "2023-11-24")
    assert thanksgiving_friday["flat"] == utc("2023-11-24 11:55", chicago)
    # the trade date still rolls at the regular open the evening before
    days = MNQ.session.trade_days(date(2023, 7, 5), date(2023, 7, 5))
    assert pd.Timestamp(int(days.day_start[0]), tz="UTC") == utc("2023-07-04 17:00", chicago)


@pytest.mark.parametrize("symbol", ["SPY", "MNQ"])
def test_trade_dates_match_the_library_day_by_day(symbol):
    session = BUILTIN_INSTRUMENTS[symbol].session
    source = library(session.calendar)
    days = session.trade_days(date(2022, 1, 1), date(2024, 12, 31))
    regular = Session(session.timezone, session.open, session.close, session.flat)
    plain = regular.trade_days(date(2022, 1, 1), date(2024, 12, 31))
    margin = plain.session_close - plain.flat
    early_days = 0
    for k, label in enumerate(pd.DatetimeIndex(days.dates.astype("datetime64[ns]"))):
        is_session = bool(source.is_session(label))
        assert bool(days.is_trading_day[k]) == is_session, label
        if is_session and label in source.early_closes:
            early = source.session_close(label).value
            assert days.session_close[k] == min(early, plain.session_close[k]), label
            assert days.flat[k] == min(plain.flat[k], early - margin[k]), label
            early_days += 1
        else:
            assert days.session_close[k] == plain.session_close[k], label
            assert days.flat[k] == plain.flat[k], label
    assert early_days >= 3


def test_dates_outside_the_calendar_range_follow_the_weekday_rule():
    before = CALENDAR_FIRST.replace(year=CALENDAR_FIRST.year - 5)
    christmas = date(before.year, 12, 25)
    while christmas.weekday() >= 5:
        christmas = christmas.replace(year=christmas.year - 1)
    assert day_row(SPY.session, christmas.isoformat())["trading"]
    assert not day_row(SPY.session, "2023-12-25")["trading"]


def test_twenty_years_of_trading_days_match_the_library():
    SPY.session.trade_days(date(2024, 1, 1), date(2024, 1, 2))  # load once
    days = SPY.session.trade_days(date(2005, 1, 1), date(2024, 12, 31))
    assert days.is_trading_day.sum() == sum(
        1 for d in pd.date_range("2005-01-01", "2024-12-31") if library("XNYS").is_session(d))


def test_yaml_calendar_and_flat_null(home):
    home.mkdir(parents=True)
    (home / "instruments.yaml").write_text(
        "DAX:\n  tick_size: 0.5\n  point_value: 25\n  currency: EUR\n"
        "  session: {timezone: Europe/Berlin, open: '08:00', close: '22:00', flat: '21:55',"
        " calendar: XETR}\n"
        "BTC:\n  tick_size: 0.01\n  point_value: 1\n"
        "  session: {timezone: UTC, open: '00:00', close: '00:00', flat: null,"
        " weekdays: [0, 1, 2, 3, 4, 5, 6]}\n")
    dax = get_instrument("DAX").session
    assert dax.calendar == "XETR"
    assert not day_row(dax, "2023-12-25")["trading"]  # Christmas in Frankfurt
    assert day_row(dax, "2023-12-27")["trading"]
    btc = get_instrument("BTC").session
    assert btc.flat is None and not btc.has_flat and not btc.overnight
    assert "no daily flat" in btc.describe()
    sunday = btc.trade_days(date(2023, 12, 24), date(2023, 12, 24))
    assert sunday.is_trading_day[0] and sunday.flat[0] == np.iinfo(np.int64).max


def test_unknown_calendar_is_named_with_valid_ones(home):
    home.mkdir(parents=True)
    (home / "instruments.yaml").write_text(
        "ACME:\n  tick_size: 0.01\n  point_value: 1\n"
        "  session: {timezone: America/New_York, open: '09:30', close: '16:00',"
        " flat: '15:55', calendar: XNYZ}\n")
    with pytest.raises(ConfigError) as caught:
        get_instrument("ACME")
    message = str(caught.value)
    assert "instruments.yaml: instrument ACME" in message
    assert "unknown exchange calendar 'XNYZ'" in message
    assert "XNYS" in message and "CMES" in message


def test_a_session_without_calendar_trades_every_listed_weekday():
    plain = Session("America/New_York", time(9, 30), time(16, 0), time(15, 55))
    assert day_row(plain, "2023-11-23")["trading"]
    assert day_row(plain, "2023-11-24")["close"] == utc("2023-11-24 16:00", "America/New_York")
