"""``/research/runs``: start research runs (as operations) and read their artifacts."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, Response

from stratforge.api.common_models import OperationOut
from stratforge.api.deps import MAX_INT, NAME_PATTERN, DbDep, HomeDep
from stratforge.api.errors import NOT_FOUND
from stratforge.api.files import (
    HTML_DOCUMENT,
    JSON_DOCUMENT,
    html_file_response,
    json_file_response,
    read_document,
)
from stratforge.api.limits import refuse_ray_address
from stratforge.api.research_models import ResearchRunRequest, RunDetail, RunList
from stratforge.api.settings_models import given_values, validate_settings
from stratforge.errors import ConfigError, DataError
from stratforge.ops.db import Database
from stratforge.ops.operations import (
    NotFoundError,
    create_operation,
    get_operation,
    list_operations,
)
from stratforge.ops.records import OperationRecord
from stratforge.research.config import make_config
from stratforge.research.outputs import PLAYBOOK_FILE, SUMMARY_FILE
from stratforge.research.report import REPORT_NAME
from stratforge.research.runs import CONFIG_FILE, PHASES, STATE_FILE, runs_root
from stratforge.search.space import ParameterSpace

router = APIRouter(prefix="/research", tags=["research"])
RESEARCH_TYPE = "research_run"
SPACES_DIR = "spaces"
RunId = Annotated[str, PathParam(pattern=NAME_PATTERN, description="A run id "
                                 "(`run_<YYYYMMDD_HHMMSS>_<8 hex>`) or the id of the "
                                 "research_run operation that runs it.")]


def resolve_space_name(home: Path, name: str, timeframes: Sequence[str]) -> str:
    """The parameter-space file ``name`` under ``<home>/spaces/`` as an absolute path,
    read now for each of ``timeframes`` so a bad file is refused before anything is queued.

    An API caller names a file the server's owner put there; it never names a path, so a
    request cannot make the server read any other file. A bad name is a 422."""
    folder = home / SPACES_DIR
    path = folder / name
    problem = None
    if re.fullmatch(NAME_PATTERN, name) is None or name.startswith("."):
        problem = (f"must be a file name under {folder} (letters, digits, '_', '.', '-'), "
                   "not a path")
    elif not path.is_file():
        problem = f"no parameter-space file {name!r} in {folder}; put the YAML file there"
    else:
        try:
            for timeframe in timeframes:
                # the structure only: the run resolves yardstick units on its own data
                ParameterSpace.from_yaml(path, timeframe, yardstick_ticks=1.0, tick_size=1.0)
        except ConfigError as exc:
            problem = str(exc)
    if problem:
        raise RequestValidationError([{"loc": ("body", "space_path"), "msg": problem,
                                       "type": "value_error"}])
    return str(path.resolve())


@router.post("/runs", status_code=202, response_model=OperationOut)
def start_run(db: DbDep, home: HomeDep,
              body: Annotated[ResearchRunRequest | None, Body()] = None) -> dict[str, Any]:
    """Queue a research run (a `research_run` operation); the settings are checked first,
    so bad ones answer 422 naming the field. ``space_path`` names a YAML file in
    ``<home>/spaces/``, never a path; ``null_twins`` (1 to 1000) runs the configuration on
    that many null twins of the run's data after it, as ``stratforge run --null-twins``."""
    parameters = given_values(body)
    refuse_ray_address(parameters)
    quick = bool(parameters.get("quick", False))
    settings = {k: v for k, v in parameters.items()
                if k not in ("quick", "space_path", "null_twins")}
    config = validate_settings(make_config, settings, quick=quick)
    if "space_path" in parameters:
        parameters["space_path"] = resolve_space_name(home, str(parameters["space_path"]),
                                                      config.timeframes or ("1h",))
    return create_operation(db, RESEARCH_TYPE, parameters).to_json()


def _object(path: Path, what: str, *, required: bool = True) -> dict[str, Any]:
    """The JSON object in ``path`` (``{}`` when it is missing and not ``required``); a
    DataError naming the file when it is not JSON or not an object."""
    if not required and not path.exists():
        return {}
    value = read_document(path, what)
    if not isinstance(value, dict):
        raise DataError(f"{what} at {path} is a JSON {type(value).__name__}, not an object; "
                        "the run folder is damaged: delete it or rerun the run",
                        source=str(path))
    return value


def _info(path: Path, *, detail: bool = False) -> dict[str, Any]:
    stored = _object(path / CONFIG_FILE, f"research run {path.name}")
    state = _object(path / STATE_FILE, f"the state of run {path.name}", required=False)
    phases = state.get("phases")
    phases = {} if phases is None else phases
    config = stored.get("config")
    config = {} if config is None else config
    for value, name, where in ((phases, "phases", STATE_FILE), (config, "config", CONFIG_FILE)):
        if not isinstance(value, dict):
            raise DataError(f"{where} of run {path.name}: {name!r} is a JSON "
                            f"{type(value).__name__}, not an object; the run folder is "
                            "damaged: delete it or rerun the run", source=str(path / where))
    done = [p for p in PHASES if p in phases]
    out = {"run_id": path.name, "created": stored.get("created"),
           "symbol": config.get("symbol"), "complete": len(done) == len(PHASES),
           "phases_done": done, "damaged": None,
           "files": {"summary": (path / SUMMARY_FILE).is_file(),
                     "playbook": (path / PLAYBOOK_FILE).is_file(),
                     "report": (path / REPORT_NAME).is_file()}}
    if detail:
        out["config"] = config
    return out


def _listed(path: Path) -> dict[str, Any]:
    """A run as the listing shows it: a damaged folder (unreadable config.json or
    state.json) is listed with ``damaged`` saying why, so the others still list."""
    try:
        return _info(path)
    except (DataError, NotFoundError) as exc:
        return {"run_id": path.name, "created": None, "symbol": None, "complete": False,
                "phases_done": [], "damaged": str(exc).splitlines()[0][:500],
                "files": {"summary": (path / SUMMARY_FILE).is_file(),
                          "playbook": (path / PLAYBOOK_FILE).is_file(),
                          "report": (path / REPORT_NAME).is_file()}}


RUN_OPERATIONS_SCANNED = 1000
"""Research operations looked at to give the listed runs their status."""


def run_operations(db: Database) -> dict[str, OperationRecord]:
    """The newest research_run operation of each run id (from its metadata or result)."""
    found: dict[str, OperationRecord] = {}
    for op in list_operations(db, op_type=RESEARCH_TYPE, limit=RUN_OPERATIONS_SCANNED):
        run_id = op.metadata.get("run_id") or (op.result_summary or {}).get("run_id")
        if run_id and str(run_id) not in found:
            found[str(run_id)] = op
    return found


def with_status(info: dict[str, Any], op: OperationRecord | None) -> dict[str, Any]:
    """``info`` with the run's ``status``, ``error`` and ``operation_id``: a finished run
    reads completed, a failed or damaged one says so with its error."""
    error = info.get("damaged")
    if info["complete"]:
        status, error = "completed", None
    elif op is not None and op.status != "completed":
        status, error = op.status, op.error
    elif error:
        status = "damaged"
    else:
        status = "incomplete"
    return {**info, "status": status, "error": error,
            "operation_id": op.id if op is not None else None}


@router.get("/runs", response_model=RunList)
def list_runs(home: HomeDep, db: DbDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
              offset: Annotated[int, Query(ge=0, le=MAX_INT)] = 0) -> dict[str, Any]:
    """Research runs under the home folder, newest first (CLI and API runs alike), each with
    its `status` (a failed run reads `failed` with its operation's `error`); a run whose
    `config.json` or `state.json` cannot be read is listed with `damaged` saying why."""
    root = runs_root(home)
    folders = sorted((p for p in root.iterdir() if (p / CONFIG_FILE).is_file()),
                     key=lambda p: p.name, reverse=True) if root.is_dir() else []
    ops = run_operations(db)
    return {"runs": [with_status(_listed(p), ops.get(p.name))
                     for p in folders[offset:offset + limit]],
            "limit": limit, "offset": offset}


def run_folder(db: Database, home: Path, run_id: str) -> Path:
    """The folder of ``run_id`` (a run id, or a research_run operation's id)."""
    if run_id.startswith("op_"):
        op = get_operation(db, run_id)
        if op.type != RESEARCH_TYPE:
            raise NotFoundError(f"operation {run_id} is a {op.type} operation, not a "
                                "research run")
        found = op.metadata.get("run_id") or (op.result_summary or {}).get("run_id")
        if not found:
            raise NotFoundError(f"operation {run_id} has not started its run yet (it is "
                                f"{op.status})")
        run_id = str(found)
    root = runs_root(home)
    path = root / run_id
    if not (path / CONFIG_FILE).is_file():
        raise NotFoundError(f"no research run {run_id} in {root}")
    return path


@router.get("/runs/{run_id}", response_model=RunDetail, responses=NOT_FOUND)
def get_run(run_id: RunId, db: DbDep, home: HomeDep) -> dict[str, Any]:
    """One run: its settings, the phases done, which artifacts exist and its status."""
    folder = run_folder(db, home, run_id)
    return with_status(_info(folder, detail=True), run_operations(db).get(folder.name))


@router.get("/runs/{run_id}/summary", response_class=Response,
            responses={**JSON_DOCUMENT, **NOT_FOUND})
def get_summary(run_id: RunId, db: DbDep, home: HomeDep) -> Response:
    """`summary.json`: headline numbers, phase figures and timings, tiers, best strategies."""
    path = run_folder(db, home, run_id)
    return json_file_response(path / SUMMARY_FILE, f"the summary of run {path.name}")


@router.get("/runs/{run_id}/lookahead", response_class=Response,
            responses={**JSON_DOCUMENT, **NOT_FOUND})
def get_lookahead(run_id: RunId, db: DbDep, home: HomeDep) -> Response:
    """The latest lookahead audit of the run (`stratforge audit lookahead --run-id`), else
    of the run's symbol (`<home>/audits/lookahead/<SYMBOL>.json`; its `run_id` is null),
    with `"audited": true`; `{"audited": false}` when neither was audited (the page then
    shows no audit section)."""
    import json

    from stratforge.audit.lookahead import LOOKAHEAD_FILE, lookahead_path

    path = run_folder(db, home, run_id)
    own = path / LOOKAHEAD_FILE
    if not own.is_file():
        symbol = _info(path).get("symbol")
        if symbol:
            fallback = lookahead_path(str(symbol), home)
            if fallback.is_file():
                own = fallback
    if not own.is_file():
        return Response(json.dumps({"audited": False}), media_type="application/json")
    report = _object(own, f"the lookahead audit of run {path.name}")
    return Response(json.dumps({**report, "audited": True}), media_type="application/json")


@router.get("/runs/{run_id}/playbook", response_class=Response,
            responses={**JSON_DOCUMENT, **NOT_FOUND})
def get_playbook(run_id: RunId, db: DbDep, home: HomeDep) -> Response:
    """`playbook.json`: the Tier 1 strategies with everything needed to trade them."""
    path = run_folder(db, home, run_id)
    return json_file_response(path / PLAYBOOK_FILE, f"the playbook of run {path.name}")


@router.get("/runs/{run_id}/report", response_class=FileResponse,
            responses={**HTML_DOCUMENT, **NOT_FOUND})
def get_report(run_id: RunId, db: DbDep, home: HomeDep) -> FileResponse:
    """`report.html`: the run's self-contained report."""
    path = run_folder(db, home, run_id)
    return html_file_response(path / REPORT_NAME, f"the report of run {path.name}")
