"""Where training runs live and which exist: ``training_run`` operations (started by the API,
the dashboard or ``stratforge train``) and training folders no operation names (runs made
before the CLI recorded its runs as operations).

A server's run trains into ``<home>/training/<operation id>/``; a CLI run into
``<home>/training/<SYMBOL>-<timeframe>/``, which its operation names in ``metadata.folder``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from stratforge.ops.db import Database
from stratforge.ops.operations import list_operations
from stratforge.ops.records import OperationRecord

TRAINING_TYPE = "training_run"
DAYS_FILE = "days.parquet"
CONFIG_FILE = "config.json"
_FOLDER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def training_root(home: Path) -> Path:
    """``<home>/training``."""
    return Path(home) / "training"


def folder_name(op: OperationRecord) -> str:
    """The folder under ``<home>/training`` of a training operation: ``metadata.folder`` when
    it is a plain name (a CLI run), else the operation id."""
    name = op.metadata.get("folder")
    return name if isinstance(name, str) and _FOLDER_NAME.match(name) and \
        name not in (".", "..") else op.id


def training_folder_of(op: OperationRecord, home: Path) -> Path:
    """The folder of a training operation's run."""
    return training_root(home) / folder_name(op)


def days_trained(folder: Path) -> int:
    """Rows of the run's per-day checkpoint (0 before the first day)."""
    path = folder / DAYS_FILE
    if not path.is_file():
        return 0
    try:
        import pyarrow.parquet as pq

        return int(pq.read_metadata(path).num_rows)
    except (OSError, ValueError):
        return 0


def _folder_settings(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def list_training_runs(db: Database, home: Path, limit: int = 100) -> list[dict[str, Any]]:
    """Every training run of the home, newest operation first: each ``training_run``
    operation (``operation``, its ``folder`` name, ``days`` trained, ``source`` cli or
    server), then each training folder no listed operation names (``operation`` None)."""
    ops = list_operations(db, op_type=TRAINING_TYPE, limit=limit)
    runs, named = [], set()
    for op in ops:
        name = folder_name(op)
        named.add(name)
        runs.append({"operation": op.to_json(), "folder": name,
                     "days": days_trained(training_root(home) / name),
                     "source": "cli" if op.metadata.get("source") == "cli" else "server"})
    root = training_root(home)
    folders = sorted((p for p in root.iterdir() if p.is_dir() and p.name not in named
                      and (p / CONFIG_FILE).is_file()), key=lambda p: p.name) \
        if root.is_dir() else []
    for folder in folders:
        settings = _folder_settings(folder)
        runs.append({"operation": None, "folder": folder.name, "days": days_trained(folder),
                     "source": "folder", "symbol": settings.get("symbol"),
                     "timeframe": settings.get("timeframe")})
    return runs
