"""The CLI needs no server (issue 18, item 2): with no server running for the home, the read
commands run the API in process on the home's database and print exactly what they print
against a real `stratforge serve` of that home; commands that need a worker say so in one
line. `evolve --local` and `train` with no server record their operations there (item 1).
Also: `serve` prints the dashboard URL and `HEAD /` answers 200 (item 6)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time

import httpx
import pytest

from stratforge.cli.api_client import ApiClient
from stratforge.cli.server_marker import marked_url, marker_path
from stratforge.config import configure
from stratforge.data.demo import synthesize_into_store
from stratforge.ops.db import Database, forget_databases
from stratforge.ops.evolution_store import run_detail
from stratforge.ops.operations import create_operation
from stratforge.ops.worker import Worker

ENV = {k: v for k, v in os.environ.items()
       if k not in ("STRATFORGE_DATABASE_URL", "STRATFORGE_API_TOKEN", "STRATFORGE_API_URL",
                    "STRATFORGE_HOME")}
pytestmark = pytest.mark.slow  # a real server and some 20 CLI processes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(home, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stratforge.cli.main", "--home", str(home),
                           *args], check=False, capture_output=True, text=True, timeout=180,
                          env=ENV)


@pytest.fixture
def filled_home(tmp_path, monkeypatch):
    """A home with an evolution run (made by `evolve --local`), a training run (made by
    `train`) and a finished sleep operation, all in the home's embedded database."""
    home = tmp_path / "home"
    for name in ("STRATFORGE_DATABASE_URL", "STRATFORGE_API_TOKEN", "STRATFORGE_API_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STRATFORGE_HOME", str(home))
    configure()
    synthesize_into_store("MNQ", days=14, seed=5, kind="realistic", resolution="1m",
                          replace=True, home=home)
    evolved = _cli(home, "evolve", "--local", "--algorithm", "elasticnet", "--max-generations",
                   "2", "--thresholds", "1", "--z-cutoffs", "0", "--regimes", "all",
                   "--horizon", "3")
    assert evolved.returncode == 0, evolved.stdout + evolved.stderr
    run_id = re.search(r"(op_evolution_run_[0-9a-f_]+)", evolved.stdout).group(1)
    trained = _cli(home, "train", "--max-days", "2", "--iterations", "12", "--templates",
                   "warmup", "--warmup-days", "10")
    assert trained.returncode == 0, trained.stdout + trained.stderr
    train_id = re.search(r"operation (op_training_run_[0-9a-f_]+)", trained.stdout).group(1)
    db = Database(f"sqlite:///{home / 'stratforge.db'}")
    slept = create_operation(db, "sleep", {"seconds": 0.01})
    Worker(db, types=["sleep"], exit_when_idle=True, poll_interval=0.01).run()
    model = run_detail(db, run_id)["generations"][-1]["model_fingerprint"]
    db.dispose()
    yield home, run_id, slept.id, model, train_id
    forget_databases()
    monkeypatch.delenv("STRATFORGE_HOME")
    configure()


def _reads(run_id: str, op_id: str, model: str, train_id: str) -> list[tuple[str, ...]]:
    return [("ops", "list"), ("ops", "show", op_id), ("ops", "show", run_id),
            ("ops", "show", train_id), ("ops", "list", "--type", "training_run"),
            ("agent", "status"), ("evolution", "list"), ("evolution", "show", run_id),
            ("evolution", "lineage", model), ("evolution", "promoted")]


def _wait_up(server: subprocess.Popen, api: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        assert server.poll() is None, server.stdout.read()
        try:
            if httpx.get(f"{api}/api/v1/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the server did not come up"
        time.sleep(0.2)


def test_read_commands_without_a_server_print_what_the_server_prints(filled_home):
    home, run_id, op_id, model, train_id = filled_home
    assert not marker_path(home).exists()
    local = {}
    for args in _reads(run_id, op_id, model, train_id):
        done = _cli(home, *args)
        assert done.returncode == 0, f"{args}: {done.stderr}"
        assert done.stderr == "", f"{args}: {done.stderr}"
        local[args] = done.stdout
    assert op_id in local[("ops", "list")] and run_id in local[("ops", "list")]
    assert "slept_seconds" in local[("ops", "show", op_id)]
    assert run_id in local[("evolution", "list")] and "MNQ" in local[("evolution", "list")]
    assert "completed" in local[("ops", "show", run_id)]
    trained = local[("ops", "show", train_id)]
    assert "completed" in trained and "'days': 2" in trained and "cli-" in trained
    assert "1 operation(s)" in local[("ops", "list", "--type", "training_run")]
    assert "generations" in local[("evolution", "show", run_id)]
    assert model[:16] in local[("evolution", "lineage", model)]
    assert "agent: idle" in local[("agent", "status")]
    # a command that only queues work for a worker says so in one line, and queues nothing
    refused = _cli(home, "agent", "trigger")
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    assert "needs a worker" in refused.stderr and "stratforge serve" in refused.stderr
    assert "agent_cycle" not in _cli(home, "ops", "list").stdout

    port = _free_port()
    api = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "stratforge.cli.main", "--home",
                               str(home), "serve", "--port", str(port), "--workers", "0"],
                              env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
    try:
        _wait_up(server, api)
        assert marked_url(home) == api  # the CLI of this home now goes to this server
        client = ApiClient()
        assert not client.local and client.base == api
        assert httpx.head(f"{api}/", timeout=5).status_code == 200
        for args in _reads(run_id, op_id, model, train_id):
            for extra in ((), ("--api", api)) if args[-1] == "list" else ((),):
                remote = _cli(home, *args, *extra)
                assert remote.returncode == 0, f"{args}: {remote.stderr}"
                assert remote.stdout == local[args], f"{args} {extra} differs"
    finally:
        server.terminate()
        out, _ = server.communicate(timeout=30)
    assert f"dashboard: {api}/ui/" in out
    assert ApiClient().local  # its server gone, the home reads in process again
