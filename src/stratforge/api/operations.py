"""``/operations``: list, read, children, cancel and retry."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query

from stratforge.api.common_models import OperationList, OperationOut, OperationStatus
from stratforge.api.deps import ID_PATTERN, MAX_INT, TYPE_PATTERN, DbDep, OperationId, run_db
from stratforge.api.errors import ERROR_RESPONSES, NOT_FOUND
from stratforge.api.operation_reads import operation_detail
from stratforge.api.operations_models import REASON_PATTERN, CancelRequest, OperationDetail
from stratforge.ops.agent import service
from stratforge.ops.operations import (
    MAX_LIST,
    cancel_operation,
    children,
    list_operations,
)

router = APIRouter(prefix="/operations", tags=["operations"])
DEFAULT_REASON = "cancelled by request"
LISTED_VALUE_BYTES = 1024
"""In listings, a metadata value (or parameter) whose JSON is longer is summarised."""
LISTED_TEXT_CHARS = 1000
"""In listings, an error or progress message is cut to this many characters."""


def _size(value: Any) -> int:
    return len(json.dumps(value, default=str))


def _summarised(value: Any) -> Any:
    size = _size(value)
    return value if size <= LISTED_VALUE_BYTES else {"truncated": True, "bytes": size}


def listed(op: dict[str, Any]) -> dict[str, Any]:
    """An operation as a listing shows it: each metadata value and each parameter over
    ``LISTED_VALUE_BYTES`` of JSON replaced by ``{"truncated": true, "bytes": N}``, the
    result summary likewise, long texts cut (``GET /operations/{id}`` has them whole)."""
    metadata = dict(op.get("metadata") or {})
    parameters = metadata.get("parameters")
    for key, value in metadata.items():
        if key != "parameters":
            metadata[key] = _summarised(value)
    if isinstance(parameters, dict):
        metadata["parameters"] = {k: _summarised(v) for k, v in parameters.items()}
        if _size(metadata["parameters"]) > 8 * LISTED_VALUE_BYTES:
            metadata["parameters"] = {"truncated": True, "bytes": _size(parameters)}
    elif parameters is not None:
        metadata["parameters"] = _summarised(parameters)
    out = {**op, "metadata": metadata, "result_summary": _summarised(op.get("result_summary"))}
    if isinstance(out.get("error"), str) and len(out["error"]) > LISTED_TEXT_CHARS:
        out["error"] = out["error"][:LISTED_TEXT_CHARS] + "…"
    progress = out.get("progress")
    if isinstance(progress, dict) and isinstance(progress.get("message"), str) and \
            len(progress["message"]) > LISTED_TEXT_CHARS:
        out["progress"] = {**progress, "message": progress["message"][:LISTED_TEXT_CHARS] + "…"}
    return out


@router.get("", response_model=OperationList)
async def list_route(
    db: DbDep,
    type: Annotated[str | None, Query(pattern=TYPE_PATTERN,
                                      description="Only this operation type.")] = None,
    status: Annotated[OperationStatus | None, Query(description="Only this status.")] = None,
    active_only: Annotated[bool, Query(description="Pending or running only.")] = False,
    parent_id: Annotated[str | None, Query(pattern=ID_PATTERN,
                                           description="Only children of this one.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
) -> dict[str, Any]:
    """Operations, newest first, filtered by type, status, activity or parent; parameters
    and other metadata longer than 1 KiB of JSON are summarised (`{"truncated": true,
    "bytes": N}`; `GET /operations/{id}` has them whole)."""
    found = await run_db(db, lambda: list_operations(
        db, op_type=type, status=status, active_only=active_only, parent_id=parent_id,
        limit=limit, offset=offset))
    return {"operations": [listed(op.to_json()) for op in found], "limit": limit,
            "offset": offset}


@router.get("/{operation_id}", response_model=OperationDetail, responses=NOT_FOUND)
async def get_route(operation_id: OperationId, db: DbDep) -> dict[str, Any]:
    """One operation, with the aggregated progress of its children (`aggregate`)."""
    return await run_db(db, operation_detail, db, operation_id)


@router.get("/{operation_id}/children", response_model=OperationList,
            responses=NOT_FOUND)
async def children_route(operation_id: OperationId, db: DbDep) -> dict[str, Any]:
    """The direct children of an operation, oldest first."""
    kids = await run_db(db, children, db, operation_id)
    return {"operations": [listed(op.to_json()) for op in kids], "limit": len(kids),
            "offset": 0}


@router.delete("/{operation_id}", response_model=OperationOut, responses=ERROR_RESPONSES)
def cancel_route(
    operation_id: OperationId,
    db: DbDep,
    reason: Annotated[str | None, Query(max_length=2000, pattern=REASON_PATTERN,
                                        description="Why (or give it in the body).")] = None,
    body: Annotated[CancelRequest | None, Body()] = None,
) -> dict[str, Any]:
    """Cancel an active operation and its active descendants (409 when already finished).
    The reason comes from `?reason=`, else the JSON body's `reason`."""
    why = reason or (body.reason if body else None) or DEFAULT_REASON
    return cancel_operation(db, operation_id, why).to_json()


@router.post("/{operation_id}/retry", status_code=202, response_model=OperationOut,
             responses=ERROR_RESPONSES)
def retry_route(operation_id: OperationId, db: DbDep) -> dict[str, Any]:
    """Queue a finished operation again under a new id (`metadata.retry_of` names the
    original); 409 while it is still active, and for an agent cycle while another cycle is
    active (`active_id` names it), as `POST /agent/trigger` answers."""
    return service.retry(db, operation_id).to_json()
