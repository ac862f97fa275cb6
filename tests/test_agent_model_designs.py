"""Agent designs that train models, end to end on a small synthetic market with real workers:
designing -> training (a real evolution model fit) -> training_gate -> backtesting (the
stored model replayed after its data span) -> assessing -> completed, on SQLite and
PostgreSQL; a second design with the same model reuses the stored model without a fit."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stratforge.config import configure
from stratforge.data.atlas import build_atlas
from stratforge.data.demo import synthesize_into_store
from stratforge.errors import ConfigError
from stratforge.evolution import pipeline
from stratforge.evolution.modelstore import load_meta, model_exists
from stratforge.evolution.replay import span_signal
from stratforge.features.cache import load_states
from stratforge.ops.agent.modeling import FEATURE_SETS, directional_accuracy
from stratforge.ops.agent.service import agent_status, list_experiments, trigger_cycle
from stratforge.ops.db import Database
from stratforge.ops.operations import children, get_operation
from stratforge.ops.worker import Worker
from stratforge.timeframes import parse_timeframe

HIERARCHY = ["15m", "5m"]
SETTINGS = {"STRATFORGE_AGENT_TIMEFRAMES": "15m,5m",
            "STRATFORGE_AGENT_SIGNAL_TIMEFRAMES": "5m",
            "STRATFORGE_AGENT_MODEL_FEATURE_SETS": "momentum",
            "STRATFORGE_AGENT_MODEL_HORIZONS": "3",
            "STRATFORGE_AGENT_N_SETS": "16",
            # lenient gates: the cycle must reach the backtest whatever the noise says
            "STRATFORGE_AGENT_MIN_TRAINING_TRADES": "1",
            "STRATFORGE_AGENT_MIN_DIRECTIONAL_ACCURACY": "0",
            "STRATFORGE_AGENT_MIN_VALIDATION_SQN": "-1e9",
            "STRATFORGE_AGENT_MIN_BACKTEST_WIN_RATE": "0",
            "STRATFORGE_AGENT_MAX_BACKTEST_DRAWDOWN_PCT": "100",
            "STRATFORGE_AGENT_MIN_BACKTEST_SHARPE": "-1e9"}
PASSED = ["idle", "designing", "training", "training_gate", "backtesting", "backtest_gate",
          "assessing", "completed"]
MODEL = {"model": {"feature_set": "momentum"}}


@pytest.fixture(scope="module")
def market(tmp_path_factory) -> Path:
    """15 days of synthetic 1m MNQ bars with 15m and 5m ATLAS timeframes and 5m states."""
    home = tmp_path_factory.mktemp("agent_models") / "home"
    synthesize_into_store("MNQ", days=15, seed=6, kind="planted", resolution="1m",
                          replace=True, home=home)
    build_atlas("MNQ", [parse_timeframe(tf) for tf in HIERARCHY], home=home)
    load_states("MNQ", "5m", home=home)  # computed once, cached for every test
    return home


@pytest.fixture
def model_home(market, monkeypatch):
    """The market as STRATFORGE_HOME with the test's agent settings and no stored model."""
    shutil.rmtree(market / "models", ignore_errors=True)
    monkeypatch.setenv("STRATFORGE_HOME", str(market))
    for name, value in SETTINGS.items():
        monkeypatch.setenv(name, value)
    configure()
    yield market
    configure()


@contextmanager
def worker(db: Database) -> Iterator[Worker]:
    """A real worker in a thread (concurrency 2: a cycle and its child)."""
    running = Worker(db, poll_interval=0.05, concurrency=2)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    try:
        yield running
    finally:
        running.request_stop()
        thread.join(60)
        assert not thread.is_alive()


def run_cycle(db: Database, overrides: dict) -> object:
    op = trigger_cycle(db, overrides=overrides)
    with worker(db):
        end = time.monotonic() + 120
        while time.monotonic() < end:
            record = get_operation(db, op.id)
            if record.is_terminal:
                return record
            time.sleep(0.05)
    raise AssertionError(f"cycle {op.id} did not finish in 120 s")


def child(db: Database, op_id: str, op_type: str):
    [found] = [c for c in children(db, op_id) if c.type == op_type]
    return found


def test_a_model_design_trains_gates_replays_and_is_reused(model_home, database,
                                                            monkeypatch):
    done = run_cycle(database, MODEL)
    assert done.status == "completed", done.error
    assert [p["phase"] for p in done.metadata["phases"]] == PASSED
    spec = done.metadata["spec"]
    assert spec["signal"]["kind"] == "model" and spec["signal"]["model_id"] is None
    assert spec["model"]["features"] == sorted(FEATURE_SETS["momentum"])
    assert done.metadata["design"]["kind"] == "model"
    training = child(database, done.id, "training").result_summary
    backtest_op = child(database, done.id, "backtesting")
    backtest = backtest_op.result_summary
    # a real fit, stored under the evolution model fingerprint
    model_id = training["model_id"]
    assert training["model_reused"] is False and training["fit_seconds"] > 0
    assert model_exists(model_id, model_home)
    meta = load_meta(model_id, model_home)
    assert meta["features"] == spec["model"]["features"]
    assert meta["identity"]["target"] == {"kind": "log_return", "horizon": 3}
    assert 0.0 <= training["directional_accuracy"] <= 1.0
    assert training["validation_sqn"] == training["sqn"]
    # the backtest replays that model after the model's whole data span, with the trained
    # exits and the spec's costs
    assert backtest_op.parameters["model_id"] == model_id
    assert backtest_op.parameters["params"] == training["params"]
    model_end = pd.Timestamp(meta["identity"]["spans"]["end"], tz="UTC")
    assert model_end <= pd.Timestamp(spec["backtest"]["start"])
    assert training["span"][1] < spec["backtest"]["start"]
    assert backtest["model_id"] == model_id and backtest["trades"] >= 1
    result = done.result_summary
    assert result["kind"] == "model" and [g["passed"] for g in result["gates"]] == [True, True]
    [experiment] = list_experiments(database)
    assert experiment["status"] == "completed" and experiment["arm"] == done.metadata["arm"]
    assert experiment["arm"] == "model/elasticnet/momentum/h3@5m"
    assert experiment["training_metrics"]["model_id"] == model_id
    status = agent_status(database)
    assert status["training_op_id"] == done.metadata["training_op_id"]
    assert status["backtest_op_id"] == backtest_op.id == status["child_operation_id"]
    # a replay span inside the model's own data span is refused
    with pytest.raises(ConfigError, match="data span"):
        span_signal(model_id, model_end - pd.Timedelta(days=1), model_end, threshold=1.0,
                    home=model_home)

    # the same model in the next design (the next parameter region): no fit at all
    def no_fit(*args, **kwargs):
        raise AssertionError("the stored model should have been reused")

    monkeypatch.setattr(pipeline, "fit_model", no_fit)
    again = run_cycle(database, MODEL)
    assert again.status == "completed", again.error
    assert [p["phase"] for p in again.metadata["phases"]] == PASSED
    second = child(database, again.id, "training").result_summary
    assert second["model_reused"] is True and second["model_id"] == model_id
    assert second["fit_seconds"] is None
    assert again.metadata["fingerprint"] != done.metadata["fingerprint"]
    assert again.metadata["spec"]["region"]["name"] != spec["region"]["name"]
    assert again.metadata["spec"]["model"] == spec["model"]


def test_a_model_training_gate_rejection_skips_the_backtest(model_home, database,
                                                            monkeypatch):
    monkeypatch.setenv("STRATFORGE_AGENT_MIN_DIRECTIONAL_ACCURACY", "1.0")
    done = run_cycle(database, MODEL)
    assert done.status == "completed", done.error
    assert [p["phase"] for p in done.metadata["phases"]] == [
        "idle", "designing", "training", "training_gate", "assessing", "completed"]
    [experiment] = list_experiments(database)
    assert experiment["status"] == "rejected" and experiment["verdict"] == "poor"
    assert "validation directional accuracy" in experiment["rejection_reason"]
    status = agent_status(database)
    assert status["backtest_op_id"] is None
    assert status["child_operation_id"] == status["training_op_id"] is not None


def test_directional_accuracy_counts_signs_against_the_centre():
    prediction = np.array([1.0, 3.0, 2.5, 0.0, np.nan])
    target = np.array([-0.1, 0.2, 0.0, -0.3, 0.5])
    # centre 2: signs -, +, (target 0: skipped), -, (nan: skipped) -> 3 of 3 right
    assert directional_accuracy(prediction, target, 2.0) == 1.0
    assert directional_accuracy(prediction, -target, 2.0) == 0.0
    assert directional_accuracy(prediction[:1], np.array([0.0]), 0.0) is None


@pytest.mark.parametrize(("name", "value", "needle"), [
    ("STRATFORGE_AGENT_DESIGN_KINDS", "template,genetic", "DESIGN_KINDS"),
    ("STRATFORGE_AGENT_MODEL_ALGORITHMS", "svm", "MODEL_ALGORITHMS: unknown svm"),
    ("STRATFORGE_AGENT_MODEL_HORIZONS", "0", "MODEL_HORIZONS"),
    ("STRATFORGE_AGENT_MODEL_HORIZONS", "three", "MODEL_HORIZONS"),
])
def test_bad_model_settings_are_refused_at_trigger(home, monkeypatch, name, value, needle):
    monkeypatch.setenv(name, value)
    db = Database(f"sqlite:///{home / 'stratforge.db'}")
    try:
        with pytest.raises(ConfigError, match=needle):
            trigger_cycle(db)
    finally:
        db.dispose()


def test_an_unknown_feature_set_setting_names_the_variable():
    from stratforge.ops.agent.inputs import model_options

    assert [o.feature_set for o in model_options({"model_feature_sets": ["momentum"],
                                                  "model_horizons": [3, 12]})] == [
        "momentum", "momentum"]
    with pytest.raises(ConfigError, match="MODEL_FEATURE_SETS: unknown feature set 'trend'"):
        model_options({"model_feature_sets": ["trend"]})


def test_the_replay_continues_the_features_the_model_was_trained_on(model_home):
    from stratforge.data.load import load_bars
    from stratforge.evolution.featureset import build_features
    from stratforge.evolution.modelstore import load_estimator, load_signals
    from stratforge.instruments import get_instrument
    from stratforge.ops.agent.inputs import default_spans
    from stratforge.ops.agent.modeling import train_model_design
    from stratforge.ops.agent.spec import parse_spec

    spec = parse_spec({
        "symbol": "MNQ", "timeframes": HIERARCHY,
        "signal": {"kind": "model", "timeframe": "5m", "match_threshold": 1.0},
        "region": {"name": "custom", "bounds": {"stop_ticks": [10, 40],
                                                "target_ticks": [10, 40]}},
        **default_spans("MNQ", HIERARCHY, model_home), "n_sets": 8,
        "model": {"feature_set": "momentum", "features": list(FEATURE_SETS["momentum"]),
                  "horizon": 3}})
    model_id = train_model_design(spec, seed=1, home=model_home)["model_id"]
    meta = load_meta(model_id, model_home)
    start = pd.Timestamp(meta["identity"]["spans"]["start"], tz="UTC")
    # the features rebuilt over the longer series (model start to the data's end) give the
    # model's own stored validation and test predictions on its rows ...
    bars = load_bars("MNQ", "5m", home=model_home)
    keep = (bars["ts"] >= start).to_numpy()
    states = load_states("MNQ", "5m", home=model_home)[keep].reset_index(drop=True)
    bars = bars[keep].reset_index(drop=True)
    frame = build_features(bars, states, {}, tick_size=get_instrument("MNQ").tick_size)
    x = frame[meta["features"]].to_numpy()
    estimator = load_estimator(model_id, model_home)
    stored = load_signals(model_id, model_home)
    at = np.searchsorted(bars["ts"].array.asi8, stored["ts"])
    assert np.allclose(estimator.predict(x[at]), stored["prediction"], rtol=0, atol=1e-12)
    # ... and span_signal's entries on the backtest span are the bars beyond the threshold
    begin, end = pd.Timestamp(spec.backtest.start), pd.Timestamp(spec.backtest.end)
    got = span_signal(model_id, begin, end, threshold=1.0, home=model_home)
    rows = np.flatnonzero(((bars["ts"] >= begin) & (bars["ts"] < end)).to_numpy())
    z = (estimator.predict(x[rows]) - meta["prediction_centre"]) / meta["prediction_scale"]
    assert np.isfinite(x[rows]).all() and len(got.bars) == len(rows)
    expected = np.flatnonzero(np.abs(z) > 1.0)
    assert len(expected) > 0 and np.array_equal(got.entries, expected)
    assert np.array_equal(got.sides, np.sign(z[expected]).astype(np.int64))
