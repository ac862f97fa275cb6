"""The app as a whole: health, bearer authentication on and off, the bind check, errors as
JSON, and the uvicorn factory."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

from stratforge.api.app import create_app
from stratforge.api.security import check_bind, is_loopback
from stratforge.errors import ConfigError, DataError
from stratforge.ops.db import forget_databases
from stratforge.ops.operations import ConflictError, create_operation
from test_api_support import API, make_api

TOKEN = "s3cret-token"
PROTECTED = ["/operations", "/operations/op_missing", "/agent/status", "/research/runs",
             "/data/symbols", "/data/timeframes", "/templates/MNQ", "/events?timeout=0.1",
             "/docs", "/openapi.json", "/no/such/route"]


def test_health_names_the_version_and_database(home, database_url, monkeypatch):
    with make_api(database_url, monkeypatch) as api:
        body = api.get("/health").json()
        assert body["status"] == "ok" and body["database"] == api.db.dialect
        assert body["version"]


@pytest.mark.parametrize("path", PROTECTED)
def test_with_a_token_every_route_but_health_needs_it(home, database_url, monkeypatch, path):
    with make_api(database_url, monkeypatch, token=TOKEN) as api:
        assert api.get("/health").status_code == 200
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
                        {"Authorization": f"Basic {TOKEN}"}):
            refused = api.get(path, headers=headers)
            assert refused.status_code == 401, (path, headers)
            assert refused.headers["content-type"] == "application/json"
            assert "bearer token" in refused.json()["detail"]
            assert refused.headers["www-authenticate"].startswith("Bearer")
        allowed = api.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
        assert allowed.status_code != 401
        assert allowed.status_code in (200, 404)


def test_with_a_token_writes_need_it_too(home, monkeypatch, tmp_path):
    with make_api(f"sqlite:///{tmp_path / 'a.db'}", monkeypatch, token=TOKEN) as api:
        op = create_operation(api.db, "sleep", {"seconds": 30})
        assert api.delete(f"/operations/{op.id}").status_code == 401
        assert api.post("/research/runs", json={}).status_code == 401
        assert api.post("/agent/trigger", json={}).status_code == 401
        assert api.client.get(f"{API}/operations/{op.id}").status_code == 401
        ok = api.delete(f"/operations/{op.id}", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200 and ok.json()["status"] == "cancelled"


def test_without_a_token_nothing_needs_one(home, tmp_path, monkeypatch):
    with make_api(f"sqlite:///{tmp_path / 'a.db'}", monkeypatch) as api:
        assert api.get("/operations").status_code == 200
        assert api.get("/openapi.json").status_code == 200
        assert api.get("/docs").status_code == 200
        assert api.get("/operations", headers={"Authorization": "Bearer anything"}
                       ).status_code == 200


def test_the_token_is_read_when_the_app_is_created(home, tmp_path, monkeypatch):
    with make_api(f"sqlite:///{tmp_path / 'a.db'}", monkeypatch, token=TOKEN) as api:
        monkeypatch.delenv("STRATFORGE_API_TOKEN")
        assert api.get("/operations").status_code == 401
    monkeypatch.setenv("STRATFORGE_API_TOKEN", "   ")  # blank means unset
    app = create_app(f"sqlite:///{tmp_path / 'b.db'}")
    try:
        from fastapi.testclient import TestClient

        assert TestClient(app, base_url="http://127.0.0.1").get(f"{API}/operations"
                                                                ).status_code == 200
    finally:
        forget_databases()


def test_the_schema_declares_the_bearer_scheme(home, tmp_path, monkeypatch):
    with make_api(f"sqlite:///{tmp_path / 'a.db'}", monkeypatch) as api:
        schema = api.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert schema["paths"][f"{API}/operations"]["get"]["security"] == [{"bearer": []}]
    assert "security" not in schema["paths"][f"{API}/health"]["get"]


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "localhost", "::1", "[::1]",
                                  "LOCALHOST"])
def test_check_bind_accepts_loopback_without_a_token(host):
    assert is_loopback(host)
    check_bind(host, None)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.5", "example.org", ""])
def test_check_bind_refuses_other_hosts_without_a_token(host):
    assert not is_loopback(host)
    with pytest.raises(ConfigError, match="STRATFORGE_API_TOKEN"):
        check_bind(host, None)
    with pytest.raises(ConfigError):
        check_bind(host, "  ")
    check_bind(host, TOKEN)


def _app_with(route, tmp_path, monkeypatch):
    monkeypatch.delenv("STRATFORGE_API_TOKEN", raising=False)
    app = create_app(f"sqlite:///{tmp_path / 'e.db'}")
    app.add_api_route("/boom", route)
    from fastapi.testclient import TestClient

    return TestClient(app, raise_server_exceptions=False, base_url="http://127.0.0.1")


@pytest.mark.parametrize(("error", "status"), [
    (ConfigError("bad setting x"), 422), (DataError("bad bars in f.csv"), 422),
    (ConflictError("in the way", active_id="op_x"), 409), (NotImplementedError("later"), 501),
    (RuntimeError("bug"), 500)])
def test_errors_map_to_json_statuses(home, tmp_path, monkeypatch, error, status):
    def route():
        raise error

    try:
        response = _app_with(route, tmp_path, monkeypatch).get("/boom")
    finally:
        forget_databases()
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert isinstance(body["detail"], str)
    if status == 409:
        assert body["active_id"] == "op_x"
    if status == 500:
        assert "RuntimeError" in body["detail"] and "bug" not in body["detail"]


def test_malformed_json_unknown_routes_and_methods_are_json(home, tmp_path, monkeypatch):
    with make_api(f"sqlite:///{tmp_path / 'a.db'}", monkeypatch) as api:
        broken = api.post("/research/runs", content=b"{not json",
                          headers={"content-type": "application/json"})
        assert broken.status_code == 422 and broken.json()["detail"][0]["type"] == "json_invalid"
        nan = api.post("/research/runs", content=b'{"commission": NaN}',
                       headers={"content-type": "application/json"})
        assert nan.status_code == 422 and nan.json()["detail"][0]["loc"] == ["body",
                                                                            "commission"]
        missing = api.get("/no/such/route")
        assert missing.status_code == 404 and missing.json() == {"detail": "Not Found"}
        wrong = api.client.put(f"{API}/operations")
        assert wrong.status_code == 405 and "detail" in wrong.json()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_uvicorn_serves_the_factory(home, tmp_path):
    port = _free_port()
    env = {**os.environ, "STRATFORGE_HOME": str(home)}
    env.pop("STRATFORGE_API_TOKEN", None)
    env.pop("STRATFORGE_DATABASE_URL", None)
    server = subprocess.Popen([sys.executable, "-m", "uvicorn", "stratforge.api.app:create_app",
                               "--factory", "--host", "127.0.0.1", "--port", str(port),
                               "--log-level", "warning"], env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, "uvicorn exited"
            try:
                response = httpx.get(f"http://127.0.0.1:{port}{API}/health", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "uvicorn did not answer"
                time.sleep(0.2)
        assert response.status_code == 200 and response.json()["database"] == "sqlite"
        assert (home / "stratforge.db").exists()
        docs = httpx.get(f"http://127.0.0.1:{port}{API}/docs", follow_redirects=True)
        assert docs.status_code == 200 and "js/api_docs.js" in docs.text
        assert "https://" not in docs.text
    finally:
        server.terminate()
        server.wait(10)
