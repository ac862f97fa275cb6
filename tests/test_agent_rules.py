"""The agent's gates, settings and assessment rules on hand-made metrics (boundaries of every
rule, undefined metrics, the verdict order)."""

from __future__ import annotations

import pytest

from stratforge.errors import ConfigError
from stratforge.ops.agent.assessment import assess
from stratforge.ops.agent.gates import GateThresholds, backtest_gate, number, training_gate
from stratforge.ops.agent.settings import agent_settings

DEFAULT = GateThresholds()


def oos(**changes):
    values = {"trades": 40, "win_rate": 0.5, "max_drawdown_pct": 5.0, "sharpe": 1.5,
              "profit_factor": 1.6, "total_pnl": 900.0}
    return {**values, **changes}


@pytest.mark.parametrize(("trades", "sharpe", "passed"), [
    (30, 0.01, True), (29, 2.0, False), (30, 0.0, False), (100, None, False),
    (None, 1.0, False), (31, -0.1, False),
])
def test_training_gate_boundaries(trades, sharpe, passed):
    result = training_gate({"trades": trades, "sharpe": sharpe}, DEFAULT)
    assert result.passed is passed
    assert (result.reason is None) is passed


def test_training_gate_reasons_name_each_rule():
    result = training_gate({"trades": 12, "sharpe": -0.25}, DEFAULT)
    assert result.reasons == ("in-sample trades 12 < 30", "in-sample Sharpe -0.25 is not above 0")
    assert result.reason == ("training gate: in-sample trades 12 < 30; in-sample Sharpe -0.25 "
                             "is not above 0")
    assert training_gate(None, DEFAULT).reasons[0] == "in-sample trades undefined < 30"


@pytest.mark.parametrize(("changes", "passed"), [
    ({}, True),
    ({"win_rate": 0.45, "max_drawdown_pct": 40.0, "sharpe": -0.5}, True),  # all at the edge
    ({"win_rate": 0.4499}, False),
    ({"max_drawdown_pct": 40.01}, False),
    ({"sharpe": -0.51}, False),
    ({"win_rate": None}, False),  # no trades: undefined win rate fails
    ({"sharpe": None}, False),
])
def test_backtest_gate_boundaries(changes, passed):
    assert backtest_gate(oos(**changes), DEFAULT).passed is passed


def test_numbers_from_json_metrics():
    assert number({"pf": "inf"}, "pf") == float("inf")
    assert number({"pf": "-inf"}, "pf") == float("-inf")
    assert number({"pf": None}, "pf") != number({"pf": None}, "pf")  # NaN
    assert number(None, "pf") != number(None, "pf")


def test_thresholds_come_from_the_environment(monkeypatch):
    assert agent_settings().thresholds() == DEFAULT
    monkeypatch.setenv("STRATFORGE_AGENT_MIN_TRAINING_TRADES", "5")
    monkeypatch.setenv("STRATFORGE_AGENT_MIN_BACKTEST_WIN_RATE", "0.6")
    thresholds = agent_settings().thresholds()
    assert thresholds.min_training_trades == 5 and thresholds.min_backtest_win_rate == 0.6
    assert training_gate({"trades": 5, "sharpe": 0.1}, thresholds).passed
    assert not backtest_gate(oos(win_rate=0.55), thresholds).passed
    monkeypatch.setenv("STRATFORGE_AGENT_MIN_BACKTEST_WIN_RATE", "2")
    with pytest.raises(ConfigError, match="STRATFORGE_AGENT_MIN_BACKTEST_WIN_RATE"):
        agent_settings()


def _assess(training, backtest, *, enforced=True):
    gates = [training_gate(training, DEFAULT)]
    if backtest is not None:
        gates.append(backtest_gate(backtest, DEFAULT))
    return assess(training, backtest, gates, enforced=enforced, thresholds=DEFAULT)


GOOD_IS = {"trades": 120, "sharpe": 2.0}


def test_a_design_that_holds_up_is_promising():
    result = _assess(GOOD_IS, oos(win_rate=0.56))
    assert result.verdict == "promising" and not result.rejected
    assert result.strengths == [
        "out-of-sample Sharpe 1.50 >= 1", "out-of-sample win rate 56%",
        "out-of-sample profit factor 1.60", "shallow out-of-sample drawdown (5.0%)",
        "holds up out of sample (Sharpe 2.00 in, 1.50 out)",
        "large in-sample sample (120 trades)"]
    assert result.weaknesses == []
    assert result.suggestions == [
        "confirm with walk-forward validation on more data (stratforge run)"]


@pytest.mark.parametrize(("backtest", "verdict"), [
    (oos(sharpe=0.99), "mediocre"),                 # below the promising Sharpe
    (oos(profit_factor=1.19), "mediocre"),          # below the promising profit factor
    (oos(trades=9), "mediocre"),                    # too few trades to call it
    (oos(total_pnl=0.0), "poor"),                   # made no money
    (oos(trades=0, total_pnl=0.0, win_rate=None, sharpe=None), "poor"),
    (oos(profit_factor="inf", trades=12), "promising"),  # no losing trade
])
def test_verdict_thresholds(backtest, verdict):
    assert _assess(GOOD_IS, backtest).verdict == verdict


def test_a_rejected_design_is_poor_and_says_why():
    result = _assess({"trades": 10, "sharpe": -0.3}, None)
    assert result.verdict == "poor" and result.rejected
    assert result.weaknesses == ["training gate: in-sample trades 10 < 30",
                                 "training gate: in-sample Sharpe -0.3 is not above 0",
                                 "not backtested out of sample"]
    assert result.suggestions == [
        "too few in-sample trades: match every bar (match_bars: all) or a finer timeframe",
        "no in-sample edge: try another template or parameter region"]


def test_backtest_gate_rejection_overrides_good_numbers():
    result = _assess(GOOD_IS, oos(win_rate=0.40))
    assert result.rejected and result.verdict == "poor"
    assert "backtest gate: out-of-sample win rate 0.4 < 0.45" in result.weaknesses
    assert "low win rate: the tight region (closer targets) wins more often" in result.suggestions


def test_bypassed_gates_judge_by_the_numbers_only():
    result = _assess({"trades": 10, "sharpe": 2.0}, oos(), enforced=False)
    assert not result.rejected and result.verdict == "promising"
    assert result.weaknesses == ["training gate: in-sample trades 10 < 30"]


def test_decay_and_drawdown_are_weaknesses():
    result = _assess({"trades": 60, "sharpe": 3.0}, oos(sharpe=1.2, max_drawdown_pct=25.0,
                                                        profit_factor=0.9, total_pnl=10.0))
    assert "decays out of sample (Sharpe 3.00 in, 1.20 out)" in result.weaknesses
    assert "deep out-of-sample drawdown (25.0%)" in result.weaknesses
    assert "out-of-sample profit factor 0.90 < 1" in result.weaknesses
    assert result.verdict == "mediocre"
    assert result.suggestions == [
        "the in/out-of-sample gap smells of overfitting: try a narrower region or fewer "
        "parameter sets (n_sets)", "deep drawdown: tighter stops (region tight)"]
    assert result.to_json()["verdict"] == "mediocre"


def test_the_training_gate_of_a_model_design_judges_validation_metrics():
    metrics = {"trades": 40, "sharpe": -3.0, "directional_accuracy": 0.53,
               "validation_sqn": 0.4}
    # a negative Sharpe does not reject a model: its gate reads accuracy and SQN
    assert training_gate(metrics, DEFAULT, kind="model").passed
    assert not training_gate(metrics, DEFAULT).passed
    bad = training_gate({**metrics, "directional_accuracy": 0.49, "validation_sqn": 0.0},
                        DEFAULT, kind="model")
    assert bad.reasons == ("validation directional accuracy 0.49 < 0.5",
                           "validation SQN 0 is not above 0")
    strict = GateThresholds(min_directional_accuracy=0.6, min_validation_sqn=1.0)
    assert not training_gate(metrics, strict, kind="model").passed
    assert training_gate({"trades": 40}, DEFAULT, kind="model").reasons == (
        "validation directional accuracy undefined < 0.5", "validation SQN undefined is not "
        "above 0")
