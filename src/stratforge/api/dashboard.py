"""The web dashboard's files: ``/ui/`` serves the package's ``web/`` folder (plain HTML, CSS
and JavaScript, docs/dashboard.md), ``/ui/vendor/plotly.min.js`` the plotly.js of the
installed plotly package, and ``/`` redirects to ``/ui/`` (``HEAD /`` answers 200 with the
dashboard page's headers, so uptime checks and ``curl -I`` see a live server).
``/api/v1/docs`` leads to ``/ui/api.html``, the API reference drawn from the OpenAPI schema
by the server's own script (nothing is loaded from the internet).

These paths need no token (the page asks for it and sends it to ``/api/v1``, which still
does) and are left out of the OpenAPI schema.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

UI_PREFIX = "/ui"
PUBLIC_PREFIXES = (f"{UI_PREFIX}/",)
"""Paths under these prefixes are served without the bearer token."""
PUBLIC_PATHS = ("/", UI_PREFIX)
VENDOR_CACHE = "public, max-age=86400"


def web_folder() -> Path:
    """The folder of the dashboard's static files (``stratforge/web``)."""
    return Path(str(files("stratforge").joinpath("web")))


def plotly_js() -> Path:
    """``plotly.min.js`` of the installed plotly package."""
    return Path(str(files("plotly").joinpath("package_data", "plotly.min.js")))


def mount_dashboard(app: FastAPI, docs_path: str) -> None:
    """Add the dashboard's routes and static files to ``app`` (outside the schema), and
    ``docs_path``, which leads to the API reference page."""
    script = plotly_js()

    index = web_folder() / "index.html"

    @app.get(docs_path, include_in_schema=False)
    async def docs() -> RedirectResponse:
        return RedirectResponse(f"{UI_PREFIX}/api.html")

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def root(request: Request) -> Response:
        if request.method == "HEAD":
            return FileResponse(index, media_type="text/html")
        return RedirectResponse(f"{UI_PREFIX}/")

    @app.get(UI_PREFIX, include_in_schema=False)
    async def ui() -> RedirectResponse:
        return RedirectResponse(f"{UI_PREFIX}/")

    @app.get(f"{UI_PREFIX}/vendor/plotly.min.js", include_in_schema=False)
    async def plotly() -> FileResponse:
        return FileResponse(script, media_type="text/javascript",
                            headers={"Cache-Control": VENDOR_CACHE})

    app.mount(UI_PREFIX, StaticFiles(directory=web_folder(), html=True), name="dashboard")
