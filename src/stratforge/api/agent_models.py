"""Request and response models of the agent routes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from stratforge.api.common_models import OperationOut
from stratforge.api.operations_models import REASON_PATTERN


class TriggerRequest(BaseModel):
    """What a research cycle may be told (docs/agent.md)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    bypass_gates: bool = Field(False, description="Skip both gates.")
    designer: str = Field("thompson", pattern=r"^[A-Za-z0-9_.-]{1,40}$",
                          description="The designer that proposes the experiment.")
    overrides: dict[str, Any] | None = Field(
        None, description="Spec fields to fix instead of letting the designer choose.")


class TriggerOut(BaseModel):
    """A queued cycle."""

    operation_id: str
    operation: OperationOut


class AgentStatusOut(BaseModel):
    """The active cycle, else the last one (``active`` false), else ``phase`` idle."""

    model_config = ConfigDict(extra="allow")

    active: bool
    operation: OperationOut | None = Field(description="The cycle's operation.")
    phase: str
    child: OperationOut | None = Field(description="The cycle's current child operation.")
    progress: dict[str, Any]
    strategy: dict[str, Any] | None = Field(description="The spec being tried.")
    experiment_id: str | None = None
    verdict: str | None = None
    phases: list[dict[str, Any]] = Field(default_factory=list,
                                         description="Phases entered, with times.")
    training_op_id: str | None = Field(None, description="The cycle's training child.")
    backtest_op_id: str | None = Field(None, description="The cycle's backtesting child.")
    child_operation_id: str | None = Field(None, description="The current child (the "
                                                             "backtest once it exists).")


class CancelCycleRequest(BaseModel):
    """The optional JSON body of a cycle cancel."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(None, max_length=2000, pattern=REASON_PATTERN)


class CancelCycleOut(BaseModel):
    """What a cycle cancel did."""

    cancelled: bool = Field(description="False when no cycle was active.")
    operation: OperationOut | None


class ExperimentOut(BaseModel):
    """One agent experiment: its design, outcome and assessment."""

    model_config = ConfigDict(extra="allow")

    id: str
    fingerprint: str | None = None
    operation_id: str | None = None
    spec: dict[str, Any] | None = None
    arm: str | None = None
    status: str | None = None
    verdict: str | None = None
    rejection_reason: str | None = None
    training_metrics: dict[str, Any] | None = None
    backtest_metrics: dict[str, Any] | None = None
    assessment: dict[str, Any] | None = None
    created_at: str | None = None
    completed_at: str | None = None


class ExperimentList(BaseModel):
    """A page of experiments, newest first."""

    experiments: list[ExperimentOut]
    limit: int
    offset: int
