"""Issue 17, defects 9 and 10 (the queue): a worker frozen past the stale time (SIGSTOP) and
woken (SIGCONT) after its job went to another worker writes nothing for it; a finish is
fenced on the claim's attempt, not only on the worker; a worker killed with SIGKILL is marked
``dead`` at the next reap. Real worker processes and signals, on SQLite and PostgreSQL (the
PostgreSQL runs skip with the reason when the server is absent)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from stratforge.ops.events import EVENTS
from stratforge.ops.queue import (
    JOBS,
    WORKERS,
    claim_next_job,
    enqueue_job,
    finish_job,
    reap_stale_jobs,
)

SRC = Path(__file__).parents[1] / "src"


def _worker(url: str, home: Path, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(SRC), STRATFORGE_DATABASE_URL=url,
               STRATFORGE_HOME=str(home))
    return subprocess.Popen([sys.executable, "-m", "stratforge.cli.main", "worker",
                             "--types", "echo", "--heartbeat", "0.2", "--poll", "0.05", *extra],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait(what, seconds: float, message: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = what()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(message)


def _job(database, job_id: int):
    with database.read() as connection:
        return connection.execute(select(JOBS).where(JOBS.c.id == job_id)).one()


def _job_ran(database, job_id: int) -> list[dict]:
    with database.read() as connection:
        payloads = connection.execute(select(EVENTS.c.payload).where(
            EVENTS.c.kind == "job_ran")).scalars().all()
    return [p for p in payloads if p["job_id"] == job_id]


def test_a_frozen_worker_woken_after_the_reap_writes_nothing(database, database_url, tmp_path):
    job_id = enqueue_job(database, "echo", {"seconds": 3.0})
    frozen = _worker(database_url, tmp_path / "home", "--stale-after", "1.0", "--max-jobs", "1")
    other = None
    try:
        _wait(lambda: _job(database, job_id).status == "running", 60, "no worker took the job")
        first = _job(database, job_id)
        frozen.send_signal(signal.SIGSTOP)
        time.sleep(1.5)  # past the stale time: the next reap hands the job to another claim
        other = _worker(database_url, tmp_path / "home", "--stale-after", "1.0",
                        "--exit-when-idle")
        _wait(lambda: _job(database, job_id).attempts == 2, 60, "the job was not re-claimed")
        assert _job(database, job_id).worker_id != first.worker_id
        frozen.send_signal(signal.SIGCONT)  # its wait is over: it would write now
        other.wait(60)
        frozen.wait(30)
        done = _job(database, job_id)
        runs = _job_ran(database, job_id)
        assert done.status == "completed" and done.attempts == 2
        assert [r["attempt"] for r in runs] == [2], runs  # the side effect ran exactly once
        assert runs[0]["worker_id"] == done.worker_id != first.worker_id
    finally:
        for process in (frozen, other):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.kill()
                process.wait()


def test_finishing_is_fenced_on_the_attempt(database):
    job_id = enqueue_job(database, "echo")
    first = claim_next_job(database, "w1")
    reap_stale_jobs(database, stale_after=-1.0)  # every running job counts as stale
    second = claim_next_job(database, "w1")  # the same worker claims it again
    assert (first.id, second.id, second.attempts) == (job_id, job_id, 2)
    assert not finish_job(database, first, "w1", "failed", error="stale attempt")
    assert _job(database, job_id).status == "running"
    assert finish_job(database, second, "w1", "completed")


def test_a_killed_workers_row_is_marked_dead_at_the_next_reap(database, database_url,
                                                              tmp_path):
    victim = _worker(database_url, tmp_path / "home")
    try:
        def row():
            with database.read() as connection:
                return connection.execute(select(WORKERS)).first()

        alive = _wait(row, 60, "the worker did not register")
        assert alive.status == "running" and alive.pid == victim.pid
    finally:
        victim.kill()
        victim.wait()
    time.sleep(1.0)
    reap_stale_jobs(database, stale_after=0.5)
    dead = row()
    assert dead.status == "dead" and dead.stopped_at is not None
    assert isinstance(dead.stopped_at, datetime)
