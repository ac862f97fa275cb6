"""The API server's hardening (issue 17): the host, origin, content-type and size rules, the
security headers, one active agent cycle through retry, bounds on run settings, small
operation listings, damaged run folders and artefacts, and ``serve --host [::1]``.

Each rule is checked through the real app (TestClient on a SQLite home); ``serve`` through
a real ``stratforge serve`` process.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

from stratforge.api.guard import CSP, DEFAULT_MAX_BODY, GuardSettings, allowed_hosts
from stratforge.api.limits import max_workers
from stratforge.ops.db import Database
from stratforge.ops.operations import cancel_operation, create_operation, list_operations
from test_api_support import API, make_api

WRITES = [("/agent/trigger", {}), ("/research/runs", {"quick": True}),
          ("/training/runs", {"iterations": 12})]


@pytest.fixture
def api(home, tmp_path, monkeypatch):
    monkeypatch.delenv("STRATFORGE_ALLOWED_HOSTS", raising=False)
    monkeypatch.delenv("STRATFORGE_MAX_BODY_BYTES", raising=False)
    with make_api(f"sqlite:///{tmp_path / 'h.db'}", monkeypatch) as client:
        yield client


def _count(db: Database) -> int:
    return len(list_operations(db, limit=1000))


# --- defect 2: origins, hosts, JSON bodies, headers ----------------------------------------

@pytest.mark.parametrize(("path", "body"), WRITES)
def test_a_cross_origin_text_plain_post_starts_nothing(api, path, body):
    """What a hostile page's form or fetch sends: text/plain, its own Origin."""
    refused = api.post(path, content=json.dumps(body),
                       headers={"Content-Type": "text/plain", "Origin": "http://evil.example"})
    assert refused.status_code == 403, refused.text
    assert "evil.example" in refused.json()["detail"]
    assert _count(api.db) == 0


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1:9",
                                    "https://127.0.0.1.evil.example"])
def test_a_foreign_origin_is_refused_even_with_json(api, origin):
    refused = api.post("/agent/trigger", json={}, headers={"Origin": origin})
    assert refused.status_code == 403
    assert _count(api.db) == 0


def test_a_foreign_referer_without_origin_is_refused(api):
    refused = api.post("/agent/trigger", json={},
                       headers={"Referer": "http://evil.example/page.html"})
    assert refused.status_code == 403 and "Referer" in refused.json()["detail"]
    op = create_operation(api.db, "sleep", {"seconds": 30})
    assert api.delete(f"/operations/{op.id}", headers={"Origin": "http://evil.example"}
                      ).status_code == 403
    assert api.post(f"/operations/{op.id}/retry", headers={"Origin": "http://evil.example"}
                    ).status_code == 403


def test_the_servers_own_origin_and_plain_clients_pass(api):
    op = create_operation(api.db, "sleep", {"seconds": 30})
    own = api.delete(f"/operations/{op.id}", json={"reason": "r"},
                     headers={"Origin": "http://127.0.0.1",
                              "Referer": "http://127.0.0.1/ui/"})
    assert own.status_code == 200, own.text
    plain = api.post(f"/operations/{op.id}/retry")  # no Origin, no body: curl, the CLI
    assert plain.status_code == 202, plain.text


@pytest.mark.parametrize("kind", ["text/plain", "application/x-www-form-urlencoded",
                                  "multipart/form-data; boundary=x", None])
def test_bodies_must_be_json(api, kind):
    headers = {"Content-Type": kind} if kind else {}
    refused = api.post("/research/runs", content=b'{"quick": true}', headers=headers)
    assert refused.status_code == 415, refused.text
    assert "application/json" in refused.json()["detail"]
    ok = api.post("/research/runs", content=b"{}",
                  headers={"Content-Type": "application/json; charset=utf-8"})
    assert ok.status_code != 415


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "127.0.0.1.nip.io",
                                  "192.0.2.1"])
def test_unknown_hosts_are_refused(api, host):
    """DNS rebinding: a name someone pointed at 127.0.0.1 is not served."""
    refused = api.get("/operations", headers={"Host": host})
    assert refused.status_code == 400 and "--allowed-host" in refused.json()["detail"]
    for allowed in ("127.0.0.1", "localhost:8000", "[::1]:8000", "LOCALHOST"):
        assert api.get("/operations", headers={"Host": allowed}).status_code == 200, allowed


def test_allowed_hosts_are_configurable(home, tmp_path, monkeypatch):
    monkeypatch.setenv("STRATFORGE_ALLOWED_HOSTS", "box.lan, 10.0.0.5")
    with make_api(f"sqlite:///{tmp_path / 'c.db'}", monkeypatch) as api:
        for host in ("box.lan", "box.lan:8000", "10.0.0.5:80", "localhost"):
            assert api.get("/operations", headers={"Host": host}).status_code == 200
        assert api.get("/operations", headers={"Host": "other.lan"}).status_code == 400
    assert allowed_hosts("[::1]") >= {"::1", "localhost"}
    assert "192.168.1.9" in allowed_hosts("192.168.1.9")
    assert allowed_hosts("0.0.0.0") == allowed_hosts(None)


@pytest.mark.parametrize("path", ["/api/v1/health", "/api/v1/operations", "/ui/",
                                  "/ui/vendor/plotly.min.js", "/api/v1/no/such",
                                  "/api/v1/openapi.json"])
def test_every_answer_carries_the_security_headers(api, path):
    answer = api.client.get(path)
    assert answer.headers["content-security-policy"] == CSP
    assert "script-src 'self'" in CSP and "frame-ancestors 'none'" in CSP
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["referrer-policy"] == "same-origin"
    refused = api.client.get(path, headers={"Host": "evil.example"})
    assert refused.headers["x-frame-options"] == "DENY"


def test_the_docs_page_loads_nothing_from_the_internet(api):
    page = api.client.get(f"{API}/docs")
    assert page.status_code == 200 and "js/api_docs.js" in page.text
    assert "http" not in page.text.replace("http-equiv", "")
    script = api.client.get("/ui/js/api_docs.js")
    assert script.status_code == 200 and "openapi.json" in script.text
    assert "cdn" not in script.text and "https://" not in script.text


# --- defect 4: retry goes through the one-active-cycle rule ---------------------------------

def test_retrying_an_old_cycle_while_one_is_active_is_409(api, home):
    first = api.post("/agent/trigger", json={}).json()["operation_id"]
    cancel_operation(api.db, first, "old one")
    active = api.post("/agent/trigger", json={}).json()["operation_id"]
    for _ in range(3):
        again = api.post(f"/operations/{first}/retry")
        assert again.status_code == 409, again.text
        assert again.json()["active_id"] == active and active in again.json()["detail"]
    cycles = list_operations(api.db, op_type="agent_cycle", active_only=True)
    assert [c.id for c in cycles] == [active]
    cancel_operation(api.db, active, "done")
    retried = api.post(f"/operations/{first}/retry")
    assert retried.status_code == 202 and retried.json()["metadata"]["retry_of"] == first


# --- defect 5: limits ---------------------------------------------------------------------

def test_bodies_over_the_limit_are_413(api):
    big = b'{"reason": "' + b"x" * (DEFAULT_MAX_BODY + 10) + b'"}'
    refused = api.post("/agent/trigger", content=big,
                       headers={"Content-Type": "application/json"})
    assert refused.status_code == 413 and "bytes" in refused.json()["detail"]

    def chunks():  # no Content-Length: the limit holds while the body is read
        for _ in range(20):
            yield b" " * 65536
        yield b"{}"

    chunked = api.post("/agent/trigger", content=chunks(),
                       headers={"Content-Type": "application/json"})
    assert chunked.status_code == 413, chunked.text
    assert _count(api.db) == 0


def test_the_body_limit_is_configurable(home, tmp_path, monkeypatch):
    monkeypatch.setenv("STRATFORGE_MAX_BODY_BYTES", "100")
    with make_api(f"sqlite:///{tmp_path / 'b.db'}", monkeypatch) as api:
        assert api.post("/research/runs", json={"tiers": {f"t{i}": 1.0 for i in range(20)}}
                        ).status_code == 413
    assert GuardSettings.from_env().max_body == 100


@pytest.mark.parametrize(("route", "body", "field", "bound"), [
    ("/research/runs", {"workers": 100000}, "workers", str(max_workers())),
    ("/research/runs", {"mc_iters": 1e12}, "mc_iters", "1000000"),
    ("/research/runs", {"refine_budget": 10**12}, "refine_budget", "10000000"),
    ("/research/runs", {"pbo_splits": 64}, "pbo_splits", "16"),
    ("/training/runs", {"iterations": 10**9}, "iterations", "100000"),
    ("/training/runs", {"max_days": 10**9}, "max_days", "100000"),
    ("/evolution/runs", {"n_jobs": max_workers() + 1}, "n_jobs", str(max_workers())),
])
def test_run_settings_are_bounded(api, route, body, field, bound):
    refused = api.post(route, json=body)
    assert refused.status_code == 422, refused.text
    detail = refused.json()["detail"]
    assert any(e["loc"][-1] == field and bound in e["msg"] for e in detail), detail
    assert _count(api.db) == 0


def test_a_request_may_not_name_a_ray_cluster(api):
    refused = api.post("/research/runs", json={"executor": "ray",
                                               "ray_address": "ray://127.0.0.1:1"})
    assert refused.status_code == 422
    (error,) = refused.json()["detail"]
    assert error["loc"] == ["body", "ray_address"] and "server's configuration" in error["msg"]
    assert _count(api.db) == 0


def test_operation_listings_summarise_parameters(api):
    huge = {"blob": "x" * 200_000, "small": 3}
    op = create_operation(api.db, "sleep", {"seconds": 1, **huge},
                          metadata={"notes": ["y" * 1000] * 50})
    listing = api.get("/operations?limit=100")
    assert len(listing.content) < 10_000, len(listing.content)
    (shown,) = listing.json()["operations"]
    assert shown["metadata"]["parameters"]["small"] == 3
    assert shown["metadata"]["parameters"]["blob"]["truncated"] is True
    assert shown["metadata"]["notes"] == {"truncated": True, "bytes": shown["metadata"][
        "notes"]["bytes"]}
    whole = api.get(f"/operations/{op.id}").json()
    assert whole["metadata"]["parameters"]["blob"] == huge["blob"]


# --- defect 7: damaged runs and artefacts -------------------------------------------------

def _run(home, run_id: str, config: str = '{"config": {"symbol": "MNQ"}}',
         state: str | None = None):
    folder = home / "runs" / run_id
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(config)
    if state is not None:
        (folder / "state.json").write_text(state)
    return folder


@pytest.mark.parametrize(("config", "state"), [
    ("garbage", None), ("[]", None), ('{"config": []}', None),
    ('{"config": {}}', "garbage"), ('{"config": {}}', "[]"), ('{"config": {}}', '{"phases": 3}')])
def test_a_damaged_run_is_listed_as_damaged_and_the_others_still_list(api, home, config,
                                                                         state):
    _run(home, "run_20240101_000000_aaaaaaaa")
    _run(home, "run_20240102_000000_bbbbbbbb", config, state)
    _run(home, "run_20240103_000000_cccccccc")
    listing = api.get("/research/runs")
    assert listing.status_code == 200, listing.text
    runs = {r["run_id"]: r for r in listing.json()["runs"]}
    assert len(runs) == 3
    damaged = runs["run_20240102_000000_bbbbbbbb"]["damaged"]
    assert damaged and "\n" not in damaged and ".json" in damaged
    assert runs["run_20240101_000000_aaaaaaaa"]["damaged"] is None
    assert runs["run_20240103_000000_cccccccc"]["symbol"] == "MNQ"
    one = api.get("/research/runs/run_20240102_000000_bbbbbbbb")
    assert one.status_code == 422 and ".json" in one.json()["detail"]


def test_a_junk_validation_file_is_a_clear_error(api, home):
    folder = _run(home, "run_20240101_000000_aaaaaaaa")
    (folder / "validation.parquet").write_bytes(b"not parquet at all")
    answer = api.get("/research/runs/run_20240101_000000_aaaaaaaa/tiers")
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    assert "validation.parquet" in detail and "--resume" in detail


# --- defect 10: serve --host [::1] ---------------------------------------------------------

def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_serve_binds_a_bracketed_ipv6_address(home, tmp_path):
    with socket.socket(socket.AF_INET6) as s:
        s.bind(("::1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items()
           if k not in ("STRATFORGE_API_TOKEN", "STRATFORGE_DATABASE_URL",
                        "STRATFORGE_ALLOWED_HOSTS")}
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "stratforge.cli.main", "--home", str(home), "serve",
             "--host", "[::1]", "--port", str(port), "--workers", "0"],
            env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, log.read_text()
            try:
                answer = httpx.get(f"http://[::1]:{port}/api/v1/health", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        assert answer.status_code == 200
    finally:
        server.terminate()
        server.wait(30)


def test_serve_refuses_a_bad_bracketed_host(home):
    done = subprocess.run([sys.executable, "-m", "stratforge.cli.main", "--home", str(home),
                           "serve", "--host", "[127.0.0.1]", "--workers", "0"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0
    assert "IPv6" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
