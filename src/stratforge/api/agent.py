"""``/agent``: trigger, follow and cancel research cycles; the experiments they ran.

Every route calls ``stratforge.ops.agent.service``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query

from stratforge.api.agent_models import (
    AgentStatusOut,
    CancelCycleOut,
    CancelCycleRequest,
    ExperimentList,
    TriggerOut,
    TriggerRequest,
)
from stratforge.api.deps import MAX_INT, DbDep
from stratforge.api.errors import CONFLICT
from stratforge.api.operations_models import REASON_PATTERN
from stratforge.api.settings_models import require_finite
from stratforge.ops.agent import service

router = APIRouter(prefix="/agent", tags=["agent"])
DEFAULT_REASON = "cancelled by request"


@router.post("/trigger", status_code=202, response_model=TriggerOut,
             responses=CONFLICT)
def trigger(db: DbDep, body: Annotated[TriggerRequest | None, Body()] = None
            ) -> dict[str, Any]:
    """Queue one research cycle; 409 with `active_id` while another is pending or running,
    422 for an unknown designer or invalid overrides."""
    request = body or TriggerRequest()
    require_finite({"overrides": request.overrides or {}})
    op = service.trigger_cycle(db, bypass_gates=request.bypass_gates,
                               designer=request.designer, overrides=request.overrides)
    return {"operation_id": op.id, "operation": op.to_json()}


@router.get("/status", response_model=AgentStatusOut)
def status(db: DbDep) -> dict[str, Any]:
    """The active cycle (phase, child operation, progress, strategy), else the last one."""
    return service.agent_status(db)


@router.delete("/cancel", response_model=CancelCycleOut)
def cancel(db: DbDep,
           reason: Annotated[str | None, Query(max_length=2000, pattern=REASON_PATTERN)] = None,
           body: Annotated[CancelCycleRequest | None, Body()] = None) -> dict[str, Any]:
    """Cancel the active cycle and its running child (`cancelled` false when none is
    active)."""
    why = reason or (body.reason if body else None) or DEFAULT_REASON
    op = service.cancel_cycle(db, why)
    return {"cancelled": op is not None, "operation": op.to_json() if op else None}


@router.get("/experiments", response_model=ExperimentList)
def experiments(db: DbDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                offset: Annotated[int, Query(ge=0, le=MAX_INT)] = 0) -> dict[str, Any]:
    """Experiment records, newest first."""
    return {"experiments": service.list_experiments(db, limit=limit, offset=offset),
            "limit": limit, "offset": offset}
