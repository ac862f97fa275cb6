"""``/workers`` and ``/queue``: the worker processes with their heartbeats, and the job
queue's depth (what the dashboard's overview shows next to the operations)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from sqlalchemy import select

from stratforge.api.dashboard_models import QueueOut, WorkerList
from stratforge.api.deps import DbDep, run_db
from stratforge.ops.db import Database
from stratforge.ops.models import Worker
from stratforge.ops.queue import queue_depth
from stratforge.ops.records import JOB_STATUSES

router = APIRouter(tags=["platform"])


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.replace(tzinfo=UTC).isoformat().replace(
        "+00:00", "Z")


def list_workers(db: Database) -> list[dict[str, Any]]:
    """Every registered worker, most recent heartbeat first, with its heartbeat's age."""
    table = Worker.__table__
    with db.read() as connection:
        rows = connection.execute(select(table).order_by(table.c.heartbeat_at.desc())).all()
    now = datetime.now(UTC).replace(tzinfo=None)
    return [{"id": r.id, "hostname": r.hostname, "pid": r.pid, "types": r.types,
             "concurrency": r.concurrency, "status": r.status,
             "started_at": _iso(r.started_at), "heartbeat_at": _iso(r.heartbeat_at),
             "stopped_at": _iso(r.stopped_at), "jobs_done": r.jobs_done,
             "heartbeat_age_seconds": round((now - r.heartbeat_at).total_seconds(), 3)
             if r.heartbeat_at else None} for r in rows]


@router.get("/workers", response_model=WorkerList)
async def workers(db: DbDep) -> Any:
    """The worker processes (`stratforge worker`, the pool of `stratforge serve`): status,
    job types, slots, jobs done and the last heartbeat with its age in seconds."""
    return {"workers": await run_db(db, list_workers, db)}


@router.get("/queue", response_model=QueueOut)
async def queue(db: DbDep) -> Any:
    """Jobs per status in the queue (`queued` is the depth waiting for a worker)."""
    depth = await run_db(db, queue_depth, db)
    return {"jobs": {status: depth.get(status, 0) for status in
                     (*JOB_STATUSES, *sorted(set(depth) - set(JOB_STATUSES)))},
            "depth": depth.get("queued", 0)}
