"""Operations: create, read, progress, finish, cancel (cascading to children) and retry.

Every long piece of work is an operation row (ARCHITECTURE.md, "Operations") with a queue job
that runs it. Status moves ``pending -> running -> completed | failed | cancelled``; a
cancelled, failed or completed operation never moves again, except that a worker shutting
down hands a running one back (``running -> pending``) together with its job. Every change
appends an event (``ops.events``) in the same transaction.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from stratforge.errors import StratforgeError
from stratforge.ops.db import Database, utcnow
from stratforge.ops.events import emit
from stratforge.ops.models import Job, Operation
from stratforge.ops.records import (
    ACTIVE_STATUSES,
    OPERATION_STATUSES,
    TERMINAL_STATUSES,
    OperationRecord,
)

OPERATIONS = Operation.__table__
JOBS = Job.__table__
MAX_LIST = 1000


class NotFoundError(StratforgeError):
    """No operation (or other record) with that id."""


class ConflictError(StratforgeError):
    """The request does not fit the record's state (for example retrying a running one).

    ``active_id`` names the operation in the way, when there is one."""

    def __init__(self, message: str, *, active_id: str | None = None) -> None:
        super().__init__(message)
        self.active_id = active_id


def new_operation_id(op_type: str, now: datetime | None = None) -> str:
    """``op_<type>_<YYYYMMDD_HHMMSS>_<8 hex>``."""
    stamp = (now or utcnow()).strftime("%Y%m%d_%H%M%S")
    return f"op_{op_type}_{stamp}_{secrets.token_hex(4)}"


def _summary(record: OperationRecord) -> dict[str, Any]:
    return {"id": record.id, "type": record.type, "status": record.status,
            "parent_id": record.parent_id, "progress": record.progress_percent,
            "step": record.progress_step, "error": record.error}


def _get(connection: Connection, operation_id: str) -> OperationRecord:
    row = connection.execute(select(OPERATIONS).where(OPERATIONS.c.id == operation_id)).first()
    if row is None:
        raise NotFoundError(f"no operation {operation_id!r}")
    return OperationRecord.from_row(row)


def create_operation(db: Database, op_type: str, parameters: dict[str, Any] | None = None, *,
                     parent_id: str | None = None, metadata: dict[str, Any] | None = None,
                     enqueue: bool = True, priority: int = 0, max_attempts: int = 3,
                     connection: Connection | None = None) -> OperationRecord:
    """A new pending operation, and (``enqueue``) the queue job that will run it.

    ``parameters`` land in ``metadata.parameters``; ``metadata`` adds other keys.
    """
    now = utcnow()
    record_id = new_operation_id(op_type, now)
    meta = {**(metadata or {}), "parameters": dict(parameters or {})}

    def _create(conn: Connection) -> OperationRecord:
        if parent_id is not None:
            _get(conn, parent_id)
        conn.execute(insert(OPERATIONS).values(
            id=record_id, type=op_type, status="pending", parent_id=parent_id,
            progress_percent=0.0, progress_step="", items_done=0, items_total=0,
            progress_message="", metadata=meta, created_at=now, updated_at=now))
        if enqueue:
            conn.execute(insert(JOBS).values(
                operation_id=record_id, type=op_type, payload={}, priority=priority,
                status="queued", attempts=0, max_attempts=max_attempts, created_at=now))
        record = _get(conn, record_id)
        emit(conn, "operation", record_id, _summary(record))
        return record

    if connection is not None:
        return _create(connection)
    with db.write() as conn:
        return _create(conn)


def get_operation(db: Database, operation_id: str) -> OperationRecord:
    """The operation with that id (NotFoundError otherwise)."""
    with db.read() as connection:
        return _get(connection, operation_id)


def list_operations(db: Database, *, op_type: str | None = None, status: str | None = None,
                    active_only: bool = False, parent_id: str | None = None,
                    limit: int = 100, offset: int = 0) -> list[OperationRecord]:
    """Operations, newest first, filtered by type, status, activity or parent."""
    if status is not None and status not in OPERATION_STATUSES:
        raise ValueError(f"status must be one of {', '.join(OPERATION_STATUSES)}, got {status!r}")
    query = select(OPERATIONS)
    if op_type is not None:
        query = query.where(OPERATIONS.c.type == op_type)
    if status is not None:
        query = query.where(OPERATIONS.c.status == status)
    if active_only:
        query = query.where(OPERATIONS.c.status.in_(ACTIVE_STATUSES))
    if parent_id is not None:
        query = query.where(OPERATIONS.c.parent_id == parent_id)
    query = query.order_by(OPERATIONS.c.created_at.desc(), OPERATIONS.c.id.desc())
    query = query.limit(max(0, min(int(limit), MAX_LIST))).offset(max(0, int(offset)))
    with db.read() as connection:
        return [OperationRecord.from_row(r) for r in connection.execute(query).all()]


def children(db: Database, operation_id: str) -> list[OperationRecord]:
    """The direct children of an operation, oldest first (NotFoundError for an unknown id)."""
    with db.read() as connection:
        _get(connection, operation_id)
        rows = connection.execute(select(OPERATIONS).where(
            OPERATIONS.c.parent_id == operation_id).order_by(OPERATIONS.c.created_at,
                                                             OPERATIONS.c.id)).all()
    return [OperationRecord.from_row(r) for r in rows]


def aggregate_progress(db: Database, operation_id: str) -> dict[str, Any]:
    """The operation's own progress plus its children's: counts per status and the mean
    percent over children (a finished child counts 100)."""
    record = get_operation(db, operation_id)
    kids = children(db, operation_id)
    counts = {s: sum(1 for k in kids if k.status == s) for s in OPERATION_STATUSES}
    percents = [100.0 if k.status == "completed" else k.progress_percent for k in kids]
    return {"percent": record.progress_percent, "step": record.progress_step,
            "children": len(kids), "children_by_status": counts,
            "children_percent": sum(percents) / len(percents) if percents else None}


def mark_running(connection: Connection, operation_id: str, worker_id: str) -> bool:
    """pending -> running, by ``worker_id``; False when the operation is no longer pending."""
    now = utcnow()
    done = connection.execute(update(OPERATIONS).where(
        OPERATIONS.c.id == operation_id, OPERATIONS.c.status == "pending").values(
        status="running", worker_id=worker_id, started_at=func.coalesce(
            OPERATIONS.c.started_at, now), heartbeat_at=now, updated_at=now)).rowcount
    if done:
        emit(connection, "operation", operation_id, _summary(_get(connection, operation_id)))
    return bool(done)


def _writing(db: Database, connection: Connection | None):
    """``connection`` as is (its transaction is the caller's), else a new write transaction."""
    return contextlib.nullcontext(connection) if connection is not None else db.write()


def report_progress(db: Database, operation_id: str, *, percent: float, step: str = "",
                    done: int = 0, total: int = 0, message: str = "",
                    connection: Connection | None = None) -> None:
    """Write the progress row of a running operation (and its event); inside
    ``connection``'s transaction when given."""
    now = utcnow()
    values = {"progress_percent": float(max(0.0, min(100.0, percent))),
              "progress_step": step[:200], "items_done": int(done), "items_total": int(total),
              "progress_message": message[:2000], "updated_at": now, "heartbeat_at": now}
    with _writing(db, connection) as conn:
        changed = conn.execute(update(OPERATIONS).where(
            OPERATIONS.c.id == operation_id, OPERATIONS.c.status == "running").values(
            **values)).rowcount
        if changed:
            emit(conn, "progress", operation_id, {
                "id": operation_id, "percent": values["progress_percent"], "step": step,
                "done": int(done), "total": int(total), "message": message[:500]})


def merge_metadata(db: Database, operation_id: str, values: dict[str, Any], *,
                   connection: Connection | None = None) -> OperationRecord:
    """Add keys to an operation's metadata (the agent keeps its phase and child ids there);
    inside ``connection``'s transaction when given."""
    with _writing(db, connection) as conn:
        record = _get(conn, operation_id)
        meta = {**record.metadata, **values}
        conn.execute(update(OPERATIONS).where(OPERATIONS.c.id == operation_id).values(
            metadata=meta, updated_at=utcnow()))
        emit(conn, "operation", operation_id, {**_summary(record), "metadata": values})
        return _get(conn, operation_id)


def finish_operation(connection: Connection, operation_id: str, status: str, *,
                     result: dict[str, Any] | None = None, error: str | None = None) -> bool:
    """running|pending -> ``status`` (completed or failed); False if already finished."""
    if status not in ("completed", "failed"):
        raise ValueError(f"finish status must be completed or failed, got {status!r}")
    now = utcnow()
    values: dict[str, Any] = {"status": status, "completed_at": now, "updated_at": now,
                              "error": error}
    if result is not None:
        values["result_summary"] = result
    if status == "completed":
        values["progress_percent"] = 100.0
    done = connection.execute(update(OPERATIONS).where(
        OPERATIONS.c.id == operation_id, OPERATIONS.c.status.in_(ACTIVE_STATUSES)).values(
        **values)).rowcount
    if done:
        emit(connection, "operation", operation_id, _summary(_get(connection, operation_id)))
    return bool(done)


def _descendants(connection: Connection, operation_id: str) -> list[str]:
    found, frontier = [], [operation_id]
    while frontier:
        rows = connection.execute(select(OPERATIONS.c.id).where(
            OPERATIONS.c.parent_id.in_(frontier))).scalars().all()
        frontier = [r for r in rows if r not in found]
        found.extend(frontier)
    return found


def cancel_operation(db: Database, operation_id: str, reason: str = "cancelled by request"
                     ) -> OperationRecord:
    """Cancel an active operation and every active descendant, with their queue jobs.

    A worker running one of them notices within its cancel-poll interval (0.5 s) and stops
    at the next progress report. Cancelling a finished operation is a ConflictError.
    """
    with db.write() as connection:
        record = _get(connection, operation_id)
        if record.is_terminal:
            raise ConflictError(f"operation {operation_id} is already {record.status}")
        ids = [operation_id, *_descendants(connection, operation_id)]
        now = utcnow()
        active = connection.execute(select(OPERATIONS.c.id).where(
            OPERATIONS.c.id.in_(ids), OPERATIONS.c.status.in_(ACTIVE_STATUSES))).scalars().all()
        connection.execute(update(OPERATIONS).where(OPERATIONS.c.id.in_(active)).values(
            status="cancelled", error=reason[:2000], completed_at=now, updated_at=now))
        connection.execute(update(JOBS).where(
            JOBS.c.operation_id.in_(active), JOBS.c.status.in_(("queued", "running"))).values(
            status="cancelled", finished_at=now, error=reason[:2000]))
        for op_id in active:
            emit(connection, "operation", op_id, _summary(_get(connection, op_id)))
        return _get(connection, operation_id)


def retry_operation(db: Database, operation_id: str, *, priority: int = 0,
                    check: Callable[[Connection, OperationRecord], None] | None = None
                    ) -> OperationRecord:
    """A new operation (new id) with the same type, parameters and parent, queued; the clone's
    ``metadata.retry_of`` names the original. Only finished operations can be retried.
    ``check(connection, original)`` runs in the same write transaction before the clone is
    made, so a rule such as "one active agent cycle" holds for retries too."""
    with db.write() as connection:
        record = _get(connection, operation_id)
        if not record.is_terminal:
            raise ConflictError(f"operation {operation_id} is {record.status}; only completed, "
                           "failed or cancelled operations can be retried")
        if check is not None:
            check(connection, record)
        keep = {k: v for k, v in record.metadata.items()
                if k not in ("parameters", "retry_of") and not k.endswith("_op_id")
                and k not in ("phase", "resume")}
        return create_operation(db, record.type, record.parameters, parent_id=record.parent_id,
                                metadata={**keep, "retry_of": operation_id}, priority=priority,
                                connection=connection)


def cancel_requested(db: Database, operation_ids: Sequence[str]) -> set[str]:
    """Which of ``operation_ids`` are no longer active (cancelled or finished elsewhere)."""
    if not operation_ids:
        return set()
    with db.read() as connection:
        rows = connection.execute(select(OPERATIONS.c.id, OPERATIONS.c.status).where(
            OPERATIONS.c.id.in_(list(operation_ids)))).all()
    return {r.id for r in rows if r.status in TERMINAL_STATUSES}
