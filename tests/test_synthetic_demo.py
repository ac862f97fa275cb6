"""Synthetic markets in the store: the fallback of the main job for every symbol with a
synthetic profile, `stratforge data synth` defaults per instrument, and the ATLAS built on
top (1D base: 1D and 1W)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from stratforge.cli.main import app
from stratforge.data import load_bars
from stratforge.data.atlas import build_atlas
from stratforge.data.demo import (
    SPEC_FILE,
    describe_synthetic_market,
    ensure_symbol_data,
    synthesize_into_store,
    synthetic_spec,
    synthetic_symbols,
)
from stratforge.data.store import AtlasStore
from stratforge.data.synthetic import generate_market
from stratforge.errors import DataError
from stratforge.instruments import BUILTIN_INSTRUMENTS, get_instrument
from stratforge.timeframes import parse_timeframes

runner = CliRunner()


def test_symbols_with_a_synthetic_profile(home):
    assert synthetic_symbols(home) == ["AAPL", "BTCUSD", "EURUSD", "MNQ"]


@pytest.mark.parametrize(("symbol", "base", "days", "timeframes"), [
    ("BTCUSD", "1m", 90, "1m,5m,1h,1D,1W"),
    ("EURUSD", "1h", 520, "1h,4h,1D,1W"),
    ("AAPL", "1D", 2520, "1D,1W"),
])
def test_a_symbol_without_data_gets_its_synthetic_market_and_atlas(home, symbol, base, days,
                                                                  timeframes):
    said = []
    built = ensure_symbol_data(symbol.lower(), home,
                               progress=lambda *args: said.append(args), phase="data")
    assert built is True
    assert said and said[0][0] == "data"
    message = said[0][3]
    assert message == (f"no data for {symbol}: building its synthetic demo market "
                       f"(realistic, {days:,} trading days of {base} bars, seed 7)")
    spec = synthetic_spec(symbol, home)
    assert describe_synthetic_market(spec) == \
        f"synthetic {symbol}, realistic, seed 7, {days:,} trading days of {base} bars"
    assert (spec["resolution"], spec["days"], spec["kind"], spec["seed"]) == \
        (base, days, "realistic", 7)
    assert str(AtlasStore.open(symbol, home).base_timeframe) == base
    report = build_atlas(symbol, parse_timeframes(timeframes), home=home)
    assert base not in report.skipped_timeframes
    stored = load_bars(symbol, base, home=home)
    again = generate_market(get_instrument(symbol, home), seed=7, kind="realistic").bars
    pd.testing.assert_frame_equal(stored, again, check_exact=True)
    for timeframe in timeframes.split(","):
        assert len(load_bars(symbol, timeframe, home=home)) > 0
    assert ensure_symbol_data(symbol, home) is False


def test_a_symbol_without_a_profile_is_a_data_error_naming_symbols_with_data(home):
    synthesize_into_store("BTCUSD", days=2, seed=1, home=home)
    with pytest.raises(DataError, match="no data for ES") as caught:
        ensure_symbol_data("ES", home)
    message = str(caught.value)
    assert "symbols with data: BTCUSD" in message
    assert "MNQ" in message and "AAPL" in message  # the symbols that would build a market


def test_a_user_instrument_may_name_its_synthetic_bar_size(home):
    home.mkdir(parents=True, exist_ok=True)
    (home / "instruments.yaml").write_text(
        "ETHUSD:\n  tick_size: 0.01\n  point_value: 1\n  session: crypto_24x7\n"
        "  reference_price: 3000\n  daily_volatility: 0.04\n  synthetic_timeframe: 1m\n"
        "SOL:\n  tick_size: 0.01\n  point_value: 1\n  session: crypto_24x7\n")
    assert get_instrument("ETHUSD", home).synthetic_timeframe == "1m"
    report = synthesize_into_store("ETHUSD", days=3, seed=4, home=home)
    assert (report.base_timeframe, report.rows_written) == ("1m", 3 * 1440)
    with pytest.raises(DataError, match="no data for SOL"):
        ensure_symbol_data("SOL", home)


def test_store_defaults_follow_the_instrument_and_can_be_overridden(home):
    synthesize_into_store("EURUSD", days=5, seed=3, home=home)
    assert str(AtlasStore.open("EURUSD", home).base_timeframe) == "1h"
    assert len(load_bars("EURUSD", "1h", home=home)) == 5 * 24
    synthesize_into_store("EURUSD", days=5, seed=3, resolution="4h", replace=True, home=home)
    assert str(AtlasStore.open("EURUSD", home).base_timeframe) == "4h"
    spec = json.loads((AtlasStore.open("EURUSD", home).root / SPEC_FILE).read_text())
    assert spec["resolution"] == "4h" and spec["engine"] == "bar_path"


def test_cli_synth_picks_each_instruments_bar_size(home):
    result = runner.invoke(app, ["--home", str(home), "data", "synth", "--symbol", "AAPL",
                                 "--days", "30"])
    assert result.exit_code == 0, result.output
    assert "stored 30 1D bars of AAPL" in result.output
    result = runner.invoke(app, ["--home", str(home), "data", "synth", "--symbol", "BTCUSD",
                                 "--days", "2", "--kind", "planted"])
    assert result.exit_code == 0, result.output
    assert "stored 2,880 1m bars of BTCUSD" in result.output
    assert synthetic_spec("BTCUSD", home)["planted"]["events"]
    result = runner.invoke(app, ["--home", str(home), "data", "synth", "--symbol", "EURUSD",
                                 "--days", "3", "--resolution", "15m"])
    assert result.exit_code == 0, result.output
    assert "15m bars of EURUSD" in result.output
    result = runner.invoke(app, ["--home", str(home), "data", "synth", "--symbol", "MNQ",
                                 "--days", "1", "--resolution", "1D"])
    assert result.exit_code == 1 and "intraday" in result.output


def test_daily_store_and_atlas_keep_the_trade_date_stamps(home):
    synthesize_into_store("AAPL", days=60, seed=9, home=home)
    build_atlas("AAPL", parse_timeframes("1D,1W"), home=home)
    daily, weekly = load_bars("AAPL", "1D", home=home), load_bars("AAPL", "1W", home=home)
    local = daily["ts"].dt.tz_convert(BUILTIN_INSTRUMENTS["AAPL"].session.timezone)
    assert (local.dt.hour == 0).all() and (local.dt.day_of_week < 5).all()
    iso_weeks = {tuple(d.isocalendar())[:2] for d in local.dt.date}
    assert len(weekly) == len(iso_weeks)  # holidays stretch 60 sessions over 12 to 14 weeks
    assert np.isclose(weekly["volume"].sum(), daily["volume"].sum())
