"""The application factory: ``create_app()`` (``uvicorn stratforge.api.app:create_app
--factory``)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from stratforge import __version__
from stratforge.api import (
    agent,
    dashboard,
    data,
    events,
    evolution,
    health,
    operations,
    platform,
    report_tickets,
    research,
    research_views,
    templates,
    training,
)
from stratforge.api.deps import API_PREFIX
from stratforge.api.errors import ErrorOut, install_error_handlers
from stratforge.api.guard import GuardSettings, RequestGuard
from stratforge.api.security import BearerAuthMiddleware, token_from_env, with_bearer_security
from stratforge.api.tickets import REPORT_PREFIXES
from stratforge.ops.db import open_database

PROTECTED = (operations.router, agent.router, research.router, training.router, data.router,
             templates.router, events.router, research_views.router, platform.router,
             evolution.router, report_tickets.router)
PUBLIC_PATHS = (f"{API_PREFIX}/health",)
DESCRIPTION = """The operations platform of stratforge: operations and their progress, the
agent research loop, research and training runs, data, templates and a live event stream.
See docs/api.md. With `STRATFORGE_API_TOKEN` set on the server, every route but `/health`
needs `Authorization: Bearer <token>`. Requests must name an allowed `Host`; state-changing
ones from another web page's `Origin` are refused (403), bodies must be JSON (415) of at most
`STRATFORGE_MAX_BODY_BYTES` (413, default 1 MiB)."""


UNAUTHORISED: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing or wrong bearer token (only when "
                                            "STRATFORGE_API_TOKEN is set)."}}


def create_app(database_url: str | None = None,
               guard: GuardSettings | None = None) -> FastAPI:
    """The API against ``database_url`` (default: the settings' database), opened and
    migrated now; ``STRATFORGE_API_TOKEN``, read now, turns bearer authentication on;
    ``guard`` (default: ``STRATFORGE_ALLOWED_HOSTS`` and ``STRATFORGE_MAX_BODY_BYTES``, read
    now) sets the hosts served and the body limit."""
    guard = guard or GuardSettings.from_env()
    db = open_database(database_url)
    token = token_from_env()
    app = FastAPI(title="stratforge", version=__version__, description=DESCRIPTION,
                  openapi_url=f"{API_PREFIX}/openapi.json", docs_url=None, redoc_url=None)
    app.state.db = db
    app.state.auth = token is not None
    install_error_handlers(app)
    app.include_router(health.router, prefix=API_PREFIX)
    for router in PROTECTED:
        app.include_router(router, prefix=API_PREFIX, responses=UNAUTHORISED)
    plain_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        return with_bearer_security(plain_openapi(), PUBLIC_PATHS)

    app.openapi = openapi  # type: ignore[method-assign]
    dashboard.mount_dashboard(app, f"{API_PREFIX}/docs")
    if token is not None:
        app.add_middleware(BearerAuthMiddleware, token=token,
                           public_paths=(*PUBLIC_PATHS, *dashboard.PUBLIC_PATHS),
                           public_prefixes=dashboard.PUBLIC_PREFIXES)
    app.add_middleware(RequestGuard, settings=guard, report_prefixes=REPORT_PREFIXES)
    return app
