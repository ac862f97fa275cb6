"""The trainer's costs and design space: every simulated trade pays the instrument's cost
model (overridable, never searched), and the day's design space is scaled by a yardstick
measured on earlier days only. On an MNQ-like and an EURUSD-like market (where the old fixed
``cost_points`` of 0.5 was 50,000 USD a trade)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cost_helpers import kind_bars
from stratforge.cli.train_command import cost_model_line
from stratforge.costs import COST_FIELDS, LEGACY_COST_NAMES
from stratforge.errors import ConfigError
from stratforge.instruments import get_instrument
from stratforge.search.space import measure_yardstick
from stratforge.sim.explain import cost_model_facts
from stratforge.trainer.config import make_train_config
from stratforge.trainer.day import Gate, day_space, day_yardstick, run_day
from stratforge.trainer.report import render_training_report

# Hand-computed round trips of the built-in models (one contract / lot, no fee):
# MNQ: spread 1 tick + 2 fills x 1 tick slippage = 3 x 0.25 = 0.75 points x 2 USD = 1.50 USD,
#      plus 2 x 0.62 USD commission = 2.74 USD.
# EURUSD: spread 8 ticks + 2 x 2 ticks = 12 x 0.00001 = 0.00012 x 100,000 = 12.00 USD,
#      plus 2 x 3.50 USD commission = 19.00 USD.
ROUND_TRIP = {"MNQ": (0.75, 2.74), "EURUSD": (0.00012, 19.0)}


@pytest.mark.parametrize("symbol", ["MNQ", "EURUSD"])
def test_config_charges_the_instruments_cost_model_with_overrides(symbol):
    instrument = get_instrument(symbol)
    config = make_train_config(symbol=symbol)
    assert config.costs_for(instrument) == instrument.costs
    tick, value = instrument.tick_size, instrument.point_value
    price_rt, money_rt = ROUND_TRIP[symbol]
    assert config.costs_for(instrument).round_trip_price(tick, 1.0) == pytest.approx(price_rt)
    assert config.costs_for(instrument).round_trip_currency(tick, value, 1.0) == \
        pytest.approx(money_rt)
    cheap = make_train_config(symbol=symbol, spread_ticks=0, slippage_ticks=0, commission=1.5)
    # no spread or slippage: the round trip is two commissions
    assert cheap.costs_for(instrument).round_trip_currency(tick, value, 1.0) == \
        pytest.approx(3.0)
    assert cheap.costs_for(instrument).fee_bps == instrument.costs.fee_bps


def test_config_refuses_the_old_cost_points_and_bad_costs():
    with pytest.raises(ConfigError, match="cost_points"):
        make_train_config(cost_points=0.5)
    with pytest.raises(ConfigError, match="spread_ticks"):
        make_train_config(spread_ticks=-1)


def _gate(entries: np.ndarray) -> Gate:
    sides = np.where(np.arange(len(entries)) % 2 == 0, 1, -1).astype(np.int64)
    return Gate(entries.astype(np.int64), sides, ["s"] * len(entries), pd.DataFrame(),
                len(entries))


@pytest.mark.parametrize("symbol", ["MNQ", "EURUSD"])
def test_every_trainer_trade_pays_the_cost_models_round_trip(symbol):
    instrument = get_instrument(symbol)
    bars = kind_bars(symbol, 240, seed=11)
    gate = _gate(np.arange(4, 230, 6))
    yardstick = measure_yardstick(bars.iloc[:60], instrument.tick_size)
    space = day_space(yardstick, 10, 1.0, 1.0)
    config = make_train_config(symbol=symbol, iterations=6, min_trades=1)
    # yesterday's parameters: timeouts only, so each trade's bars do not depend on costs
    result = run_day(bars, gate, space, config, instrument=instrument, day_index=3,
                     previous={"max_hold_bars": 3.0}, yardstick_ticks=yardstick)
    oos = result.oos_trades
    assert len(oos) > 10 and set(oos["reason"]) <= {"timeout", "session", "end"}
    close = bars["close"].to_numpy()
    gross = ((close[oos["exit_bar"]] - close[oos["entry_bar"]]) * oos["side"]
             * instrument.point_value)
    price_rt, money_rt = ROUND_TRIP[symbol]
    np.testing.assert_allclose(gross - oos["pnl"], money_rt, rtol=1e-9, atol=1e-6)
    # the day's chosen design: every trade pays the spread once in price
    trades = result.trades
    assert len(trades) > 0
    spread = instrument.costs.spread_ticks * instrument.tick_size
    np.testing.assert_allclose(
        (trades["exit_price"] - trades["entry_price"]) * trades["side"] - trades["pnl_points"],
        spread, atol=1e-9)
    # designs are exit parameters only: no cost is ever a searched dimension
    assert not set(result.params) & (set(COST_FIELDS) | set(LEGACY_COST_NAMES))
    assert price_rt == pytest.approx(
        instrument.costs.round_trip_price(instrument.tick_size, float(close[0])))


@pytest.mark.parametrize("symbol", ["MNQ", "EURUSD"])
def test_day_yardstick_is_measured_on_earlier_days_only(symbol):
    instrument = get_instrument(symbol)
    bars = kind_bars(symbol, 100, seed=5)
    day_start = np.array([0, 20, 40, 60, 80, 100])
    tick = instrument.tick_size
    expected = measure_yardstick(bars.iloc[20:60], tick)  # days 1 and 2
    assert day_yardstick(bars, day_start, 3, tick, 2) == expected
    # the day itself and every later bar do not move it
    wild = bars.copy()
    for column in ("open", "high", "low", "close"):
        wild.loc[60:, column] = bars.loc[60:, column] * 3.0
    assert day_yardstick(wild, day_start, 3, tick, 2) == expected
    with pytest.raises(ConfigError, match="first trade day"):
        day_yardstick(bars, day_start, 0, tick, 2)
    # the design space is in yardsticks: the stop's range is S/4 .. 4S ticks
    space = day_space(expected, 10, 1.0, 1.0)
    assert space.upper[0] == round(4 * expected) and space.lower[0] == max(2, round(
        expected / 4))


def test_yardstick_scales_with_the_market_not_with_the_price_level():
    # EURUSD-like hourly bars move ~60 ticks a bar, MNQ-like minutes ~8: the yardstick in
    # ticks follows the bars (the old space's fixed MNQ ticks did not)
    eur = measure_yardstick(kind_bars("EURUSD", 200, seed=1), 0.00001)
    mnq = measure_yardstick(kind_bars("MNQ", 200, seed=1), 0.25)
    assert eur > 5 * mnq


def test_cost_model_in_the_cli_line_and_the_report(tmp_path):
    eurusd = get_instrument("EURUSD")
    facts = cost_model_facts(eurusd.costs, eurusd, 1.085)
    line = cost_model_line(facts)
    assert "spread 8 ticks, slippage 2 ticks per fill, commission 3.5 per side" in line
    assert "per fill 0.00006 in price = 9.50 USD" in line
    assert "per round trip 0.00012 in price = 19.00 USD" in line
    folder = tmp_path / "run"
    folder.mkdir()
    pd.DataFrame({"day_index": [1], "day": ["2024-03-05"], "trades": [2], "pnl": [-38.0],
                  "oos_pnl": [0.0]}).to_parquet(folder / "days.parquet")
    (folder / "training_log.json").write_text(json.dumps(
        {"symbol": "EURUSD", "timeframe": "1h", "cost_model": facts}))
    page = render_training_report(folder)
    assert "Cost per round trip (at 1.08500)" in page
    assert "0.00012 in price; 19.00 USD" in page
    assert "0.00006 in price; 9.50 USD" in page
    assert "In-day best PnL (USD)" in page
