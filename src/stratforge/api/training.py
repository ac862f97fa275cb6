"""``/training/runs``: start day-by-day training runs (as operations) and read their logs and
reports (``<home>/training/<operation id>/``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Body, Query
from fastapi.responses import FileResponse, Response

from stratforge.api.common_models import OperationOut
from stratforge.api.dashboard_models import PriceFormat, TrainingDaysOut
from stratforge.api.deps import DbDep, HomeDep, OperationId
from stratforge.api.errors import NOT_FOUND
from stratforge.api.files import (
    HTML_DOCUMENT,
    JSON_DOCUMENT,
    html_file_response,
    json_file_response,
    read_document,
)
from stratforge.api.settings_models import given_values, validate_settings
from stratforge.api.training_models import TrainingRunOut, TrainingRunRequest, TrainingRunsOut
from stratforge.data.atomic import json_ready
from stratforge.instruments import get_instrument
from stratforge.ops.db import Database
from stratforge.ops.operations import NotFoundError, create_operation, get_operation
from stratforge.ops.records import OperationRecord
from stratforge.ops.training_runs import TRAINING_TYPE, list_training_runs, training_folder_of
from stratforge.search.brain import BayesianBrain
from stratforge.trainer.analysis import strongest_states
from stratforge.trainer.config import TrainConfig, make_train_config
from stratforge.trainer.loop import BRAIN_FILE, DAYS_FILE, learned_trades_file
from stratforge.trainer.report import REPORT_NAME
from stratforge.trainer.summary import LOG_FILE

router = APIRouter(prefix="/training", tags=["training"])


@router.post("/runs", status_code=202, response_model=OperationOut)
def start_run(db: DbDep, body: Annotated[TrainingRunRequest | None, Body()] = None
              ) -> dict[str, Any]:
    """Queue a training run (a `training_run` operation); the settings are checked first, so
    bad ones answer 422 naming the field."""
    parameters = given_values(body)
    validate_settings(make_train_config, parameters)
    return create_operation(db, TRAINING_TYPE, parameters).to_json()


@router.get("/runs", response_model=TrainingRunsOut)
def list_runs(db: DbDep, home: HomeDep,
              limit: Annotated[int, Query(ge=1, le=500)] = 100) -> dict[str, Any]:
    """Every training run of the home: each `training_run` operation (from the API, the
    dashboard, the agent or `stratforge train`), newest first, with its days trained so far;
    then training folders that no operation names."""
    return {"runs": list_training_runs(db, home, limit)}


def training_operation(db: Database, home: Path, operation_id: str
                       ) -> tuple[OperationRecord, Path]:
    """The training operation and its folder (NotFoundError for another type)."""
    op = get_operation(db, operation_id)
    if op.type != TRAINING_TYPE:
        raise NotFoundError(f"operation {operation_id} is a {op.type} operation, not a "
                            "training run")
    return op, training_folder_of(op, home)


@router.get("/runs/{operation_id}", response_model=TrainingRunOut, responses=NOT_FOUND)
def get_run(operation_id: OperationId, db: DbDep, home: HomeDep) -> dict[str, Any]:
    """The operation, its folder, and the log's summary once the run has finished."""
    op, folder = training_operation(db, home, operation_id)
    log = folder / LOG_FILE
    summary = read_document(log, "training log").get("summary") if log.is_file() else None
    return {"operation": op.to_json(), "folder": str(folder), "log": log.is_file(),
            "report": (folder / REPORT_NAME).is_file(), "summary": summary}


@router.get("/runs/{operation_id}/log", response_class=Response,
            responses={**JSON_DOCUMENT, **NOT_FOUND})
def get_log(operation_id: OperationId, db: DbDep, home: HomeDep) -> Response:
    """`training_log.json`: summary, strongest states, breakdowns, learning progression,
    parameter evolution, regret and the days."""
    op, folder = training_operation(db, home, operation_id)
    return json_file_response(folder / LOG_FILE, f"the training log of {op.id}")


@router.get("/runs/{operation_id}/report", response_class=FileResponse,
            responses={**HTML_DOCUMENT, **NOT_FOUND})
def get_report(operation_id: OperationId, db: DbDep, home: HomeDep) -> FileResponse:
    """`training_report.html`: the run's self-contained report."""
    op, folder = training_operation(db, home, operation_id)
    return html_file_response(folder / REPORT_NAME, f"the training report of {op.id}")


@router.get("/runs/{operation_id}/days", response_model=TrainingDaysOut, responses=NOT_FOUND)
def get_days(operation_id: OperationId, db: DbDep, home: HomeDep) -> Any:
    """The days trained so far (the per-day checkpoint, `days.parquet`, so it grows while
    the run goes), the operation's status, and the strongest states: from the log once it
    is written, before that from the checkpoint's brain and trades (`strongest_from` says
    which; `null` before the first day); `market` gives the currency of the PnL and the
    decimals of prices for the run's symbol."""
    op, folder = training_operation(db, home, operation_id)
    days: list[dict[str, Any]] = []
    if (folder / DAYS_FILE).is_file():
        frame = pd.read_parquet(folder / DAYS_FILE)
        days = frame.astype(object).where(frame.notna(), None).to_dict("records")
    strongest, source = None, None
    if (folder / LOG_FILE).is_file():
        strongest = read_document(folder / LOG_FILE, "training log").get("strongest_states")
        source = "log"
    elif (folder / BRAIN_FILE).is_file():
        learned = learned_trades_file(folder)
        trades = pd.read_parquet(learned) if learned.is_file() else pd.DataFrame()
        states = strongest_states(BayesianBrain.load(folder / BRAIN_FILE), trades)
        strongest = states.astype(object).where(states.notna(), None).to_dict("records")
        source = "checkpoint"
    symbol = str(op.parameters.get("symbol") or TrainConfig.model_fields["symbol"].default)
    market = PriceFormat.of(get_instrument(symbol, home)).model_dump()
    return json_ready({"operation_id": op.id, "status": op.status, "days": days,
                       "strongest_states": strongest, "strongest_from": source,
                       "market": market})
