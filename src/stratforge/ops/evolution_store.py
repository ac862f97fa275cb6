"""The evolution tables: recording models, generations, simulations and promotions, and the
reads behind the API (runs, a run with its generations, lineage, promoted models)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from stratforge.data.atomic import json_ready
from stratforge.ops.db import Database, utcnow
from stratforge.ops.models import (
    EvolutionGeneration,
    EvolutionModel,
    EvolutionPromotion,
    EvolutionSimulation,
    Operation,
)
from stratforge.ops.operations import NotFoundError, get_operation
from stratforge.ops.records import iso

MODELS = EvolutionModel.__table__
GENERATIONS = EvolutionGeneration.__table__
SIMULATIONS = EvolutionSimulation.__table__
PROMOTIONS = EvolutionPromotion.__table__
OPERATIONS = Operation.__table__
RUN_TYPE = "evolution_run"
SIMULATION_TYPE = "evolution_simulation"
MAX_LINEAGE = 1000


def record_model(db: Database, meta: dict[str, Any], run_id: str | None) -> None:
    """Insert a model row unless the fingerprint is known (first writer wins)."""
    identity = meta["identity"]
    row = {"fingerprint": meta["fingerprint"], "symbol": identity["symbol"],
           "timeframe": identity["timeframe"], "algorithm": identity["algorithm"],
           "parent_fingerprint": meta.get("parent"), "generation": int(meta["generation"]),
           "n_features": len(meta["features"]), "features": meta["features"],
           "identity": json_ready(identity), "importance": json_ready(meta["importance"]),
           "training": json_ready(meta["training"]), "run_operation_id": run_id,
           "created_at": utcnow()}
    _insert_once(db, MODELS, MODELS.c.fingerprint, row)


def model_known(db: Database, fingerprint: str) -> bool:
    """True when the database has the model."""
    with db.read() as connection:
        return connection.execute(select(MODELS.c.fingerprint).where(
            MODELS.c.fingerprint == fingerprint)).first() is not None


def _insert_once(db: Database, table, key, row: dict[str, Any]) -> bool:
    try:
        with db.write() as connection:
            if connection.execute(select(key).where(key == row[key.name])).first():
                return False
            connection.execute(insert(table).values(**row))
            return True
    except IntegrityError:  # a concurrent writer inserted it first
        return False


def record_simulation(db: Database, result: dict[str, Any], operation_id: str | None) -> bool:
    """Insert a finished simulation (False when it was recorded already)."""
    row = {"fingerprint": result["fingerprint"], "model_fingerprint": result["model"],
           "point": result["point"],
           "result": json_ready({k: v for k, v in result.items() if k != "cached"}),
           "operation_id": operation_id, "created_at": utcnow()}
    return _insert_once(db, SIMULATIONS, SIMULATIONS.c.fingerprint, row)


def known_simulations(connection: Connection, fingerprints: list[str]) -> set[str]:
    """The fingerprints among ``fingerprints`` with a recorded simulation."""
    found: set[str] = set()
    for start in range(0, len(fingerprints), 500):
        chunk = fingerprints[start:start + 500]
        found.update(connection.execute(select(SIMULATIONS.c.fingerprint).where(
            SIMULATIONS.c.fingerprint.in_(chunk))).scalars())
    return found


def simulation_results(db: Database, fingerprints: list[str]) -> dict[str, dict[str, Any]]:
    """Results of recorded simulations by fingerprint."""
    out: dict[str, dict[str, Any]] = {}
    with db.read() as connection:
        for start in range(0, len(fingerprints), 500):
            chunk = fingerprints[start:start + 500]
            for fp, result in connection.execute(select(
                    SIMULATIONS.c.fingerprint, SIMULATIONS.c.result).where(
                    SIMULATIONS.c.fingerprint.in_(chunk))):
                out[fp] = result
    return out


def get_generation(connection: Connection, run_id: str, generation: int) -> dict | None:
    """The generation row as a dict, or None."""
    row = connection.execute(select(GENERATIONS).where(
        GENERATIONS.c.run_operation_id == run_id,
        GENERATIONS.c.generation == generation)).mappings().first()
    return dict(row) if row else None


def insert_generation(connection: Connection, values: dict[str, Any]) -> None:
    """A new generation row (status ``simulating``)."""
    connection.execute(insert(GENERATIONS).values(
        **values, status="simulating", promoted=False, created_at=utcnow()))


def finish_generation(db: Database, run_id: str, generation: int,
                      values: dict[str, Any]) -> None:
    """Store a generation's best results and mark it completed."""
    with db.write() as connection:
        connection.execute(update(GENERATIONS).where(
            GENERATIONS.c.run_operation_id == run_id,
            GENERATIONS.c.generation == generation).values(
            **json_ready(values), status="completed", completed_at=utcnow()))


def lineage(db: Database, fingerprint: str) -> list[dict[str, Any]]:
    """The model and its ancestors back to the seed (NotFoundError for an unknown model)."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    current: str | None = fingerprint
    with db.read() as connection:
        while current is not None and current not in seen and len(out) < MAX_LINEAGE:
            seen.add(current)
            row = connection.execute(select(MODELS).where(
                MODELS.c.fingerprint == current)).mappings().first()
            if row is None:
                if not out:
                    raise NotFoundError(f"no evolution model {fingerprint!r}")
                break
            best = connection.execute(select(
                func.max(GENERATIONS.c.best_sqn), func.max(GENERATIONS.c.best_profit_factor)
            ).where(GENERATIONS.c.model_fingerprint == current)).first()
            promoted = connection.execute(select(func.count()).select_from(PROMOTIONS).where(
                PROMOTIONS.c.model_fingerprint == current)).scalar_one()
            out.append({"fingerprint": current, "generation": row["generation"],
                        "parent_fingerprint": row["parent_fingerprint"],
                        "n_features": row["n_features"], "algorithm": row["algorithm"],
                        "best_sqn": best[0] if best else None,
                        "best_profit_factor": best[1] if best else None,
                        "promoted": bool(promoted)})
            current = row["parent_fingerprint"]
    return out


def record_promotion(db: Database, values: dict[str, Any]) -> None:
    """Insert a promotion unless the model was promoted by the same run already."""
    try:
        with db.write() as connection:
            exists = connection.execute(select(PROMOTIONS.c.id).where(
                PROMOTIONS.c.model_fingerprint == values["model_fingerprint"],
                PROMOTIONS.c.run_operation_id == values["run_operation_id"])).first()
            if exists is None:
                connection.execute(insert(PROMOTIONS).values(**json_ready(values),
                                                             created_at=utcnow()))
    except IntegrityError:  # a concurrent writer recorded the same promotion first
        pass


def promoted_models(db: Database, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
    """Promoted models, newest first."""
    with db.read() as connection:
        rows = connection.execute(select(PROMOTIONS).order_by(
            PROMOTIONS.c.created_at.desc(), PROMOTIONS.c.id.desc()).limit(limit).offset(
            offset)).mappings().all()
    return [{"fingerprint": r["model_fingerprint"], "run_operation_id": r["run_operation_id"],
             "generation": r["generation"], "algorithm": r["algorithm"],
             "features": r["features"], "point": r["point"], "metrics": r["metrics"],
             "lineage": r["lineage"], "created_at": iso(r["created_at"])} for r in rows]


def _generation_rows(connection: Connection, run_ids: list[str]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {r: [] for r in run_ids}
    if not run_ids:
        return out
    rows = connection.execute(select(GENERATIONS).where(
        GENERATIONS.c.run_operation_id.in_(run_ids)).order_by(
        GENERATIONS.c.run_operation_id, GENERATIONS.c.generation)).mappings().all()
    for row in rows:
        out[row["run_operation_id"]].append(dict(row))
    return out


def _run_summary(op, generations: list[dict]) -> dict[str, Any]:
    params = op.parameters
    sqns = [g["best_sqn"] for g in generations if g["best_sqn"] is not None]
    best = max((g for g in generations if g["best_sqn"] is not None),
               key=lambda g: g["best_sqn"], default=None)
    result = op.result_summary or {}
    return {"operation_id": op.id, "status": op.status,
            "symbol": str(params.get("symbol", "MNQ")).upper(),
            "timeframe": str(params.get("timeframe", "1m")),
            "algorithm": str(params.get("algorithm", "elasticnet")),
            "generations": len(generations),
            "best_sqn": max(sqns) if sqns else None,
            "best_profit_factor": best["best_profit_factor"] if best else None,
            "promoted": sum(1 for g in generations if g["promoted"]),
            "stop_reason": result.get("stop_reason") or op.metadata.get("stop_reason"),
            "created_at": iso(op.created_at)}


def list_runs(db: Database, limit: int = 100, offset: int = 0) -> tuple[list[dict], int]:
    """Evolution runs, newest first, and how many there are."""
    from stratforge.ops.operations import list_operations

    ops = list_operations(db, op_type=RUN_TYPE, limit=limit, offset=offset)
    with db.read() as connection:
        total = connection.execute(select(func.count()).select_from(OPERATIONS).where(
            OPERATIONS.c.type == RUN_TYPE)).scalar_one()
        generations = _generation_rows(connection, [op.id for op in ops])
    return [_run_summary(op, generations[op.id]) for op in ops], int(total)


def run_detail(db: Database, run_id: str) -> dict[str, Any]:
    """A run with its generations (job counts, best results, top results)."""
    op = get_operation(db, run_id)
    if op.type != RUN_TYPE:
        raise NotFoundError(f"operation {run_id} is a {op.type} operation, not an evolution "
                            "run")
    with db.read() as connection:
        rows = _generation_rows(connection, [run_id])[run_id]
        generations = []
        for row in rows:
            done = len(known_simulations(connection, list(row["simulations"])))
            generations.append({
                "generation": row["generation"], "model_fingerprint": row["model_fingerprint"],
                "parent_fingerprint": row["parent_fingerprint"], "features": row["features"],
                "n_features": len(row["features"]), "status": row["status"],
                "reused": row["reused"], "priority": row["priority"],
                "jobs_total": row["jobs_total"], "jobs_done": done,
                "best_sqn": row["best_sqn"], "best_profit_factor": row["best_profit_factor"],
                "best_validation_sqn": row["best_validation_sqn"],
                "best_result": row["best_result"], "top_results": row["top_results"] or [],
                "promoted": row["promoted"], "failed_criteria": row["failed_criteria"] or [],
                "created_at": iso(row["created_at"]), "completed_at": iso(row["completed_at"])})
    out = _run_summary(op, rows)
    out.update(parameters=op.parameters, progress=op.progress_percent, error=op.error,
               stop_detail=(op.result_summary or {}).get("stop_detail"),
               generations=generations)
    return out
