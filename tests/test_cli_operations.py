"""Every long job is an operation wherever it starts (issue 18, item 1): work run in this
process (``ops.local.run_here``, what ``stratforge run``, ``train`` and ``discover`` use) is
recorded in the home's database like a worker's job (type, parameters, progress, result),
no server worker can take it, and a cancel from elsewhere stops it at its next progress
report. Then the real thing: ``stratforge train`` in its own process, followed and cancelled
by ``stratforge ops cancel`` from another, resumes with ``--resume``; ``train --dashboard``
starts a server for its home and opens the run's live page (issue 18, item 3)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest
from sqlalchemy import select

from research_helpers import make_market
from stratforge.ops.context import OperationCancelledError
from stratforge.ops.db import Database
from stratforge.ops.events import events_after
from stratforge.ops.local import run_here
from stratforge.ops.models import Job
from stratforge.ops.operations import cancel_operation, get_operation, list_operations
from stratforge.ops.queue import claim_next_job

ENV = {k: v for k, v in os.environ.items()
       if k not in ("STRATFORGE_DATABASE_URL", "STRATFORGE_API_TOKEN", "STRATFORGE_API_URL",
                    "STRATFORGE_HOME")}
TRAIN = ("train", "--iterations", "12", "--templates", "warmup", "--warmup-days", "10")
SLOW_TRAIN = ("train", "--iterations", "30000", "--templates", "warmup", "--warmup-days", "10")
"""About half a second a day, 45 days: time for another process to cancel it on the way."""


@pytest.fixture
def db(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'ops.db'}")
    yield database
    database.dispose()


def _wait(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_work_run_here_is_a_running_operation_no_worker_can_take(db):
    with run_here(db, "training_run", {"symbol": "MNQ", "max_days": 3},
                  metadata={"source": "cli"}, cancel_poll=0.05) as job:
        op = get_operation(db, job.job.operation_id)
        assert (op.type, op.status, op.parameters) == ("training_run", "running",
                                                        {"symbol": "MNQ", "max_days": 3})
        assert op.metadata["source"] == "cli" and op.worker_id == job.worker_id
        assert claim_next_job(db, "server-worker") is None  # already claimed: ours
        job.progress("train", 1, 3, "day 1")
        op = get_operation(db, op.id)
        assert (op.progress_step, op.items_done, op.items_total) == ("train", 1, 3)
        assert op.progress_percent == pytest.approx(100 / 3)
        job.remember(folder="MNQ-1m")
        job.result = {"days": 3}
    op = get_operation(db, op.id)
    assert (op.status, op.result_summary, op.metadata["folder"]) == ("completed", {"days": 3},
                                                                     "MNQ-1m")
    kinds = [(e["kind"], e["payload"].get("status")) for e in events_after(db, 0)
             if e["operation_id"] == op.id]
    assert ("progress", None) in kinds and kinds[-1] == ("operation", "completed")
    with db.read() as connection:
        jobs = connection.execute(select(Job.__table__)).all()
    assert [(j.status, j.attempts, j.max_attempts) for j in jobs] == [("completed", 1, 1)]


def test_a_cancel_from_elsewhere_stops_the_work_at_its_next_progress_report(db):
    reports = 0
    with pytest.raises(OperationCancelledError), \
            run_here(db, "research_run", {}, cancel_poll=0.05) as job:
        cancel_operation(db, job.job.operation_id, "cancelled from the dashboard")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            job.progress("sweep", reports, 100)
            reports += 1
            time.sleep(0.01)
    op = get_operation(db, job.job.operation_id)
    assert (op.status, op.error) == ("cancelled", "cancelled from the dashboard")
    assert reports < 100  # stopped within the monitor's poll, not at the end


def test_failed_and_interrupted_work_is_recorded(db):
    with pytest.raises(ValueError, match="bad bars"), \
            run_here(db, "discovery_run", {"symbol": "MNQ"}):
        raise ValueError("bad bars")
    with pytest.raises(KeyboardInterrupt), run_here(db, "discovery_run", {"symbol": "MNQ"}):
        raise KeyboardInterrupt
    interrupted, failed = list_operations(db, op_type="discovery_run")
    assert (failed.status, failed.error) == ("failed", "ValueError: bad bars")
    assert (interrupted.status, interrupted.error) == ("cancelled",
                                                       "interrupted in the terminal (Ctrl-C)")


@pytest.fixture(scope="module")
def market(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("cli_ops") / "home"
    make_market(home, "realistic", 60, seed=5)
    return home


def _cli(home: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stratforge.cli.main", "--home", str(home),
                           *args], capture_output=True, text=True, timeout=300, check=False,
                          env=env or ENV)


@pytest.mark.slow
def test_stratforge_train_is_followed_and_cancelled_from_another_process(market):
    db = Database(f"sqlite:///{market / 'stratforge.db'}")
    trainer = subprocess.Popen([sys.executable, "-m", "stratforge.cli.main", "--home",
                                str(market), *SLOW_TRAIN, "--max-days", "45"], env=ENV,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        op = _wait(lambda: next(iter(list_operations(db, op_type="training_run")), None), 60,
                   "the training operation")
        _wait(lambda: get_operation(db, op.id).items_done >= 1, 120, "the first day")
        cancelled = _cli(market, "ops", "cancel", op.id)  # no server: the API in process
        assert cancelled.returncode == 0, cancelled.stderr
        out, err = trainer.communicate(timeout=120)
    finally:
        if trainer.poll() is None:
            trainer.send_signal(signal.SIGKILL)
    assert trainer.returncode == 1, out + err
    assert f"operation {op.id} was cancelled" in err and "--resume" in err
    assert err.count("\n") == 1
    shown = _cli(market, "ops", "show", op.id)
    assert "cancelled" in shown.stdout and "cli-" in shown.stdout, shown.stdout
    final = get_operation(db, op.id)
    assert final.status == "cancelled" and final.metadata["folder"] == "MNQ-1m"
    folder = market / "training" / "MNQ-1m"
    done = len(pd.read_parquet(folder / "days.parquet"))
    assert 1 <= done < 45
    assert json.loads((folder / "state.json").read_text())["next_day"] > 0
    # what it finished is kept: the next run continues after it, as a new operation
    resumed = _cli(market, *SLOW_TRAIN, "--max-days", str(done + 1), "--resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert len(pd.read_parquet(folder / "days.parquet")) == done + 1
    ops = list_operations(db, op_type="training_run")
    assert [o.status for o in ops] == ["completed", "cancelled"]
    assert ops[0].result_summary["days"] == done + 1
    db.dispose()


@pytest.mark.slow
def test_train_dashboard_starts_a_server_and_opens_the_live_page(market, tmp_path):
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\necho "$1" >> {opened}\n')
    browser.chmod(0o755)
    home = tmp_path / "home"
    subprocess.run(["cp", "-r", str(market), str(home)], check=True)
    for stale in ("stratforge.db", "training", "server.json"):
        subprocess.run(["rm", "-rf", str(home / stale)], check=True)
    done = _cli(home, *TRAIN, "--max-days", "1", "--dashboard",
                env={**ENV, "BROWSER": str(browser)})
    pid = re.search(r"\(pid (\d+),", done.stdout)
    try:
        assert done.returncode == 0, done.stdout + done.stderr
        assert pid, done.stdout
        url = opened.read_text().strip()
        op_id = re.search(r"operation (op_training_run_\w+)", done.stdout).group(1)
        base = re.match(r"(http://127\.0\.0\.1:\d+)/ui/#/training/(\S+)$", url)
        assert base and base.group(2) == op_id, url
        assert f"live page: {url}" in done.stdout
        # the server it started serves this home, outlives the command, and knows the run
        marker = json.loads((home / "server.json").read_text())
        assert marker == {"url": base.group(1), "pid": int(pid.group(1))}
        runs = httpx.get(f"{base.group(1)}/api/v1/training/runs", timeout=10).json()["runs"]
        assert [(r["operation"]["id"], r["folder"], r["days"], r["source"]) for r in runs] == \
            [(op_id, "MNQ-1m", 1, "cli")]
        assert httpx.get(url.split("#")[0], timeout=10).status_code == 200
    finally:
        if pid:
            os.kill(int(pid.group(1)), signal.SIGTERM)
