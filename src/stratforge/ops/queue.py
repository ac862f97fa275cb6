"""The job queue: enqueue, claim (one transaction), heartbeat, finish, hand back, reap.

Claiming is a single ``UPDATE ... WHERE id = (SELECT ... LIMIT 1) RETURNING``: on PostgreSQL
the inner select takes ``FOR UPDATE SKIP LOCKED``, so concurrent workers never take the same
row and never wait on each other; on SQLite the statement runs in an immediate transaction,
which holds the database's write lock. ``attempts`` counts claims: a job whose worker died
(heartbeat older than ``stale_after``) goes back to the queue and its next claim is attempt
+1; after ``max_attempts`` claims it fails instead. A claim is the pair (worker, attempt):
finishing, handing back and every side effect a handler writes through
``JobContext.write()`` are fenced on it, so a worker that stalled past ``stale_after`` (frozen,
swapped out) and wakes after the job went to another claim never writes for it again, even
when it is the same worker that claimed the job a second time.
"""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, func, insert, or_, select, text, update

from stratforge.ops.db import Database, utcnow
from stratforge.ops.events import emit
from stratforge.ops.models import Job, Operation, Worker
from stratforge.ops.operations import finish_operation
from stratforge.ops.records import JobRecord
from stratforge.processes import pid_alive

JOBS = Job.__table__
OPERATIONS = Operation.__table__
WORKERS = Worker.__table__
DEFAULT_STALE_AFTER = 60.0
ANALYZE_AFTER = 500
"""Bulk enqueues of at least this many jobs refresh the table's statistics (PostgreSQL)."""


def enqueue_job(db: Database, job_type: str, payload: dict[str, Any] | None = None, *,
                priority: int = 0, max_attempts: int = 3, operation_id: str | None = None
                ) -> int:
    """Queue a job and return its id (operations queue their own job on creation)."""
    with db.write() as connection:
        return int(connection.execute(insert(JOBS).values(
            operation_id=operation_id, type=job_type, payload=payload or {}, priority=priority,
            status="queued", attempts=0, max_attempts=max_attempts, created_at=utcnow())
            .returning(JOBS.c.id)).scalar_one())


def enqueue_many(db: Database, job_type: str, payloads: Sequence[dict[str, Any]], *,
                 priority: int = 0) -> None:
    """Queue many operation-less jobs in one transaction (benchmarks, fan-out)."""
    now = utcnow()
    with db.write() as connection:
        connection.execute(insert(JOBS), [
            {"operation_id": None, "type": job_type, "payload": p, "priority": priority,
             "status": "queued", "attempts": 0, "max_attempts": 3, "created_at": now}
            for p in payloads])
    if db.is_postgres and len(payloads) >= ANALYZE_AFTER:
        # fresh statistics: with stale ones the planner sorts every queued row per claim
        # instead of reading the first entry of the claim index
        with db.engine.connect() as connection:
            connection.execute(text("ANALYZE jobs"))
            connection.commit()


@functools.lru_cache(maxsize=64)
def _claim_statement(postgres: bool, types: tuple[str, ...]):
    """The claim UPDATE, built once per dialect and type list (binds: worker_id, now)."""
    pick = select(JOBS.c.id).where(JOBS.c.status == "queued")
    if types:
        pick = pick.where(JOBS.c.type.in_(list(types)))
    pick = pick.order_by(JOBS.c.priority.desc(), JOBS.c.created_at, JOBS.c.id).limit(1)
    if postgres:
        pick = pick.with_for_update(skip_locked=True)
    return update(JOBS).where(JOBS.c.id == pick.scalar_subquery()).values(
        status="running", worker_id=bindparam("claimer"), attempts=JOBS.c.attempts + 1,
        started_at=bindparam("now"), heartbeat_at=bindparam("now")).returning(*JOBS.c)


_FINISH = update(JOBS).where(
    JOBS.c.id == bindparam("job_id"), JOBS.c.worker_id == bindparam("claimer"),
    JOBS.c.attempts == bindparam("attempt"), JOBS.c.status == "running").values(
    status=bindparam("new_status"), finished_at=bindparam("now"), error=bindparam("message"))


def _claim(connection, db: Database, worker_id: str, types: Sequence[str] | None
           ) -> JobRecord | None:
    statement = _claim_statement(db.is_postgres, tuple(types or ()))
    row = connection.execute(statement, {"claimer": worker_id, "now": utcnow()}).first()
    return None if row is None else JobRecord.from_row(row)


def claim_next_job(db: Database, worker_id: str, types: Sequence[str] | None = None
                   ) -> JobRecord | None:
    """Take the queued job with the highest priority (then the oldest), or None."""
    with db.write() as connection:
        return _claim(connection, db, worker_id, types)


def _finish(connection, job: JobRecord, worker_id: str, status: str,
            result: dict[str, Any] | None, error: str | None) -> bool:
    owned = connection.execute(_FINISH, {"job_id": job.id, "claimer": worker_id,
                                         "attempt": job.attempts, "new_status": status,
                                         "now": utcnow(), "message": error}).rowcount
    if not owned:
        return False
    if job.operation_id is not None:
        finish_operation(connection, job.operation_id, status, result=result, error=error)
    return True


def finish_job(db: Database, job: JobRecord, worker_id: str, status: str, *,
               result: dict[str, Any] | None = None, error: str | None = None) -> bool:
    """Mark a claimed job (and its operation) completed or failed; False when the job is no
    longer this worker's (reaped, or cancelled meanwhile), and then nothing is written."""
    with db.write() as connection:
        return _finish(connection, job, worker_id, status, result, error)


def finish_and_claim(db: Database, job: JobRecord, worker_id: str, status: str, *,
                     result: dict[str, Any] | None = None, error: str | None = None,
                     types: Sequence[str] | None = None, claim: bool = True
                     ) -> tuple[bool, JobRecord | None]:
    """``finish_job`` and (``claim``) ``claim_next_job`` in one transaction: one commit per
    job instead of two, which is what bounds a worker's rate on a real server."""
    with db.write() as connection:
        owned = _finish(connection, job, worker_id, status, result, error)
        return owned, (_claim(connection, db, worker_id, types) if claim else None)


def claim_state(connection, job: JobRecord, worker_id: str) -> str:
    """``held`` while ``worker_id`` still holds ``job``'s claim (same attempt, running),
    ``cancelled`` once that claim's job was cancelled, else ``lost`` (reaped, claimed again).
    Read inside the caller's write transaction, so that what it writes next is fenced."""
    row = connection.execute(select(JOBS.c.worker_id, JOBS.c.attempts, JOBS.c.status).where(
        JOBS.c.id == job.id)).first()
    if row is None or row.worker_id != worker_id or int(row.attempts) != job.attempts:
        return "lost"
    return {"running": "held", "cancelled": "cancelled"}.get(row.status, "lost")


def lost_claims(db: Database, worker_id: str, jobs: Sequence[JobRecord]) -> list[int]:
    """The ids of ``jobs`` whose claim ``worker_id`` lost (not those cancelled meanwhile:
    cancellation reaches their handlers its own way)."""
    if not jobs:
        return []
    with db.read() as connection:
        return [job.id for job in jobs if claim_state(connection, job, worker_id) == "lost"]


def release_job(db: Database, job: JobRecord, worker_id: str, reason: str) -> bool:
    """Hand a claimed job back to the queue without using up an attempt (graceful shutdown);
    its operation goes back to pending."""
    with db.write() as connection:
        owned = connection.execute(update(JOBS).where(
            JOBS.c.id == job.id, JOBS.c.worker_id == worker_id,
            JOBS.c.attempts == job.attempts, JOBS.c.status == "running"
        ).values(status="queued", worker_id=None, attempts=JOBS.c.attempts - 1,
                 heartbeat_at=None, error=reason)).rowcount
        if owned and job.operation_id is not None:
            connection.execute(update(OPERATIONS).where(
                OPERATIONS.c.id == job.operation_id, OPERATIONS.c.status == "running").values(
                status="pending", worker_id=None, updated_at=utcnow()))
            emit(connection, "operation", job.operation_id,
                 {"id": job.operation_id, "status": "pending", "message": reason})
        return bool(owned)


def heartbeat(db: Database, worker_id: str, job_ids: Sequence[int],
              operation_ids: Sequence[str], jobs_done: int | None = None) -> None:
    """The worker and its running jobs and operations are alive now (``jobs_done``: the
    worker's count of finished jobs, kept in memory between heartbeats)."""
    now = utcnow()
    # lock order jobs -> operations -> workers, the same as finish_job, so the monitor
    # thread's heartbeat never deadlocks with a job thread finishing its job
    with db.write() as connection:
        if job_ids:
            connection.execute(update(JOBS).where(
                JOBS.c.id.in_(list(job_ids)), JOBS.c.worker_id == worker_id,
                JOBS.c.status == "running").values(heartbeat_at=now))
        if operation_ids:
            connection.execute(update(OPERATIONS).where(
                OPERATIONS.c.id.in_(list(operation_ids)),
                OPERATIONS.c.status == "running").values(heartbeat_at=now))
        values: dict[str, Any] = {"heartbeat_at": now, "status": "running"}
        if jobs_done is not None:
            values["jobs_done"] = int(jobs_done)
        connection.execute(update(WORKERS).where(WORKERS.c.id == worker_id).values(**values))


def register_worker(db: Database, worker_id: str, types: Sequence[str] | None,
                    concurrency: int) -> None:
    """Insert (or revive) this worker's row."""
    now = utcnow()
    with db.write() as connection:
        exists = connection.execute(select(WORKERS.c.id).where(WORKERS.c.id == worker_id)
                                    ).first()
        values = {"hostname": socket.gethostname(), "pid": os.getpid(),
                  "types": list(types) if types else None, "concurrency": concurrency,
                  "status": "running", "started_at": now, "heartbeat_at": now,
                  "stopped_at": None}
        if exists:
            connection.execute(update(WORKERS).where(WORKERS.c.id == worker_id).values(**values))
        else:
            connection.execute(insert(WORKERS).values(id=worker_id, jobs_done=0, **values))


def stop_worker(db: Database, worker_id: str, jobs_done: int | None = None) -> None:
    """Mark this worker stopped (with its final count of finished jobs)."""
    values: dict[str, Any] = {"status": "stopped", "stopped_at": utcnow()}
    if jobs_done is not None:
        values["jobs_done"] = int(jobs_done)
    with db.write() as connection:
        connection.execute(update(WORKERS).where(WORKERS.c.id == worker_id).values(**values))


def _requeue_or_fail(connection, rows, reason: str) -> dict[str, int]:
    counts = {"requeued": 0, "failed": 0}
    now = utcnow()
    for row in rows:
        if row.attempts >= row.max_attempts:
            message = f"{reason}; gave up after {row.attempts} attempts"
            connection.execute(update(JOBS).where(JOBS.c.id == row.id).values(
                status="failed", finished_at=now, error=message))
            if row.operation_id is not None:
                finish_operation(connection, row.operation_id, "failed", error=message)
            counts["failed"] += 1
        else:
            connection.execute(update(JOBS).where(JOBS.c.id == row.id).values(
                status="queued", worker_id=None, heartbeat_at=None, error=reason))
            if row.operation_id is not None:
                connection.execute(update(OPERATIONS).where(
                    OPERATIONS.c.id == row.operation_id,
                    OPERATIONS.c.status == "running").values(
                    status="pending", worker_id=None, updated_at=now))
                emit(connection, "operation", row.operation_id,
                     {"id": row.operation_id, "status": "pending", "message": reason})
            counts["requeued"] += 1
    return counts


def reap_stale_jobs(db: Database, stale_after: float = DEFAULT_STALE_AFTER) -> dict[str, int]:
    """Return running jobs whose heartbeat is older than ``stale_after`` seconds to the queue
    (their operations to pending), or fail them once they have used every attempt; mark
    workers that sent no heartbeat for as long ``dead`` (a live one that was only stalled
    marks itself ``running`` again with its next heartbeat)."""
    cutoff = utcnow() - timedelta(seconds=stale_after)
    with db.write() as connection:
        connection.execute(update(WORKERS).where(
            WORKERS.c.status == "running", WORKERS.c.heartbeat_at < cutoff).values(
            status="dead", stopped_at=utcnow()))
        pick = select(JOBS).where(JOBS.c.status == "running", or_(
            JOBS.c.heartbeat_at < cutoff, JOBS.c.heartbeat_at.is_(None)))
        if db.is_postgres:
            pick = pick.with_for_update(skip_locked=True)
        rows = connection.execute(pick).all()
        return _requeue_or_fail(connection, rows, f"worker stopped sending heartbeats (none for "
                                                  f"{stale_after:g} s)")


def reconcile(db: Database) -> dict[str, int]:
    """At start: jobs held by workers of this host whose process is gone go back to the queue
    (or fail), and operations left running with no running job are failed."""
    host = socket.gethostname()
    with db.write() as connection:
        workers = connection.execute(select(WORKERS.c.id, WORKERS.c.pid).where(
            WORKERS.c.hostname == host, WORKERS.c.status == "running")).all()
        dead = [w.id for w in workers if w.pid != os.getpid() and not pid_alive(w.pid)]
        counts = {"dead_workers": len(dead), "requeued": 0, "failed": 0, "orphans": 0}
        if dead:
            rows = connection.execute(select(JOBS).where(
                JOBS.c.status == "running", JOBS.c.worker_id.in_(dead))).all()
            for key, value in _requeue_or_fail(connection, rows, "its worker process died"
                                               ).items():
                counts[key] += value
            connection.execute(update(WORKERS).where(WORKERS.c.id.in_(dead)).values(
                status="dead", stopped_at=utcnow()))
        running_jobs = select(JOBS.c.operation_id).where(
            JOBS.c.status.in_(("running", "queued")), JOBS.c.operation_id.is_not(None))
        orphans = connection.execute(select(OPERATIONS.c.id).where(
            OPERATIONS.c.status == "running", OPERATIONS.c.id.not_in(running_jobs))
        ).scalars().all()
        for op_id in orphans:
            finish_operation(connection, op_id, "failed",
                             error="left running by a process that is gone")
        counts["orphans"] = len(orphans)
        return counts


def queue_depth(db: Database, types: Sequence[str] | None = None, *,
                exclude_worker: str | None = None) -> dict[str, int]:
    """Jobs per status (of ``types`` only, when given; not counting running jobs of
    ``exclude_worker``)."""
    query = select(JOBS.c.status, func.count()).group_by(JOBS.c.status)
    if types:
        query = query.where(JOBS.c.type.in_(list(types)))
    if exclude_worker is not None:
        query = query.where(or_(JOBS.c.worker_id.is_(None), JOBS.c.worker_id != exclude_worker))
    with db.read() as connection:
        rows = connection.execute(query).all()
    return {r[0]: int(r[1]) for r in rows}
