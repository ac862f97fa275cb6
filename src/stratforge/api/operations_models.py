"""Request and response models of the operations routes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from stratforge.api.common_models import OperationOut

REASON_PATTERN = r"^[^\x00]*$"
"""Any text but NUL (PostgreSQL text columns refuse it)."""


class CancelRequest(BaseModel):
    """The optional JSON body of a cancel request."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(None, max_length=2000, pattern=REASON_PATTERN,
                               description="Why; kept in the operation's `error` field.")


class AggregateProgress(BaseModel):
    """The operation's own progress plus its direct children's."""

    percent: float = Field(description="The operation's own percent.")
    step: str = Field(description="The operation's own step.")
    children: int = Field(description="How many direct children it has.")
    children_by_status: dict[str, int] = Field(description="Children per status.")
    children_percent: float | None = Field(
        description="Mean percent over the children (a completed one counts 100); null "
                    "without children.")


class OperationDetail(OperationOut):
    """One operation with the aggregated progress of its children."""

    aggregate: AggregateProgress
