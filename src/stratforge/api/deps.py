"""What routes share: the database dependency and the path and query types of ids."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path as FilePath
from typing import Annotated, Any, TypeVar

import anyio
from fastapi import Depends, Path, Request
from pydantic import StringConstraints

from stratforge.config import resolve_home
from stratforge.names import NAME_PATTERN, SYMBOL_PATTERN  # noqa: F401 (re-exported)
from stratforge.ops.db import Database

API_PREFIX = "/api/v1"
MAX_INT = 2**62
"""Upper bound of integer query parameters (larger ones cannot reach SQLite)."""

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
TYPE_PATTERN = r"^[A-Za-z0-9_]{1,40}$"
# NAME_PATTERN and SYMBOL_PATTERN are stratforge.names', the rule the CLI and library share


T = TypeVar("T")


async def run_db(db: Database, call: Callable[..., T], *args: Any) -> T:
    """``call(*args)`` for an async route: inline on SQLite, in a worker thread elsewhere.

    A SQLite read in WAL mode never waits for a writer and takes a fraction of a
    millisecond, less than handing it to a thread and back; under load that handoff (the
    threads and the event loop taking turns on the GIL) is what makes the slow tail. A
    PostgreSQL call waits on the network, so it goes to a thread.
    """
    if db.dialect == "sqlite":
        return call(*args)
    return await anyio.to_thread.run_sync(call, *args)


async def get_db(request: Request) -> Database:
    """The app's database (opened and migrated by ``create_app``)."""
    return request.app.state.db


async def get_home() -> FilePath:
    """The home folder of the configured settings (runs, training folders, libraries)."""
    return resolve_home()


DbDep = Annotated[Database, Depends(get_db)]
HomeDep = Annotated[FilePath, Depends(get_home)]
SymbolName = Annotated[str, StringConstraints(pattern=SYMBOL_PATTERN)]
"""A symbol such as MNQ: up to 32 letters, digits, '.', '_' or '-'."""
OperationId = Annotated[str, Path(pattern=ID_PATTERN, description="An operation id "
                                  "(`op_<type>_<YYYYMMDD_HHMMSS>_<8 hex>`).")]
