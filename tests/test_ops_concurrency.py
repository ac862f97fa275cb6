"""Four worker processes drain 2,000 jobs on PostgreSQL: every job runs to completion exactly
once, and the job of a worker killed with SIGKILL is finished by another worker."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import select

from db_helpers import postgres_schema_url
from stratforge.ops.db import Database
from stratforge.ops.events import EVENTS
from stratforge.ops.models import Job, Worker
from stratforge.ops.queue import enqueue_job, enqueue_many

JOBS, WORKERS = Job.__table__, Worker.__table__
pytestmark = pytest.mark.slow


def _spawn(url: str, home: str) -> subprocess.Popen:
    env = {**os.environ, "STRATFORGE_DATABASE_URL": url, "STRATFORGE_HOME": home}
    return subprocess.Popen([sys.executable, "-m", "stratforge.cli.main", "worker",
                             "--exit-when-idle", "--stale-after", "2", "--heartbeat", "0.5",
                             "--poll", "0.05"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def test_four_workers_drain_the_queue_and_survive_a_sigkill(tmp_path):
    with postgres_schema_url() as url:
        db = Database(url)
        victim_job = enqueue_job(db, "echo", {"seconds": 4.0, "victim": True}, priority=10)
        enqueue_many(db, "echo", [{"i": i} for i in range(2000)])
        workers = [_spawn(url, str(tmp_path / "home")) for _ in range(4)]
        try:
            deadline = time.monotonic() + 120
            holder = None
            while holder is None:
                assert time.monotonic() < deadline, "no worker took the long job"
                with db.read() as connection:
                    holder = connection.execute(select(JOBS.c.worker_id).where(
                        JOBS.c.id == victim_job, JOBS.c.status == "running")).scalar()
                time.sleep(0.05)
            with db.read() as connection:
                pid = connection.execute(select(WORKERS.c.pid).where(
                    WORKERS.c.id == holder)).scalar_one()
            time.sleep(0.5)  # mid-job: it sleeps 4 s before it records its run
            os.kill(pid, signal.SIGKILL)
            codes = {}
            for process in workers:
                process.wait(timeout=240)
                codes[process.pid] = process.returncode
        finally:
            for process in workers:
                if process.poll() is None:
                    process.kill()
        assert codes[pid] == -signal.SIGKILL
        assert all(code == 0 for p, code in codes.items() if p != pid), \
            [p.stderr.read().decode()[-2000:] for p in workers if p.returncode]
        with db.read() as connection:
            jobs = connection.execute(select(JOBS)).all()
            runs = connection.execute(select(EVENTS.c.payload).where(
                EVENTS.c.kind == "job_ran")).scalars().all()
        logs = [p.stderr.read().decode()[-3000:] for p in workers]
        assert len(jobs) == 2001 and {j.status for j in jobs} == {"completed"}, logs
        ran = collections.Counter(r["job_id"] for r in runs)
        assert len(ran) == 2001 and set(ran.values()) == {1}  # exactly once each
        victim = next(j for j in jobs if j.id == victim_job)
        assert victim.attempts == 2 and victim.worker_id != holder
        finished_by = next(r["worker_id"] for r in runs if r["job_id"] == victim_job)
        assert finished_by != holder
        per_worker = collections.Counter(r["worker_id"] for r in runs)
        assert len(per_worker) >= 3  # the live workers shared the work
        db.dispose()
