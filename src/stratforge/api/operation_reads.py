"""The read path of ``GET /operations/{id}``, the API's hottest route: the operation and
its children's aggregate in one indexed statement built once, written straight to JSON.

Same figures as ``ops.operations.aggregate_progress`` and the same JSON as
``OperationRecord.to_json`` (tests hold both equal), without the extra transactions, the
child rows and the deep copies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import bindparam, case, func, select, true

from stratforge.ops.db import Database
from stratforge.ops.models import Operation
from stratforge.ops.operations import NotFoundError
from stratforge.ops.records import OPERATION_STATUSES, iso

OPERATIONS = Operation.__table__
_KIDS = OPERATIONS.alias("kids")
_AGGREGATE = (
    select(func.count().label("n"),
           func.sum(case((_KIDS.c.status == "completed", 100.0),
                         else_=_KIDS.c.progress_percent)).label("percent_sum"),
           *(func.sum(case((_KIDS.c.status == s, 1), else_=0)).label(f"n_{s}")
             for s in OPERATION_STATUSES))
    .where(_KIDS.c.parent_id == bindparam("op_id"))
    .subquery("agg")
)
_DETAIL = (select(OPERATIONS, *_AGGREGATE.c)
           .select_from(OPERATIONS.join(_AGGREGATE, true()))
           .where(OPERATIONS.c.id == bindparam("op_id")))
_TIMES = ("created_at", "started_at", "completed_at", "updated_at", "heartbeat_at")


def operation_json(m: Mapping[str, Any]) -> dict[str, Any]:
    """An operations row (its mapping) as ``OperationRecord.to_json`` writes it."""
    out = {"id": m["id"], "type": m["type"], "status": m["status"],
           "parent_id": m["parent_id"], "metadata": dict(m["metadata"] or {}),
           "result_summary": m["result_summary"], "error": m["error"],
           "worker_id": m["worker_id"],
           "progress": {"percent": float(m["progress_percent"]), "step": m["progress_step"],
                        "items_done": int(m["items_done"]),
                        "items_total": int(m["items_total"]),
                        "message": m["progress_message"]}}
    for key in _TIMES:
        out[key] = iso(m[key])
    return out


def operation_detail(db: Database, operation_id: str) -> dict[str, Any]:
    """The operation as JSON plus ``aggregate``: its own percent and step, the number of
    children, their counts per status and their mean percent (a completed child counts 100;
    None without children). NotFoundError for an unknown id."""
    with db.read() as connection:
        row = connection.execute(_DETAIL, {"op_id": operation_id}).first()
    if row is None:
        raise NotFoundError(f"no operation {operation_id!r}")
    m = row._mapping
    out = operation_json(m)
    total = int(m["n"] or 0)
    out["aggregate"] = {
        "percent": out["progress"]["percent"], "step": out["progress"]["step"],
        "children": total,
        "children_by_status": {s: int(m[f"n_{s}"] or 0) for s in OPERATION_STATUSES},
        "children_percent": float(m["percent_sum"]) / total if total else None}
    return out
