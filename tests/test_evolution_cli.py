"""``stratforge evolve --local`` runs a run in process; ``stratforge evolution ...`` reads it
back through the API (an in-process app behind the CLI's own client)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from stratforge.api.app import create_app
from stratforge.cli import api_client
from stratforge.cli.main import app
from stratforge.data.demo import synthesize_into_store
from stratforge.ops.db import forget_databases

runner = CliRunner()


@pytest.fixture
def local_db(home, tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("STRATFORGE_DATABASE_URL", url)
    synthesize_into_store("MNQ", days=6, seed=5, kind="realistic", resolution="1m",
                          replace=True, home=home)
    yield url
    forget_databases()


def test_evolve_local_then_read_it_back_through_the_api(local_db, monkeypatch):
    result = runner.invoke(app, [
        "evolve", "--local", "--algorithm", "random_forest", "--max-generations", "2",
        "--thresholds", "0.5,1", "--z-cutoffs", "0,4", "--regimes", "all;vol=low,normal",
        "--horizon", "3"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    run_id = re.search(r"(op_evolution_run_[0-9a-f_]+)", result.output).group(1)
    assert "completed" in result.output and "8/8" in result.output

    client = TestClient(create_app(local_db), base_url="http://127.0.0.1/api/v1")

    def local_client(self, base=None, token=None, timeout=10.0):
        self.base = "http://test"
        self._client = client

    monkeypatch.setattr(api_client.ApiClient, "__init__", local_client)
    listed = runner.invoke(app, ["evolution", "list"], env={"COLUMNS": "200"})
    assert listed.exit_code == 0 and run_id in listed.output, listed.output
    shown = runner.invoke(app, ["evolution", "show", run_id], env={"COLUMNS": "200"})
    assert shown.exit_code == 0 and "generations" in shown.output
    detail = client.get(f"/evolution/runs/{run_id}").json()
    model = detail["generations"][-1]["model_fingerprint"]
    lineage = runner.invoke(app, ["evolution", "lineage", model], env={"COLUMNS": "200"})
    assert lineage.exit_code == 0 and model[:16] in lineage.output
    promoted = runner.invoke(app, ["evolution", "promoted"], env={"COLUMNS": "200"})
    assert promoted.exit_code == 0 and "promoted model(s)" in promoted.output
    missing = runner.invoke(app, ["evolution", "show", "op_nope"])
    assert missing.exit_code != 0 and "404" in missing.output


def test_bad_settings_are_one_line_errors(local_db):
    result = runner.invoke(app, ["evolve", "--local", "--thresholds", "one,two"])
    assert result.exit_code != 0 and "--thresholds must be comma-separated" in result.output
    result = runner.invoke(app, ["evolve", "--local", "--regimes", "sideways"])
    assert result.exit_code != 0 and "regime filter 'sideways'" in result.output
