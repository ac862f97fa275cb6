"""Property-based fuzzing of the whole API from its OpenAPI schema (schemathesis), on
SQLite and PostgreSQL: no input, valid or not, may make a route answer 5xx.

The schema is read once from an app on a throwaway SQLite file; each test sends its cases
to a fresh app on the test's database (``app=``). No worker runs, so routes that start
heavy work (research and training runs, agent cycles) only queue operations. The event
stream gets a short ``timeout`` so it ends. ``MAX_EXAMPLES`` per route bounds the file to
well under a minute.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error

from db_helpers import postgres_schema_url, sqlite_url
from stratforge.api.app import create_app
from stratforge.api.guard import ALLOWED_HOSTS_ENV, GuardSettings, allowed_hosts
from stratforge.config import configure
from test_api_support import API, make_api

MAX_EXAMPLES = 12
TOKEN = "fuzz-token"

# schemathesis's ASGI client sends "Host: testserver": the apps here allow that host too, so
# every generated request reaches its route instead of the host check's 400
FUZZ_HOST = "testserver"
_SCHEMA_HOME = Path(tempfile.mkdtemp(prefix="sf_fuzz_schema_"))
schema = schemathesis.openapi.from_asgi(
    f"{API}/openapi.json",
    create_app(f"sqlite:///{_SCHEMA_HOME / 'schema.db'}",
               guard=GuardSettings(allowed_hosts(None, [FUZZ_HOST]))))
secured_routes = schema.include(path_regex=r"/(operations|agent/status|research/runs|data)")
FUZZ = settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True,
                suppress_health_check=list(HealthCheck),
                phases=[Phase.explicit, Phase.generate])


@contextmanager
def _app(folder: Path, url: str, token: str | None = None) -> Iterator[Any]:
    """An app on ``url`` with its home in ``folder``, for one module's tests."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STRATFORGE_HOME", str(folder / "home"))
        patch.setenv(ALLOWED_HOSTS_ENV, FUZZ_HOST)
        configure()
        try:
            with make_api(url, patch, token=token) as api:
                yield api.client.app
        finally:
            patch.undo()
            configure()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def target(request, tmp_path_factory):
    """One app per backend for every route's cases (operations pile up, as in use)."""
    folder = tmp_path_factory.mktemp(f"fuzz_{request.param}")
    if request.param == "sqlite":
        with _app(folder, sqlite_url(folder)) as app:
            yield app
        return
    with postgres_schema_url() as url, _app(folder, url) as app:
        yield app


@pytest.fixture(scope="module")
def secured_target(tmp_path_factory):
    """An app with a bearer token."""
    folder = tmp_path_factory.mktemp("fuzz_secured")
    with _app(folder, sqlite_url(folder), token=TOKEN) as app:
        yield app


def _bounded(case, token: str | None = None) -> None:
    if token is not None:  # the schema's bearer scheme lets cases carry a made-up one
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
    if case.path == f"{API}/events":
        case.query = {**(case.query if isinstance(case.query, dict) else {}), "timeout": 0.05}


@schema.parametrize()
@FUZZ
def test_no_input_makes_a_server_error(case, target):
    _bounded(case)
    case.call_and_validate(app=target, checks=[not_a_server_error])


@secured_routes.parametrize()
@FUZZ
def test_no_input_makes_a_server_error_with_auth_on(case, secured_target):
    _bounded(case, TOKEN)
    response = case.call_and_validate(app=secured_target, checks=[not_a_server_error])
    assert response.status_code != 401
