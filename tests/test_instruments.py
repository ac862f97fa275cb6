"""Instrument registry, user YAML instruments, sessions and timeframes."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from stratforge.errors import ConfigError
from stratforge.instruments import get_instrument, list_instruments
from stratforge.timeframes import parse_timeframe, parse_timeframes


def test_builtin_specs():
    mnq = get_instrument("mnq")
    assert (mnq.tick_size, mnq.point_value, mnq.currency) == (0.25, 2.0, "USD")
    assert {"MNQ", "NQ", "MES", "ES", "EURUSD", "SPY", "EQUITY"} <= set(list_instruments())
    assert get_instrument("ES").point_value == 50.0


def test_unknown_symbol_lists_known_ones(home):
    with pytest.raises(ConfigError, match=r"unknown instrument 'XYZ'; known: .*ES.*MNQ.*"
                                          r"instruments\.yaml"):
        get_instrument("XYZ")


def test_user_yaml_adds_and_overrides(home):
    home.mkdir(parents=True)
    (home / "instruments.yaml").write_text(
        "CL:\n  tick_size: 0.01\n  point_value: 1000\n  session: cme_globex\n"
        "DAX:\n  tick_size: 0.5\n  point_value: 25\n  currency: EUR\n"
        "  session: {timezone: Europe/Berlin, open: '08:00', close: '22:00', flat: '21:55'}\n"
        "MNQ:\n  tick_size: 0.25\n  point_value: 2.5\n")
    assert get_instrument("cl").point_value == 1000
    dax = get_instrument("DAX")
    assert dax.session.timezone == "Europe/Berlin" and not dax.session.overnight
    assert get_instrument("MNQ").point_value == 2.5


@pytest.mark.parametrize(("body", "message"), [
    ("CL:\n  tick_size: -1\n  point_value: 10\n", r"instrument CL: tick_size"),
    ("CL:\n  tick_size: 1\n  point_value: 10\n  session: lunar\n", r"unknown session preset"),
    ("CL:\n  tick_size: 1\n  point_value: 10\n  sesion: cme_globex\n", r"sesion"),
    ("CL: [1, 2\n", r"not valid YAML"),
    ("CL:\n  tick_size: 1\n  point_value: 1\n  session: {timezone: Mars/Base, open: '08:00', "
     "close: '16:00', flat: '15:00'}\n", r"not a known IANA zone"),
])
def test_bad_user_yaml_is_named(home, body, message):
    home.mkdir(parents=True)
    (home / "instruments.yaml").write_text(body)
    with pytest.raises(ConfigError, match=message) as caught:
        get_instrument("CL")
    assert "instruments.yaml" in str(caught.value) or "IANA" in str(caught.value)


def test_cme_calendar_boundaries_follow_chicago_time():
    days = get_instrument("MNQ").session.trade_days(date(2024, 3, 8), date(2024, 3, 11))
    utc = [pd.Timestamp(v, tz="UTC") for v in days.day_start]
    # 17:00 CST = 23:00 UTC before the spring change, 17:00 CDT = 22:00 UTC after it
    assert utc[0] == pd.Timestamp("2024-03-07 23:00", tz="UTC")
    assert utc[3] == pd.Timestamp("2024-03-10 22:00", tz="UTC")
    assert list(days.is_trading_day) == [True, False, False, True]
    assert pd.Timestamp(days.flat[3], tz="UTC") == pd.Timestamp("2024-03-11 20:55", tz="UTC")


def test_timeframes_parse_and_order():
    assert [str(t) for t in parse_timeframes("1W,1m,1s,4h,1d")] == ["1s", "1m", "4h", "1D", "1W"]
    assert parse_timeframe("15m").seconds == 900
    for bad in ("7m", "2D", "abc", "0s", "25h"):
        with pytest.raises(ConfigError, match="timeframe"):
            parse_timeframe(bad)
