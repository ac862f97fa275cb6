"""`stratforge serve` end to end: a real server process with its worker pool, driven by the
CLI's `ops` and `agent` commands over HTTP; and the refusal to bind publicly without a token."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

from stratforge.ops.db import Database
from stratforge.ops.operations import create_operation, get_operation

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pool_workers(home) -> list[str]:
    found = subprocess.run(["pgrep", "-f", f"--home {home} worker"], capture_output=True,
                           text=True, check=False)
    return found.stdout.split()


def _cli(home, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stratforge.cli.main", "--home", str(home),
                           *args], check=False, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def test_serve_runs_jobs_and_the_cli_drives_them(tmp_path):
    home, port = tmp_path / "home", _free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("STRATFORGE_DATABASE_URL", "STRATFORGE_API_TOKEN")}
    server = subprocess.Popen([sys.executable, "-m", "stratforge.cli.main", "--home", str(home),
                               "serve", "--port", str(port), "--workers", "1"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    api = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stdout.read()
            try:
                if httpx.get(f"{api}/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the server did not come up"
            time.sleep(0.2)
        db = Database(f"sqlite:///{home / 'stratforge.db'}")
        op = create_operation(db, "sleep", {"seconds": 0.3})
        while get_operation(db, op.id).status != "completed":  # the pool's worker ran it
            assert time.monotonic() < deadline + 60
            time.sleep(0.1)
        listed = _cli(home, "ops", "list", "--api", api)
        assert listed.returncode == 0 and op.id in listed.stdout and "completed" in listed.stdout
        shown = _cli(home, "ops", "show", op.id, "--api", api)
        assert shown.returncode == 0 and "slept_seconds" in shown.stdout
        retried = _cli(home, "ops", "retry", op.id, "--api", api)
        assert retried.returncode == 0 and f"retry of {op.id}" in retried.stdout
        long = create_operation(db, "sleep", {"seconds": 60})
        cancelled = _cli(home, "ops", "cancel", long.id, "--api", api)
        assert cancelled.returncode == 0 and "cancelled" in cancelled.stdout
        missing = _cli(home, "ops", "show", "op_missing", "--api", api)
        assert missing.returncode == 1 and "404" in missing.stderr
        status = _cli(home, "agent", "status", "--api", api)
        assert status.returncode == 0 and "idle" in status.stdout
        db.dispose()
    finally:
        server.terminate()
        server.wait(30)
    # the pool's worker goes with the server, however the server ends
    deadline = time.monotonic() + 15
    while _pool_workers(home):
        assert time.monotonic() < deadline, "serve left its worker running"
        time.sleep(0.2)


def test_cli_says_when_the_api_is_down_and_refuses_public_binds(tmp_path):
    down = _cli(tmp_path, "ops", "list", "--api", f"http://127.0.0.1:{_free_port()}")
    assert down.returncode == 1 and "cannot reach the stratforge API" in down.stderr
    env = {"STRATFORGE_API_TOKEN": ""}
    public = _cli(tmp_path, "serve", "--host", "0.0.0.0", "--port", str(_free_port()), env=env)
    assert public.returncode == 1 and "STRATFORGE_API_TOKEN" in public.stderr
