"""``/health``: is the API up and its database reachable (no authentication)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import text

from stratforge import __version__
from stratforge.api.deps import DbDep

router = APIRouter(tags=["health"])


class HealthOut(BaseModel):
    """The API's health."""

    status: str
    version: str
    database: str
    detail: str | None = None
    auth: bool = Field(False, description="Whether the other routes need the bearer token "
                                          "(the dashboard asks for it before its first call).")


@router.get("/health", response_model=HealthOut,
            responses={503: {"model": HealthOut, "description": "The database is "
                                                               "unreachable."}})
def health(db: DbDep, request: Request) -> Any:
    """`ok` with the version and the database kind; 503 when the database does not
    answer. `auth` says whether the other routes need the bearer token."""
    auth = bool(getattr(request.app.state, "auth", False))
    try:
        with db.read() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        body = {"status": "unavailable", "version": __version__, "database": db.dialect,
                "detail": f"the database does not answer: {type(exc).__name__}: {exc}",
                "auth": auth}
        return JSONResponse(body, status_code=503)
    return {"status": "ok", "version": __version__, "database": db.dialect, "auth": auth}
