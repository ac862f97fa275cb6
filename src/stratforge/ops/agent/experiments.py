"""Experiment records: one row per design a cycle tried (the ``experiments`` table).

An experiment is claimed when its cycle has designed it (status ``running``), and finished
at assessment as ``completed`` (passed the gates, or gates bypassed) or ``rejected`` (a gate
failed; ``rejection_reason`` says which rules), with its verdict, metrics and assessment. A
cycle that is cancelled or fails leaves its experiment ``cancelled`` or ``failed``; such a
design may be tried again (the row is reused), while ``running``, ``completed`` and
``rejected`` fingerprints are never proposed again. Every change appends an ``agent`` event.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select, update

from stratforge.errors import StratforgeError
from stratforge.ops.db import Database, utcnow
from stratforge.ops.events import emit
from stratforge.ops.models import Experiment
from stratforge.ops.operations import MAX_LIST, ConflictError, NotFoundError
from stratforge.ops.records import iso

EXPERIMENTS = Experiment.__table__
TRIED_STATUSES = ("running", "completed", "rejected")
"""Statuses whose fingerprint the designer never proposes again."""
FINISHED_STATUSES = ("completed", "rejected")


def experiment_id(fingerprint: str) -> str:
    """``exp_<first 16 hex of the fingerprint>``."""
    return f"exp_{fingerprint[:16]}"


def _json(row: Any) -> dict[str, Any]:
    m = row._mapping
    return {"id": m["id"], "fingerprint": m["fingerprint"], "operation_id": m["operation_id"],
            "spec": m["spec"], "arm": m["arm"], "status": m["status"], "verdict": m["verdict"],
            "rejection_reason": m["rejection_reason"],
            "training_metrics": m["training_metrics"], "backtest_metrics": m["backtest_metrics"],
            "assessment": m["assessment"], "created_at": iso(m["created_at"]),
            "completed_at": iso(m["completed_at"])}


def _event(connection: Connection, record_id: str) -> None:
    row = connection.execute(select(EXPERIMENTS).where(EXPERIMENTS.c.id == record_id)).first()
    if row is not None:
        emit(connection, "agent", row.operation_id,
             {"experiment_id": row.id, "status": row.status, "verdict": row.verdict,
              "arm": row.arm})


def history(db: Database) -> list[dict[str, Any]]:
    """Every experiment as ``{fingerprint, arm, status, verdict}``, oldest first (what a
    designer learns from)."""
    query = select(EXPERIMENTS.c.fingerprint, EXPERIMENTS.c.arm, EXPERIMENTS.c.status,
                   EXPERIMENTS.c.verdict).order_by(EXPERIMENTS.c.created_at, EXPERIMENTS.c.id)
    with db.read() as connection:
        return [dict(r._mapping) for r in connection.execute(query).all()]


def claim_experiment(db: Database, *, spec: dict[str, Any], fingerprint: str, arm: str,
                     operation_id: str) -> str:
    """Record that ``operation_id`` is trying this design; returns the experiment id.

    Idempotent for the same operation (a resumed cycle); a ``cancelled`` or ``failed`` row
    of the same design is taken over; a design another cycle tried is a ConflictError.
    """
    record_id = experiment_id(fingerprint)
    with db.write() as connection:
        row = connection.execute(select(EXPERIMENTS).where(
            EXPERIMENTS.c.fingerprint == fingerprint)).first()
        if row is None:
            connection.execute(insert(EXPERIMENTS).values(
                id=record_id, fingerprint=fingerprint, operation_id=operation_id, spec=spec,
                arm=arm[:200], status="running", created_at=utcnow()))
        elif row.operation_id == operation_id:
            return row.id
        elif row.status in TRIED_STATUSES:
            raise ConflictError(f"design {fingerprint[:16]} was already tried by "
                                f"{row.operation_id} (experiment {row.id}, {row.status}); "
                                "change a spec field to try something new",
                                active_id=row.operation_id)
        else:
            connection.execute(update(EXPERIMENTS).where(EXPERIMENTS.c.id == row.id).values(
                operation_id=operation_id, spec=spec, arm=arm[:200], status="running",
                verdict=None, rejection_reason=None, training_metrics=None,
                backtest_metrics=None, assessment=None, created_at=utcnow(),
                completed_at=None))
            record_id = row.id
        _event(connection, record_id)
    return record_id


def finish_experiment(db: Database, record_id: str, *, status: str, verdict: str | None,
                      rejection_reason: str | None, training_metrics: dict[str, Any] | None,
                      backtest_metrics: dict[str, Any] | None,
                      assessment: dict[str, Any] | None) -> None:
    """Store the outcome of an experiment (``completed`` or ``rejected``)."""
    if status not in FINISHED_STATUSES:
        raise StratforgeError(f"an experiment finishes as completed or rejected, not {status!r}")
    with db.write() as connection:
        connection.execute(update(EXPERIMENTS).where(EXPERIMENTS.c.id == record_id).values(
            status=status, verdict=verdict, rejection_reason=rejection_reason,
            training_metrics=training_metrics, backtest_metrics=backtest_metrics,
            assessment=assessment, completed_at=utcnow()))
        _event(connection, record_id)


def abandon_experiments(db: Database, operation_id: str, status: str) -> int:
    """Mark the running experiment of ``operation_id`` ``cancelled`` or ``failed``."""
    with db.write() as connection:
        ids = connection.execute(select(EXPERIMENTS.c.id).where(
            EXPERIMENTS.c.operation_id == operation_id,
            EXPERIMENTS.c.status == "running")).scalars().all()
        if ids:
            connection.execute(update(EXPERIMENTS).where(EXPERIMENTS.c.id.in_(ids)).values(
                status=status, completed_at=utcnow()))
        for record_id in ids:
            _event(connection, record_id)
        return len(ids)


def get_experiment(db: Database, record_id: str) -> dict[str, Any]:
    """One experiment as a JSON-ready dict (NotFoundError otherwise)."""
    with db.read() as connection:
        row = connection.execute(select(EXPERIMENTS).where(EXPERIMENTS.c.id == record_id)
                                 ).first()
    if row is None:
        raise NotFoundError(f"no experiment {record_id!r}")
    return _json(row)


def experiments_page(db: Database, *, limit: int = 100, offset: int = 0
                     ) -> list[dict[str, Any]]:
    """Experiments, newest first, as JSON-ready dicts."""
    query = select(EXPERIMENTS).order_by(EXPERIMENTS.c.created_at.desc(),
                                         EXPERIMENTS.c.id.desc())
    query = query.limit(max(0, min(int(limit), MAX_LIST))).offset(max(0, int(offset)))
    with db.read() as connection:
        return [_json(r) for r in connection.execute(query).all()]
