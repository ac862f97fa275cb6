"""What the API and the CLI call: trigger, status, cancel and the experiments list.

(Interface fixed first so the API can be written against it; the loop itself lives in
``ops.agent.jobs``.)
"""

from __future__ import annotations

from typing import Any

from stratforge.ops.db import Database
from stratforge.ops.records import OperationRecord

CYCLE_TYPE = "agent_cycle"


def trigger_cycle(db: Database, *, bypass_gates: bool = False, designer: str = "thompson",
                  overrides: dict[str, Any] | None = None) -> OperationRecord:
    """Queue a new research cycle (an ``agent_cycle`` operation) and return it.

    Raises ``ops.operations.ConflictError`` whose ``active_id`` attribute names the active
    cycle when one is pending or running; ``ConfigError`` for an unknown designer or invalid
    spec overrides (the message names the field).
    """
    raise NotImplementedError


def agent_status(db: Database) -> dict[str, Any]:
    """``{"active": bool, "operation": {...} | None, "phase": str, "child": {...} | None,
    "progress": {...}, "strategy": {...} | None}``: the active cycle, else the last one
    (``active`` False), else ``phase`` "idle" and no operation."""
    raise NotImplementedError


def cancel_cycle(db: Database, reason: str = "cancelled by request") -> OperationRecord | None:
    """Cancel the active cycle (and its running child); None when no cycle is active."""
    raise NotImplementedError


def list_experiments(db: Database, *, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
    """Experiment records, newest first, as JSON-ready dicts."""
    raise NotImplementedError
