"""The agent research loop end to end: real ``training`` and ``backtesting`` child operations
on the 60-day demo market, run by real workers in threads (phase order, both gates, a
rejected design still assessed, 409 on a second trigger, cancel within one second, restart
recovery), plus the training step checked against an independent sweep."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stratforge.config import configure
from stratforge.costs import COST_FIELDS
from stratforge.data.atlas import build_atlas
from stratforge.data.demo import ensure_symbol_data
from stratforge.errors import ConfigError, StratforgeError
from stratforge.instruments import get_instrument
from stratforge.ops.agent.assessment import VERDICTS
from stratforge.ops.agent.designer import ThompsonDesigner, candidates
from stratforge.ops.agent.inputs import LIBRARY_SEED, default_spans, prepare_design
from stratforge.ops.agent.library import ensure_library
from stratforge.ops.agent.service import (
    agent_status,
    cancel_cycle,
    list_experiments,
    trigger_cycle,
)
from stratforge.ops.agent.signals import span_signals
from stratforge.ops.agent.spec import CostModel
from stratforge.ops.agent.training import train_design
from stratforge.ops.db import Database
from stratforge.ops.operations import (
    ConflictError,
    cancel_operation,
    children,
    finish_operation,
    get_operation,
)
from stratforge.ops.worker import Worker
from stratforge.search.samplers import unit_sobol
from stratforge.sim.backtest import sweep

pytestmark = pytest.mark.slow
HIERARCHY = ["1h", "15m", "5m"]
# the largest template on 5m, matched on every bar: plenty of trades in both spans
BUSY = {"signal": {"template_id": "T0001", "timeframe": "5m", "match_bars": "all"}}
LENIENT = {"STRATFORGE_AGENT_MIN_TRAINING_TRADES": "1",
           "STRATFORGE_AGENT_MIN_TRAINING_SHARPE": "-1e9",
           "STRATFORGE_AGENT_MIN_BACKTEST_WIN_RATE": "0",
           "STRATFORGE_AGENT_MAX_BACKTEST_DRAWDOWN_PCT": "100",
           "STRATFORGE_AGENT_MIN_BACKTEST_SHARPE": "-1e9"}
PASSED = ["idle", "designing", "training", "training_gate", "backtesting", "backtest_gate",
          "assessing", "completed"]


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory) -> Path:
    """The demo market with its ATLAS, states and the agent's template library, once."""
    home = tmp_path_factory.mktemp("agent") / "home"
    ensure_symbol_data("MNQ", home)
    build_atlas("MNQ", home=home)
    end = pd.Timestamp(default_spans("MNQ", HIERARCHY, home)["training"]["end"])
    ensure_library("MNQ", HIERARCHY, end, home=home, seed=LIBRARY_SEED)
    return home


@pytest.fixture
def agent_home(demo_home, monkeypatch):
    """The shared demo home as STRATFORGE_HOME, with no agent settings in the environment."""
    monkeypatch.setenv("STRATFORGE_HOME", str(demo_home))
    for name in LENIENT:
        monkeypatch.delenv(name, raising=False)
    configure()
    yield demo_home
    configure()


@pytest.fixture
def sqlite_db(tmp_path) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path / 'stratforge.db'}")
    yield db
    db.dispose()


@contextmanager
def worker(db: Database, **options) -> Iterator[Worker]:
    """A real worker in a thread (concurrency 2: a cycle and its child)."""
    options.setdefault("concurrency", 2)
    running = Worker(db, poll_interval=0.05, **options)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    try:
        yield running
    finally:
        running.request_stop()
        thread.join(60)
        assert not thread.is_alive()


def wait_for(predicate, timeout: float = 60.0, what: str = "condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def finished(db: Database, op_id: str):
    record = get_operation(db, op_id)
    return record if record.is_terminal else None


def phases(record) -> list[str]:
    return [p["phase"] for p in record.metadata["phases"]]


def kids(db: Database, op_id: str, op_type: str):
    return [c for c in children(db, op_id) if c.type == op_type]


def test_a_cycle_that_passes_both_gates(agent_home, database, monkeypatch):
    for name, value in LENIENT.items():
        monkeypatch.setenv(name, value)
    assert agent_status(database)["phase"] == "idle"
    op = trigger_cycle(database, overrides=BUSY)
    queued = agent_status(database)
    assert queued["active"] and queued["phase"] == "idle" and queued["operation"]["id"] == op.id
    with worker(database):
        done = wait_for(lambda: finished(database, op.id), what="the cycle")
    assert done.status == "completed", done.error
    assert phases(done) == PASSED
    meta, result = done.metadata, done.result_summary
    training, backtest = kids(database, op.id, "training"), kids(database, op.id, "backtesting")
    assert [c.id for c in training] == [meta["training_op_id"]]
    assert [c.id for c in backtest] == [meta["backtesting_op_id"]]
    assert training[0].status == backtest[0].status == "completed"
    assert training[0].result_summary == meta["training"] == result["training"]
    assert backtest[0].result_summary == meta["backtest"] == result["backtest"]
    # the backtest runs the trained parameters, out of sample
    assert backtest[0].parameters["params"] == training[0].result_summary["params"]
    assert training[0].result_summary["span"][1] <= backtest[0].result_summary["span"][0]
    assert result["training"]["trades"] >= 1 and result["backtest"]["trades"] >= 1
    assert [g["passed"] for g in result["gates"]] == [True, True]
    [experiment] = list_experiments(database)
    assert experiment["id"] == result["experiment_id"] == meta["experiment_id"]
    assert experiment["status"] == "completed" and experiment["rejection_reason"] is None
    assert experiment["verdict"] in VERDICTS and experiment["verdict"] == result["verdict"]
    assert experiment["spec"] == meta["spec"] and experiment["operation_id"] == op.id
    assert experiment["training_metrics"] == result["training"]
    assert experiment["assessment"]["verdict"] == experiment["verdict"]
    status = agent_status(database)
    assert not status["active"] and status["phase"] == "completed"
    assert status["strategy"] == meta["spec"] and status["child"]["id"] == backtest[0].id
    assert status["strategy"]["signal"]["template_id"] == "T0001"


def test_rejected_designs_are_still_assessed_and_never_repeated(agent_home, database,
                                                                 monkeypatch):
    monkeypatch.setenv("STRATFORGE_AGENT_MIN_TRAINING_TRADES", "1000000")
    first = trigger_cycle(database, overrides=BUSY)
    with worker(database):
        one = wait_for(lambda: finished(database, first.id), what="the first cycle")
        for name, value in LENIENT.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("STRATFORGE_AGENT_MIN_BACKTEST_WIN_RATE", "1.0")
        second = trigger_cycle(database, overrides=BUSY)
        two = wait_for(lambda: finished(database, second.id), what="the second cycle")
    assert one.status == two.status == "completed", (one.error, two.error)
    # the training gate's rejection skips the backtest, not the assessment
    assert phases(one) == ["idle", "designing", "training", "training_gate", "assessing",
                           "completed"]
    assert kids(database, first.id, "backtesting") == []
    assert phases(two) == PASSED  # rejected at the backtest gate, after backtesting
    newest, oldest = list_experiments(database)
    assert (newest["operation_id"], oldest["operation_id"]) == (second.id, first.id)
    assert oldest["status"] == "rejected" and oldest["verdict"] == "poor"
    assert oldest["rejection_reason"].startswith("training gate: in-sample trades ")
    assert oldest["backtest_metrics"] is None
    assert newest["status"] == "rejected" and newest["verdict"] == "poor"
    assert newest["rejection_reason"].startswith("backtest gate: out-of-sample win rate ")
    assert newest["backtest_metrics"]["trades"] >= 1
    # same overrides, a different design (another parameter region of the same arm)
    assert newest["fingerprint"] != oldest["fingerprint"]
    assert newest["arm"] == oldest["arm"]
    assert newest["spec"]["region"]["name"] != oldest["spec"]["region"]["name"]


def test_one_active_cycle_at_a_time(agent_home, database):
    first = trigger_cycle(database)
    with pytest.raises(ConflictError) as caught:
        trigger_cycle(database, bypass_gates=True)
    assert caught.value.active_id == first.id and first.id in str(caught.value)
    outcomes: list[object] = []

    def attempt():
        try:
            outcomes.append(trigger_cycle(database))
        except ConflictError as exc:
            outcomes.append(exc.active_id)

    assert cancel_cycle(database).status == "cancelled"
    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [o for o in outcomes if not isinstance(o, str)]
    assert len(winners) == 1
    assert [o for o in outcomes if isinstance(o, str)] == [winners[0].id] * 3
    assert cancel_cycle(database).id == winners[0].id
    assert cancel_cycle(database) is None  # nothing active any more
    assert agent_status(database)["phase"] == "cancelled"


def test_bad_triggers_are_config_errors(agent_home, sqlite_db):
    with pytest.raises(ConfigError, match=r"unknown designer 'gpt'"):
        trigger_cycle(sqlite_db, designer="gpt")
    with pytest.raises(ConfigError, match=r"override n_sets"):
        trigger_cycle(sqlite_db, overrides={"n_sets": 0})
    with pytest.raises(ConfigError, match=r"override symbol: no data for ES"):
        trigger_cycle(sqlite_db, overrides={"symbol": "es"})
    assert agent_status(sqlite_db)["operation"] is None


def test_cancel_stops_the_cycle_and_its_child_within_a_second(agent_home, sqlite_db):
    op = trigger_cycle(sqlite_db, overrides={**BUSY, "n_sets": 2**20})  # a long training
    with worker(sqlite_db) as running:
        child = wait_for(lambda: next((c for c in kids(sqlite_db, op.id, "training")
                                       if c.status == "running" and c.progress_step == "sweep"),
                                      None), what="the training child to sweep")
        started = time.monotonic()
        cancel_cycle(sqlite_db)
        # the cascade cancels the child's row in the same transaction as the cycle's
        assert get_operation(sqlite_db, child.id).status == "cancelled"
        assert get_operation(sqlite_db, op.id).status == "cancelled"
        assert time.monotonic() - started < 1.0
        # the cycle's handler sees it at its next poll (0.2 s) and records the end
        wait_for(lambda: phases(get_operation(sqlite_db, op.id))[-1] == "cancelled",
                 timeout=1.0, what="the cycle handler to stop")
        # the child's handler stops at its next progress report once the worker's monitor
        # (0.5 s poll) has seen the cancel: well under a second on an idle machine; the
        # bound leaves room for a loaded one
        wait_for(lambda: running.stats.cancelled == 2, timeout=3.0,
                 what="the training handler to stop")
    record = get_operation(sqlite_db, op.id)
    assert record.status == "cancelled"
    assert get_operation(sqlite_db, child.id).result_summary is None  # never finished
    [experiment] = list_experiments(sqlite_db)
    assert experiment["status"] == "cancelled"
    assert agent_status(sqlite_db)["phase"] == "cancelled"


def test_a_cycle_resumes_after_worker_restarts(agent_home, database):
    op = trigger_cycle(database, bypass_gates=True, overrides=BUSY)
    # 1: a worker that takes cycles only: the training child waits in the queue
    with worker(database, types=["agent_cycle"]):
        child_id_of(database, op.id)
    assert get_operation(database, op.id).status == "pending"  # handed back, not failed
    # 2: cycles and training: training completes, the backtesting child waits
    with worker(database, types=["agent_cycle", "training"]):
        child_id_of(database, op.id, "backtesting")
    [trained] = kids(database, op.id, "training")
    assert trained.status == "completed"
    # 3: a full worker finishes the cycle, reusing both children
    with worker(database):
        done = wait_for(lambda: finished(database, op.id), what="the cycle")
    assert done.status == "completed", done.error
    assert [c.id for c in kids(database, op.id, "training")] == [trained.id]
    assert get_operation(database, trained.id).completed_at == trained.completed_at
    assert len(kids(database, op.id, "backtesting")) == 1
    assert phases(done) == PASSED  # no phase entered twice
    assert [r["phase"] for r in done.metadata["resumes"]] == ["training", "backtesting"]
    [experiment] = list_experiments(database)
    assert experiment["status"] == "completed" and experiment["operation_id"] == op.id


def child_id_of(db: Database, op_id: str, op_type: str = "training") -> str:
    return wait_for(lambda: get_operation(db, op_id).metadata.get(f"{op_type}_op_id"),
                    what=f"the {op_type} child")


@pytest.mark.parametrize("end", ["failed", "cancelled"])
def test_a_failed_or_lone_cancelled_child_fails_the_cycle(agent_home, sqlite_db, end):
    op = trigger_cycle(sqlite_db, overrides=BUSY)
    with worker(sqlite_db, types=["agent_cycle"]):  # the child is never taken: we end it
        child_id = child_id_of(sqlite_db, op.id)
        if end == "failed":
            with sqlite_db.write() as connection:
                finish_operation(connection, child_id, "failed", error="disk full")
        else:
            cancel_operation(sqlite_db, child_id, "stopped by hand")
        record = wait_for(lambda: finished(sqlite_db, op.id), what="the cycle")
    assert record.status == "failed"
    expected = "failed: disk full" if end == "failed" else "was cancelled on its own"
    assert f"the training step {child_id} {expected}" in record.error
    assert phases(record)[-1] == "failed"
    [experiment] = list_experiments(sqlite_db)
    assert experiment["status"] == "failed"
    # a failed design is not "tried": the next cycle may take the same design over
    again = trigger_cycle(sqlite_db, overrides=BUSY)
    with worker(sqlite_db, types=["agent_cycle"]):
        child_id_of(sqlite_db, again.id)
        [experiment] = list_experiments(sqlite_db)
        assert experiment["status"] == "running" and experiment["operation_id"] == again.id
        cancel_cycle(sqlite_db)


def test_the_training_step_keeps_the_best_sampled_set(agent_home, sqlite_db):
    context, _ = prepare_design(sqlite_db, {"overrides": {"n_sets": 48}}, home=agent_home,
                                progress=lambda *a, **k: None)
    spec = next(c.spec for c in candidates(context) if c.spec.signal.timeframe == "5m")
    result = train_design(spec, seed=11, home=agent_home)
    assert result == train_design(spec, seed=11, home=agent_home)  # deterministic
    # an independent sweep of the same Sobol sets: the reported set is the best one
    signals = span_signals(spec, spec.training.start, spec.training.end, home=agent_home)
    space = spec.region.space()
    table = space.repair(space.from_unit(unit_sobol(space.dimensions, 48, 11)))
    # the design pays MNQ's own cost model (costs=None charges it; was cost_points 0.5)
    assert spec.costs.model_dump() == CostModel.of(get_instrument("MNQ").costs)
    summary = sweep(signals.bars, signals.entries, signals.sides, table, instrument="MNQ",
                    costs=None)
    enough = summary[summary["trades"] >= spec.selection_min_trades]
    pool = enough if len(enough) else summary[summary["trades"] > 0]
    best = pool["sharpe_per_trade"].max()
    assert result["sharpe_per_trade"] == pytest.approx(best)
    chosen = pool[np.isclose(pool["sharpe_per_trade"], best)].iloc[0]
    assert result["params"] == {
        k: float(chosen[k]) if k == "trail_widen_points" else int(chosen[k])
        for k in space.names}
    assert not set(result["params"]) & set(COST_FIELDS)
    assert result["trades"] == int(chosen["trades"])  # the full simulation agrees
    assert result["sets"] == 48 and result["signals"] == len(signals.entries)
    exhausted = dataclasses.replace(context, history=tuple(
        {"fingerprint": c.fingerprint, "arm": c.arm, "status": "completed", "verdict": "poor"}
        for c in candidates(context)))
    with pytest.raises(StratforgeError, match="every design"):
        ThompsonDesigner().design(exhausted)
