"""The explained simulation, state signals, regime filters and `stratforge simulate`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cost_helpers import kind_bars
from stratforge.cli.main import app
from stratforge.data import build_atlas, load_bars
from stratforge.data.demo import synthesize_into_store
from stratforge.errors import ConfigError
from stratforge.features import compute_states
from stratforge.features.signals import (
    apply_regime_filters,
    parse_regime_filter,
    state_signals,
)
from stratforge.instruments import get_instrument
from stratforge.sim.backtest import simulate
from stratforge.sim.explain import (
    SignalSource,
    cost_model_facts,
    costs_paid,
    describe_costs,
    describe_fill,
    explain_simulation,
)
from stratforge.sim.params import Costs, ExitParams

runner = CliRunner()


def test_fill_model_in_words():
    assert describe_fill("delayed_mid", 4) == "orders fill at mean(open, close) of bar T+4"
    assert describe_fill("next_open") == "orders fill at the open of bar T+1"
    assert "close of the signal bar T" in describe_fill("close")


def test_cost_lines_hand_computed_on_mnq():
    # MNQ: point value 2; 2 contracts -> 4 USD a point; a tick (0.25) = 1 USD
    costs = Costs(spread_ticks=2, slippage_ticks=1, commission=0.62, quantity=2)
    text = "\n".join(describe_costs(costs, get_instrument("MNQ"), 18_000.0))
    assert "one point (price unit) = 4.00 USD; tick 0.25 = 1.00 USD" in text
    # one fill: half the spread (1 tick) + 1 tick slippage = 0.50 = 2.00 USD, + 1.24 USD
    assert "per market fill at 18,000.00: 0.50 in price" in text
    assert "= 2.00 USD, plus commission 1.24 USD = 3.24 USD" in text
    # round trip: spread 0.50 + two slippages 0.50 = 1.00 = 4.00 USD, + 2.48 USD commission
    assert "per round trip: 1.00 in price = 4.00 USD, plus commissions 2.48 USD = 6.48 USD" \
        in text


def test_cost_lines_hand_computed_on_eurusd():
    # the built-in EURUSD model: spread 8 ticks (0.8 pip), slippage 2 ticks, 3.5 USD a side;
    # one standard lot, point value 100,000 (the old 0.5 "points" were 50,000 USD a trade)
    eurusd = get_instrument("EURUSD")
    text = "\n".join(describe_costs(eurusd.costs, eurusd, 1.085))
    assert "tick 0.00001 = 1.00 USD" in text
    assert "per market fill at 1.08500: 0.00006 in price" in text  # 4 + 2 ticks
    assert "= 6.00 USD, plus commission 3.50 USD = 9.50 USD" in text
    assert ("per round trip: 0.00012 in price = 12.00 USD, plus commissions 7.00 USD = "
            "19.00 USD") in text
    facts = cost_model_facts(eurusd.costs, eurusd, 1.085)
    assert facts["round_trip_price"] == pytest.approx(0.00012)
    assert facts["round_trip_currency"] == pytest.approx(19.0)
    assert facts["currency"] == "USD"


@pytest.mark.parametrize("symbol", ["MNQ", "EURUSD"])
def test_costs_paid_equals_free_minus_charged_pnl(symbol):
    # Exits by timeout and session only, so every trade has the same bars with and without
    # costs: what the trades paid is the frictionless PnL minus the charged PnL.
    instrument = get_instrument(symbol)
    bars = kind_bars(symbol, 300, seed=4)
    entries = np.arange(5, 290, 7)
    sides = np.where(np.arange(len(entries)) % 2 == 0, 1, -1)
    costs = instrument.costs.with_overrides(fee_bps=0.5, velocity_slippage=0.1)
    params = ExitParams(max_hold_bars=4)
    free = simulate(bars, entries, sides, params, instrument=instrument, costs=Costs())
    charged = simulate(bars, entries, sides, params, instrument=instrument, costs=costs)
    assert free["exit_bar"].tolist() == charged["exit_bar"].tolist() and len(free) > 10
    paid = costs_paid(charged, bars, costs, instrument)
    assert paid["total"] == pytest.approx(float((free["pnl"] - charged["pnl"]).sum()))
    assert paid["commission"] == pytest.approx(2 * costs.commission * len(charged))
    assert paid["spread"] == pytest.approx(
        len(charged) * costs.spread_ticks * instrument.tick_size * instrument.point_value)


def test_explained_eurusd_run_states_costs_in_price_and_currency():
    eurusd = get_instrument("EURUSD")
    bars = kind_bars("EURUSD", 300, seed=2)
    entries = np.arange(5, 290, 9)
    sides = np.ones(len(entries), dtype=np.int64)
    run = explain_simulation(bars, entries, sides, ExitParams(max_hold_bars=3),
                             instrument=eurusd, source=SignalSource("grid", len(entries)),
                             timeframe="1h")
    steps = dict(run.steps)
    costs = "\n".join(steps["Costs and slippage"])
    # the instrument's own model by default: 19 USD a round trip, 0.00012 in price
    assert "per round trip: 0.00012 in price = 12.00 USD" in costs and "19.00 USD" in costs
    assert "the median entry price 1.0" in costs
    results = "\n".join(steps["Results"])
    trades = run.trades
    expectancy_price = trades["pnl_points"].mean()
    assert f"({eurusd.format_price(expectancy_price)} in price)" in results
    assert "0.00 points" not in results
    # no velocity slippage or fee: 19 USD per trade, every trade a timeout or session exit
    assert run.extra["total_paid"] == pytest.approx(19.0 * len(trades))
    assert f"costs paid: {19.0 * len(trades):,.2f} USD" in results
    assert "(19.00 USD per trade)" in results


def _states_frame(zones, z, trend):
    return pd.DataFrame({"zone": zones, "z": z, "trend": trend,
                         "structure_confirmed": [False] * len(z),
                         "cascade_detected": [False] * len(z)})


def test_roche_signals_fade_zone_entries_only():
    zones = ["CHAOS", "L2_ROCHE", "L2_ROCHE", "CHAOS", "L3_ROCHE", "L3_ROCHE", "L2_ROCHE"]
    z = [1.5, 2.2, 2.5, 1.0, -2.3, -2.1, 2.4]
    entries, sides = state_signals(_states_frame(zones, z, ["UP"] * 7), "roche")
    assert entries.tolist() == [1, 4, 6] and sides.tolist() == [-1, 1, -1]


def test_regime_filter_counts_blocked():
    states = _states_frame(["CHAOS"] * 5, [0.0] * 5, ["UP", "RANGE", "DOWN", "RANGE", "UP"])
    rule = parse_regime_filter("trend=RANGE,DOWN", list(states.columns))
    kept, _sides, blocked = apply_regime_filters(states, np.arange(5), np.ones(5, int), [rule])
    assert kept.tolist() == [1, 2, 3] and blocked == 2
    with pytest.raises(ConfigError, match="COL=V1,V2"):
        parse_regime_filter("trend")
    with pytest.raises(ConfigError, match="no state column 'mood'"):
        parse_regime_filter("mood=happy", list(states.columns))


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("demo") / "home"
    synthesize_into_store("MNQ", days=6, seed=3, home=home)
    build_atlas("MNQ", home=home)
    return home


def test_explained_run_matches_its_parts(demo_home):
    bars = load_bars("MNQ", "1m", home=demo_home)
    states = compute_states(bars)
    entries, sides = state_signals(states, "roche")
    costs = Costs(spread_ticks=1, slippage_ticks=1, commission=0.5)
    run = explain_simulation(bars, entries, sides, ExitParams(stop_ticks=20, target_ticks=30),
                             instrument=get_instrument("MNQ"), costs=costs,
                             source=SignalSource("roche", len(entries)), timeframe="1m")
    headings = [h for h, _ in run.steps]
    assert headings == ["Data", "Signals", "Entries", "Costs and slippage", "Results"]
    trades = run.trades
    assert run.metrics.trades == len(trades) > 0
    # slippage: 1 tick (0.5 USD) on every entry and every non-target exit
    expected_slip = 0.5 * (len(trades) + int((trades["reason"] != "target").sum()))
    assert run.extra["slippage_paid"] == pytest.approx(expected_slip)
    # spread: one tick (0.5 USD) per round trip; commission 2 x 0.5 USD per round trip
    assert run.extra["spread_paid"] == pytest.approx(0.5 * len(trades))
    assert run.extra["total_paid"] == pytest.approx(expected_slip + 1.5 * len(trades))
    results = "\n".join(run.steps[-1][1])
    assert f"round-trip trades: {len(trades)}" in results
    wins = int((trades["pnl"] > 0).sum())
    assert f"({wins} wins," in results


def test_simulate_command_explains_on_demo_data(demo_home, tmp_path):
    out = tmp_path / "trades.csv"
    result = runner.invoke(app, [
        "--home", str(demo_home), "simulate", "--timeframe", "1m", "--param", "stop_ticks=20",
        "--param", "target_ticks=30", "--fill", "delayed_mid", "--delay-bars", "4",
        "--regime-filter", "trend=RANGE", "--slippage-ticks", "1", "--explain",
        "--trades", str(out)])
    assert result.exit_code == 0, result.output
    text = result.output
    for heading in ("1. Data", "2. Signals", "3. Regime filter", "4. Entries",
                    "5. Costs and slippage", "6. Results"):
        assert heading in text
    assert "orders fill at mean(open, close) of bar T+4" in text
    assert "SQN:" in text and "buy and hold" in text
    written = pd.read_csv(out)
    assert f"round-trip trades: {len(written)}" in text
    # the instrument's cost model (MNQ: spread 1 tick, commission 0.62 a side), slippage
    # as given: a round trip is 0.25 + 2 x 0.25 = 0.75 in price = 1.50 USD + 1.24 USD
    assert "spread 1 tick, slippage 1 tick per fill, commission 0.62 per side" in text
    assert "per round trip: 0.75 in price = 1.50 USD, plus commissions 1.24 USD = 2.74 USD" \
        in text


def test_simulate_command_cost_overrides(demo_home):
    base = ["--home", str(demo_home), "simulate", "--timeframe", "1m", "--param",
            "max_hold_bars=5", "--explain"]
    free = runner.invoke(app, [*base, "--commission", "0", "--spread-ticks", "0",
                               "--slippage-ticks", "0"])
    assert free.exit_code == 0, free.output
    assert "no costs" in free.output and "costs paid: 0.00 USD" in free.output
    fee = runner.invoke(app, [*base, "--fee-bps", "1", "--spread-ticks", "4"])
    assert fee.exit_code == 0, fee.output
    assert "spread 4 ticks" in fee.output and "fee 1 bp of notional per fill" in fee.output
    old = runner.invoke(app, [*base, "--cost-points", "0.5"])
    assert old.exit_code != 0 and "--cost-points" in old.output
    bad = runner.invoke(app, [*base, "--spread-ticks", "-1"])
    assert bad.exit_code == 1 and "spread_ticks" in bad.output


def test_simulate_command_errors_are_one_line(demo_home, tmp_path):
    result = runner.invoke(app, ["--home", str(demo_home), "simulate", "--timeframe", "1m",
                                 "--param", "stop=3"])
    assert result.exit_code == 1 and "--param 'stop=3'" in result.output
    result = runner.invoke(app, ["--home", str(demo_home), "simulate", "--timeframe", "1m",
                                 "--template", "T1"])
    assert result.exit_code == 1 and "no template library" in result.output
    bad = tmp_path / "entries.csv"
    pd.DataFrame({"ts": ["2001-01-01T00:00:00Z"], "side": [1]}).to_csv(bad, index=False)
    result = runner.invoke(app, ["--home", str(demo_home), "simulate", "--timeframe", "1m",
                                 "--entries", str(bad)])
    assert result.exit_code == 1 and "no bar starts at" in result.output
