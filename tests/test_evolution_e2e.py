"""End to end: an evolution run over 2 generations on a demo-kind market, shared by 2 worker
processes through PostgreSQL; every simulation recorded once, priorities from the parent's
SQN, lineage back to the seed, and a rerun of a simulation served from its record."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import select

from db_helpers import postgres_schema_url
from stratforge.data.demo import synthesize_into_store
from stratforge.evolution.config import GridPoint, make_evolution_config
from stratforge.evolution.loop import priority_of, run_simulation
from stratforge.ops.db import Database
from stratforge.ops.evolution_store import (
    OPERATIONS,
    RUN_TYPE,
    SIMULATION_TYPE,
    lineage,
    run_detail,
)
from stratforge.ops.operations import create_operation, get_operation

pytestmark = pytest.mark.slow
SETTINGS = {"symbol": "MNQ", "timeframe": "1m", "algorithm": "hist_gradient_boosting",
            "hyperparameters": {"max_iter": 20}, "max_generations": 2, "horizon": 5,
            "thresholds": [1.0, 2.0], "z_cutoffs": [0.0, 3.0],
            "regimes": ["all", "vol=low,normal"], "importance_repeats": 1,
            "importance_rows": 2000, "min_features": 5}


def _spawn(url: str, home: str) -> subprocess.Popen:
    env = {**os.environ, "STRATFORGE_DATABASE_URL": url, "STRATFORGE_HOME": home}
    return subprocess.Popen([sys.executable, "-m", "stratforge.cli.main", "worker",
                             "--concurrency", "2", "--poll", "0.05", "--heartbeat", "0.5"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_two_workers_evolve_two_generations_on_postgres(tmp_path, monkeypatch):
    home = tmp_path / "home"
    synthesize_into_store("MNQ", days=8, seed=11, kind="realistic", resolution="1m",
                          replace=True, home=home)
    monkeypatch.setenv("STRATFORGE_HOME", str(home))
    with postgres_schema_url() as url:
        db = Database(url)
        run = create_operation(db, RUN_TYPE, SETTINGS)
        workers = [_spawn(url, str(home)) for _ in range(2)]
        try:
            deadline = time.monotonic() + 240
            while get_operation(db, run.id).status in ("pending", "running"):
                assert time.monotonic() < deadline, "the run did not finish in time"
                assert all(w.poll() is None for w in workers), "a worker died"
                time.sleep(0.2)
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            for worker in workers:
                worker.wait(30)
        logs = [w.stderr.read().decode()[-3000:] for w in workers]
        done = get_operation(db, run.id)
        assert done.status == "completed", (done.error, logs)
        detail = run_detail(db, run.id)
        gens = detail["generations"]
        assert [g["generation"] for g in gens] == [0, 1]
        assert detail["stop_reason"] == "max_generations"
        assert all(g["jobs_done"] == g["jobs_total"] == 8 for g in gens)
        assert gens[0]["priority"] == 0
        assert gens[1]["priority"] == priority_of(gens[0]["best_validation_sqn"])
        assert gens[1]["parent_fingerprint"] == gens[0]["model_fingerprint"]
        assert set(gens[1]["features"]) < set(gens[0]["features"])
        assert len(gens[1]["features"]) >= 5
        ancestors = lineage(db, gens[1]["model_fingerprint"])
        assert [a["fingerprint"] for a in ancestors] == [gens[1]["model_fingerprint"],
                                                         gens[0]["model_fingerprint"]]
        with db.read() as connection:
            rows = connection.execute(select(OPERATIONS.c.worker_id, OPERATIONS.c.status)
                                      .where(OPERATIONS.c.type == SIMULATION_TYPE)).all()
            run_worker = connection.execute(select(OPERATIONS.c.worker_id).where(
                OPERATIONS.c.id == run.id)).scalar_one()
        assert len(rows) == 16 and all(status == "completed" for _, status in rows)
        assert len({w for w, _ in rows} | {run_worker}) == 2  # both workers did work
        best = gens[1]["best_result"] or gens[1]["top_results"][0]
        point = GridPoint(best["threshold"], best["z_cutoff"], best["regime"])
        again = run_simulation(gens[1]["model_fingerprint"], point,
                               make_evolution_config(**SETTINGS), home)
        assert again["cached"] is True and again["fingerprint"] == best["simulation"]
        db.dispose()
