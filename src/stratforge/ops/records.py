"""Plain records of table rows (what every layer above the database passes around)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

ACTIVE_STATUSES = ("pending", "running")
TERMINAL_STATUSES = ("completed", "failed", "cancelled")
OPERATION_STATUSES = (*ACTIVE_STATUSES, *TERMINAL_STATUSES)
JOB_STATUSES = ("queued", "running", "completed", "failed", "cancelled")


def iso(value: datetime | None) -> str | None:
    """A stored naive-UTC datetime as ISO 8601 with the zone (``...Z``); None stays None."""
    return None if value is None else value.isoformat(timespec="microseconds") + "Z"


@dataclass
class OperationRecord:
    """One operation: the contract's fields (``metadata.parameters`` holds its inputs)."""

    id: str
    type: str
    status: str
    parent_id: str | None
    progress_percent: float
    progress_step: str
    items_done: int
    items_total: int
    progress_message: str
    metadata: dict[str, Any]
    result_summary: dict[str, Any] | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    updated_at: datetime
    worker_id: str | None
    heartbeat_at: datetime | None

    @classmethod
    def from_row(cls, row: Any) -> OperationRecord:
        """From a row of the operations table."""
        m = row._mapping
        return cls(m["id"], m["type"], m["status"], m["parent_id"], float(m["progress_percent"]),
                   m["progress_step"], int(m["items_done"]), int(m["items_total"]),
                   m["progress_message"], dict(m["metadata"] or {}), m["result_summary"],
                   m["error"], m["created_at"], m["started_at"], m["completed_at"],
                   m["updated_at"], m["worker_id"], m["heartbeat_at"])

    @property
    def parameters(self) -> dict[str, Any]:
        """``metadata.parameters``: the inputs the operation was created with."""
        return dict(self.metadata.get("parameters") or {})

    @property
    def is_terminal(self) -> bool:
        """Completed, failed or cancelled."""
        return self.status in TERMINAL_STATUSES

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (times as ISO 8601 UTC)."""
        out = asdict(self)
        for key in ("created_at", "started_at", "completed_at", "updated_at", "heartbeat_at"):
            out[key] = iso(out[key])
        out["progress"] = {"percent": self.progress_percent, "step": self.progress_step,
                           "items_done": self.items_done, "items_total": self.items_total,
                           "message": self.progress_message}
        for key in ("progress_percent", "progress_step", "items_done", "items_total",
                    "progress_message"):
            out.pop(key)
        return out


@dataclass
class JobRecord:
    """One entry of the job queue."""

    id: int
    operation_id: str | None
    type: str
    payload: dict[str, Any]
    priority: int
    status: str
    attempts: int
    max_attempts: int
    worker_id: str | None
    heartbeat_at: datetime | None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: Any) -> JobRecord:
        """From a row of the jobs table."""
        m = row._mapping
        return cls(int(m["id"]), m["operation_id"], m["type"], dict(m["payload"] or {}),
                   int(m["priority"]), m["status"], int(m["attempts"]), int(m["max_attempts"]),
                   m["worker_id"], m["heartbeat_at"], m["created_at"], m["started_at"],
                   m["finished_at"], m["error"])

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (times as ISO 8601 UTC)."""
        out = asdict(self)
        out.pop("extra")
        for key in ("heartbeat_at", "created_at", "started_at", "finished_at"):
            out[key] = iso(out[key])
        return out
