"""What the API and the CLI call: trigger, status, cancel and the experiments list.

(Interface fixed first so the API can be written against it; the loop itself lives in
``ops.agent.jobs``.)
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Connection, select, text

from stratforge.config import resolve_home
from stratforge.data.demo import DEMO_SYMBOL, synthetic_symbols
from stratforge.data.store import AtlasStore
from stratforge.errors import ConfigError
from stratforge.ops.agent.cycle import CYCLE_TYPE, PHASES
from stratforge.ops.agent.designer import get_designer
from stratforge.ops.agent.experiments import abandon_experiments, experiments_page
from stratforge.ops.agent.settings import ENV_PREFIX, agent_settings
from stratforge.ops.agent.spec import MODEL_ALGORITHMS, Hierarchy, validate_overrides
from stratforge.ops.db import Database, utcnow
from stratforge.ops.models import Operation
from stratforge.ops.operations import (
    ConflictError,
    NotFoundError,
    cancel_operation,
    create_operation,
    get_operation,
    list_operations,
    retry_operation,
)
from stratforge.ops.records import ACTIVE_STATUSES, OperationRecord, iso

__all__ = ["CYCLE_TYPE", "PHASES", "agent_status", "cancel_cycle", "list_experiments",
           "retry", "trigger_cycle"]

OPERATIONS = Operation.__table__
_TRIGGER_LOCK = 7_301_118  # PostgreSQL advisory lock: one trigger checks-and-creates at a time


def _hierarchy_setting(name: str, value: str) -> list[str]:
    try:
        return list(TypeAdapter(Hierarchy).validate_python(value))
    except ValidationError as exc:
        raise ConfigError(f"{ENV_PREFIX}{name.upper()}: {exc.errors()[0]['msg']}") from None


def _defaults() -> dict[str, Any]:
    settings = agent_settings()
    return {"seed": settings.seed, "n_sets": settings.n_sets,
            "timeframes": _hierarchy_setting("timeframes", settings.timeframes),
            "signal_timeframes": _hierarchy_setting("signal_timeframes",
                                                    settings.signal_timeframes),
            **model_defaults(settings),
            "gates": settings.thresholds().model_dump()}


def model_defaults(settings: Any) -> dict[str, Any]:
    """``design_kinds`` and the model options of the agent settings, checked (ConfigError
    naming the variable)."""
    def items(name: str) -> list[str]:
        return [v.strip() for v in str(getattr(settings, name)).split(",") if v.strip()]

    kinds = items("design_kinds")
    if not kinds or set(kinds) - {"template", "model"}:
        raise ConfigError(f"{ENV_PREFIX}DESIGN_KINDS: give template, model or template,model; "
                          f"got {settings.design_kinds!r}")
    algorithms = items("model_algorithms")
    bad = sorted(set(algorithms) - set(MODEL_ALGORITHMS))
    if bad:
        raise ConfigError(f"{ENV_PREFIX}MODEL_ALGORITHMS: unknown {', '.join(bad)}; known: "
                          f"{', '.join(MODEL_ALGORITHMS)}")
    try:
        horizons = [int(v) for v in items("model_horizons")]
    except ValueError:
        horizons = [0]
    if not horizons or min(horizons) < 1:
        raise ConfigError(f"{ENV_PREFIX}MODEL_HORIZONS: give whole numbers of bars >= 1, "
                          f"e.g. 3,12; got {settings.model_horizons!r}")
    return {"design_kinds": kinds, "model_feature_sets": items("model_feature_sets"),
            "model_algorithms": algorithms or ["elasticnet"], "model_horizons": horizons}


def trigger_cycle(db: Database, *, bypass_gates: bool = False, designer: str = "thompson",
                  overrides: dict[str, Any] | None = None) -> OperationRecord:
    """Queue a new research cycle (an ``agent_cycle`` operation) and return it.

    Raises ``ops.operations.ConflictError`` whose ``active_id`` attribute names the active
    cycle when one is pending or running; ``ConfigError`` for an unknown designer or invalid
    spec overrides (the message names the field).
    """
    get_designer(designer)
    clean = validate_overrides(overrides)
    defaults = _defaults()
    symbol = str(clean.get("symbol", DEMO_SYMBOL))
    home = resolve_home()
    if symbol not in synthetic_symbols(home) and not AtlasStore.open(symbol, home).exists:
        raise ConfigError(f"override symbol: no data for {symbol}; ingest bars with "
                          f"`stratforge data ingest` or use one of "
                          f"{', '.join(synthetic_symbols(home))} (built-in synthetic markets)")
    parameters = {"bypass_gates": bool(bypass_gates), "designer": designer,
                  "overrides": clean, "gates": defaults.pop("gates"), "defaults": defaults}
    metadata = {"phase": "idle", "phases": [{"phase": "idle", "at": iso(utcnow())}]}
    with db.write() as connection:
        _refuse_if_active(db, connection)
        return create_operation(db, CYCLE_TYPE, parameters, metadata=metadata,
                                connection=connection)


def _refuse_if_active(db: Database, connection: Connection) -> None:
    """The one-active-cycle rule, inside the caller's write transaction: ConflictError
    naming the active cycle when one is pending or running."""
    if db.is_postgres:
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _TRIGGER_LOCK})
    active = connection.execute(select(OPERATIONS.c.id).where(
        OPERATIONS.c.type == CYCLE_TYPE, OPERATIONS.c.status.in_(ACTIVE_STATUSES)
    ).order_by(OPERATIONS.c.created_at).limit(1)).scalar()
    if active is not None:
        raise ConflictError(f"research cycle {active} is still active; wait for it to "
                            "finish or cancel it first", active_id=active)


def retry(db: Database, operation_id: str) -> OperationRecord:
    """``ops.operations.retry_operation`` for any operation; retrying an agent cycle goes
    through the same one-active-cycle rule as ``trigger_cycle`` (ConflictError with
    ``active_id`` while another cycle is pending or running)."""
    def check(connection: Connection, record: OperationRecord) -> None:
        if record.type == CYCLE_TYPE:
            _refuse_if_active(db, connection)

    return retry_operation(db, operation_id, check=check)


def _latest(db: Database, *, active_only: bool) -> OperationRecord | None:
    found = list_operations(db, op_type=CYCLE_TYPE, active_only=active_only, limit=1)
    return found[0] if found else None


def _child(db: Database, meta: dict[str, Any]) -> OperationRecord | None:
    child_id = meta.get("backtesting_op_id") or meta.get("training_op_id")
    if not child_id:
        return None
    try:
        return get_operation(db, child_id)
    except NotFoundError:
        return None


def agent_status(db: Database) -> dict[str, Any]:
    """``{"active": bool, "operation": {...} | None, "phase": str, "child": {...} | None,
    "progress": {...}, "strategy": {...} | None, "training_op_id", "backtest_op_id",
    "child_operation_id"}`` (the child ids also at the top level: the training and backtest
    children, and the current one, which ``child`` describes): the active cycle, else the last one
    (``active`` False), else ``phase`` "idle" and no operation."""
    active = _latest(db, active_only=True)
    record = active or _latest(db, active_only=False)
    if record is None:
        return {"active": False, "operation": None, "phase": "idle", "child": None,
                "progress": {"percent": 0.0, "step": "", "message": "", "child_percent": None},
                "strategy": None, "experiment_id": None, "verdict": None, "phases": [],
                "training_op_id": None, "backtest_op_id": None, "child_operation_id": None}
    meta = record.metadata
    if active is not None:
        phase = str(meta.get("phase") or "idle")
    else:
        phase = "completed" if record.status == "completed" else record.status
    child = _child(db, meta)
    return {"active": active is not None, "operation": record.to_json(), "phase": phase,
            "child": child.to_json() if child else None,
            "progress": {"percent": record.progress_percent, "step": record.progress_step,
                         "message": record.progress_message,
                         "child_percent": child.progress_percent if child else None},
            "strategy": meta.get("spec"), "experiment_id": meta.get("experiment_id"),
            "verdict": meta.get("verdict"), "phases": list(meta.get("phases") or []),
            "training_op_id": meta.get("training_op_id"),
            "backtest_op_id": meta.get("backtesting_op_id"),
            "child_operation_id": child.id if child else None}


def cancel_cycle(db: Database, reason: str = "cancelled by request") -> OperationRecord | None:
    """Cancel the active cycle (and its running child); None when no cycle is active."""
    active = _latest(db, active_only=True)
    if active is None:
        return None
    try:
        record = cancel_operation(db, active.id, reason)
    except ConflictError:  # it finished between the look-up and the cancel
        return None
    abandon_experiments(db, active.id, "cancelled")
    return record


def list_experiments(db: Database, *, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
    """Experiment records, newest first, as JSON-ready dicts."""
    return experiments_page(db, limit=limit, offset=offset)
