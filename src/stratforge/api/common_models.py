"""Response models shared by several routers: an operation and its progress."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

OperationStatus = Literal["pending", "running", "completed", "failed", "cancelled"]


class ProgressOut(BaseModel):
    """An operation's own progress row."""

    percent: float = Field(description="0 to 100.")
    step: str = Field(description="The current phase or step.")
    items_done: int
    items_total: int
    message: str


class OperationOut(BaseModel):
    """One operation (the operations contract of ARCHITECTURE.md); times are ISO 8601 UTC."""

    id: str
    type: str
    status: OperationStatus
    parent_id: str | None
    progress: ProgressOut
    metadata: dict[str, Any] = Field(description="`parameters` holds the inputs; other keys "
                                                 "are kept by the job (run id, phase, ...).")
    result_summary: dict[str, Any] | None
    error: str | None
    created_at: str
    started_at: str | None
    completed_at: str | None
    updated_at: str
    worker_id: str | None
    heartbeat_at: str | None


class OperationList(BaseModel):
    """A page of operations."""

    operations: list[OperationOut]
    limit: int
    offset: int
