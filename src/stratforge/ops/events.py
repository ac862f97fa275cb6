"""The change feed: every operation, progress, job and agent change appends one event row."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select

from stratforge.ops.db import Database, utcnow
from stratforge.ops.models import Event
from stratforge.ops.records import iso

EVENTS = Event.__table__


def emit(connection: Connection, kind: str, operation_id: str | None,
         payload: dict[str, Any]) -> None:
    """Append an event inside the caller's transaction (so it commits with the change)."""
    connection.execute(insert(EVENTS).values(ts=utcnow(), kind=kind, operation_id=operation_id,
                                             payload=payload))


def events_after(db: Database, after_id: int = 0, limit: int = 500,
                 operation_id: str | None = None) -> list[dict[str, Any]]:
    """Events with id > ``after_id`` in id order (at most ``limit``), as JSON-ready dicts."""
    query = select(EVENTS).where(EVENTS.c.id > after_id).order_by(EVENTS.c.id).limit(limit)
    if operation_id is not None:
        query = query.where(EVENTS.c.operation_id == operation_id)
    with db.read() as connection:
        rows = connection.execute(query).all()
    return [{"id": int(r.id), "ts": iso(r.ts), "kind": r.kind, "operation_id": r.operation_id,
             "payload": r.payload} for r in rows]


def last_event_id(db: Database) -> int:
    """The id of the newest event (0 when there is none)."""
    from sqlalchemy import func

    with db.read() as connection:
        return int(connection.execute(select(func.max(EVENTS.c.id))).scalar() or 0)
