"""``/evolution``: start evolution runs (as operations), read runs with their generations,
the lineage of a model and the promoted models."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from fastapi import Path as PathParam

from stratforge.api.deps import MAX_INT, DbDep, HomeDep
from stratforge.api.errors import NOT_FOUND, field_error
from stratforge.api.evolution_models import (
    EvolutionRunDetail,
    EvolutionRunList,
    EvolutionRunRequest,
    EvolutionRunStarted,
    LineageOut,
    PromotedList,
)
from stratforge.api.limits import check_workers
from stratforge.api.settings_models import given_values, validate_settings
from stratforge.data.demo import synthetic_symbols
from stratforge.data.load import list_symbols
from stratforge.evolution.config import make_evolution_config, with_default_timeframe
from stratforge.ops.evolution_store import (
    RUN_TYPE,
    lineage,
    list_runs,
    promoted_models,
    run_detail,
)
from stratforge.ops.operations import create_operation

router = APIRouter(prefix="/evolution", tags=["evolution"])
RunId = Annotated[str, PathParam(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$",
                                 description="The id of an evolution_run operation.")]
Fingerprint = Annotated[str, PathParam(pattern=r"^[0-9a-f]{64}$",
                                       description="A model fingerprint (64 hex digits).")]


@router.post("/runs", status_code=202, response_model=EvolutionRunStarted)
def start_run(db: DbDep, home: HomeDep,
              body: Annotated[EvolutionRunRequest | None, Body()] = None) -> dict[str, Any]:
    """Queue an evolution run (an `evolution_run` operation). Settings are checked first, so
    bad ones answer 422 naming the field; a symbol without data (other than those with a
    built-in synthetic market) is a 422 too; with no timeframe given, the store's finest
    default timeframe is taken. A worker needs `--concurrency 2` (the run waits on its
    simulations)."""
    parameters = with_default_timeframe(given_values(body), home)
    check_workers("n_jobs", parameters.get("n_jobs"))
    validate_settings(make_evolution_config, parameters)
    config = make_evolution_config(**parameters)
    known = set(list_symbols(home))
    buildable = set(synthetic_symbols(home))  # a symbol with a synthetic market is built
    for field, symbols in (("symbol", [config.symbol]),
                           ("reference_symbols", list(config.reference_symbols))):
        missing = [s for s in symbols if s not in known and s not in buildable]
        if missing:
            raise field_error(field, f"no data for {', '.join(missing)} (symbols with data: "
                                     f"{', '.join(sorted(known)) or 'none'}); ingest bars "
                                     "first with `stratforge data ingest`")
    op = create_operation(db, RUN_TYPE, parameters)
    return {"operation_id": op.id, "status": op.status, "grid_points": len(config.grid)}


@router.get("/runs", response_model=EvolutionRunList)
def get_runs(db: DbDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
             offset: Annotated[int, Query(ge=0, le=MAX_INT)] = 0) -> dict[str, Any]:
    """Evolution runs, newest first, with their best out-of-sample results."""
    items, total = list_runs(db, limit=limit, offset=offset)
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get("/runs/{operation_id}", response_model=EvolutionRunDetail, responses=NOT_FOUND)
def get_run(operation_id: RunId, db: DbDep) -> dict[str, Any]:
    """One run with its generations: model, features, job counts, best and top results."""
    return run_detail(db, operation_id)


@router.get("/models/{fingerprint}/lineage", response_model=LineageOut, responses=NOT_FOUND)
def get_lineage(fingerprint: Fingerprint, db: DbDep) -> dict[str, Any]:
    """The model and its ancestors, from the model back to the seed."""
    return {"fingerprint": fingerprint, "ancestors": lineage(db, fingerprint)}


@router.get("/promoted", response_model=PromotedList)
def get_promoted(db: DbDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                 offset: Annotated[int, Query(ge=0, le=MAX_INT)] = 0) -> dict[str, Any]:
    """Models that met the promotion criteria out-of-sample, newest first."""
    return {"items": promoted_models(db, limit=limit, offset=offset)}
