"""The explained simulation, state signals, regime filters and `stratforge simulate`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

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
from stratforge.sim.explain import SignalSource, describe_costs, describe_fill, explain_simulation
from stratforge.sim.params import Costs, ExitParams

runner = CliRunner()


def test_fill_model_in_words():
    assert describe_fill("delayed_mid", 4) == "orders fill at mean(open, close) of bar T+4"
    assert describe_fill("next_open") == "orders fill at the open of bar T+1"
    assert "close of the signal bar T" in describe_fill("close")


def test_cost_lines_hand_computed():
    # MNQ: point value 2; 2 contracts -> 4 USD a point; slippage 1 tick = 0.25 pt = 1 USD
    lines = describe_costs(Costs(cost_points=0.5, slippage_ticks=1, commission=0.62,
                                 quantity=2), get_instrument("MNQ"))
    text = "\n".join(lines)
    assert "one point = 4.00 USD" in text
    assert "slippage 1 tick(s) per fill = 0.25 points = 1.00 USD" in text
    assert "cost 0.5 points per round trip = 2.00 USD" in text
    assert "commission 0.62 USD per contract per side = 2.48 USD per round trip" in text
    # worst case: two slipped fills (2 USD) + cost points (2 USD) + commissions (2.48 USD)
    assert "round trip at most 6.48 USD" in text


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
    costs = Costs(cost_points=0.5, slippage_ticks=1, commission=0.5)
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
