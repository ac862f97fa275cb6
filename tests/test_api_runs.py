"""``/research/runs`` and ``/training/runs``: settings checked up front (422 naming the
field), runs started as operations, run for real by a worker, and their summaries,
playbooks, logs and reports read back."""

from __future__ import annotations

import json

import pytest

from research_helpers import SMALL, make_market
from stratforge.ops.operations import create_operation, get_operation
from stratforge.ops.worker import Worker
from stratforge.research.config import QUICK
from test_api_support import make_api

RESEARCH = {**SMALL, "timeframes": "5m,15m", "executor": "serial"}
TRAINING = {"templates": "warmup", "warmup_days": 10, "iterations": 12, "max_days": 2}


@pytest.fixture
def api(home, database_url, monkeypatch):
    with make_api(database_url, monkeypatch) as client:
        yield client


@pytest.fixture
def sqlite_api(home, tmp_path, monkeypatch):
    with make_api(f"sqlite:///{tmp_path / 'runs.db'}", monkeypatch) as client:
        yield client


@pytest.mark.parametrize(("route", "body", "fields"), [
    ("/research/runs", {"timeframes": "5m,xx"}, ["timeframes"]),
    ("/research/runs", {"mc_iters": 0, "train_fraction": 1.5}, ["mc_iters", "train_fraction"]),
    ("/research/runs", {"sampler": "magic"}, ["sampler"]),
    ("/research/runs", {"scan": "sideways"}, ["scan"]),
    ("/research/runs", {"no_such_setting": 1}, ["no_such_setting"]),
    ("/research/runs", {"timeframes": "5m,5m"}, ["timeframes"]),
    ("/research/runs", {"quick": "very"}, ["quick"]),
    ("/research/runs", {"symbol": "a\x00b"}, ["symbol"]),
    ("/research/runs", {"null_twins": 0}, ["null_twins"]),
    ("/research/runs", {"null_twins": "many"}, ["null_twins"]),
    ("/research/runs", {"null_twins": 10**6, "seed": -1}, ["null_twins", "seed"]),
    ("/training/runs", {"symbol": "../MNQ"}, ["symbol"]),
    ("/training/runs", {"timeframe": "7x"}, ["timeframe"]),
    ("/training/runs", {"iterations": 2, "min_probability": 2}, ["iterations",
                                                                "min_probability"]),
    ("/training/runs", {"templates": "other"}, ["templates"]),
])
def test_bad_settings_are_422_naming_the_field_and_queue_nothing(api, route, body, fields):
    response = api.post(route, json=body)
    assert response.status_code == 422, response.text
    assert sorted(e["loc"][-1] for e in response.json()["detail"]) == sorted(fields)
    assert all(e["loc"][0] == "body" for e in response.json()["detail"])
    assert api.get("/operations").json()["operations"] == []


def test_good_settings_queue_an_operation_with_the_given_ones(api):
    research = api.post("/research/runs", json={"quick": True, "timeframes": ["5m", "15m"],
                                                "seed": 3, "max_templates": None})
    assert research.status_code == 202
    op = research.json()
    assert op["type"] == "research_run" and op["status"] == "pending"
    assert op["metadata"]["parameters"] == {"quick": True, "timeframes": ["5m", "15m"],
                                            "seed": 3}
    empty = api.post("/research/runs")
    assert empty.status_code == 202 and empty.json()["metadata"]["parameters"] == {}
    training = api.post("/training/runs", json={"timeframe": "5m", "max_days": 3})
    assert training.status_code == 202
    assert training.json()["metadata"]["parameters"] == {"timeframe": "5m", "max_days": 3}
    assert get_operation(api.db, training.json()["id"]).type == "training_run"
    schema = api.get("/openapi.json").json()["components"]["schemas"]["ResearchRunRequest"]
    assert str(QUICK["mc_iters"]) in schema["properties"]["quick"]["description"]


@pytest.mark.parametrize("name", ["/etc/passwd", "../stratforge.db", "sub/space.yaml",
                                  ".hidden.yaml", "missing.yaml"])
def test_a_space_path_outside_the_spaces_folder_is_refused(api, home, name):
    (home / "spaces").mkdir(parents=True, exist_ok=True)
    (home / "spaces" / ".hidden.yaml").write_text("{}")
    response = api.post("/research/runs", json={"space_path": name})
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "space_path"]
    assert str(home / "spaces") in error["msg"]
    assert api.get("/operations").json()["operations"] == []


def test_a_space_named_in_the_spaces_folder_is_queued_as_its_full_path(api, home):
    folder = home / "spaces"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "wide.yaml").write_text("stop_ticks: {low: 4, high: 80}\n")
    (folder / "bad.yaml").write_text("stop_ticks: {low: 4, high: 80}\nwings: {low: 1}\n")
    bad = api.post("/research/runs", json={"space_path": "bad.yaml"})
    assert bad.status_code == 422 and "wings" in bad.json()["detail"][0]["msg"]
    response = api.post("/research/runs", json={"space_path": "wide.yaml"})
    assert response.status_code == 202, response.text
    stored = response.json()["metadata"]["parameters"]["space_path"]
    assert stored == str((folder / "wide.yaml").resolve())


def test_reading_runs_that_do_not_exist(api):
    assert api.get("/research/runs").json()["runs"] == []
    for path in ("/research/runs/run_missing", "/research/runs/run_missing/summary",
                 "/research/runs/op_missing", "/training/runs/op_missing",
                 "/training/runs/op_missing/log"):
        response = api.get(path)
        assert response.status_code == 404, path
        assert "missing" in response.json()["detail"]
    queued = api.post("/research/runs", json={}).json()["id"]
    early = api.get(f"/research/runs/{queued}")
    assert early.status_code == 404 and "has not started its run" in early.json()["detail"]
    sleep = create_operation(api.db, "sleep", {})
    for path in (f"/research/runs/{sleep.id}", f"/training/runs/{sleep.id}"):
        wrong = api.get(path)
        assert wrong.status_code == 404 and "sleep operation" in wrong.json()["detail"]
    pending = api.post("/training/runs", json={}).json()["id"]
    info = api.get(f"/training/runs/{pending}").json()
    assert info["log"] is False and info["report"] is False and info["summary"] is None
    assert api.get(f"/training/runs/{pending}/report").status_code == 404
    assert api.get("/research/runs/..%2Fetc").status_code in (404, 422)


def test_a_research_run_through_the_api(sqlite_api, home):
    api = sqlite_api
    make_market(home, "realistic", 20, seed=11)
    started = api.post("/research/runs", json=RESEARCH)
    assert started.status_code == 202, started.text
    op_id = started.json()["id"]
    stats = Worker(api.db, exit_when_idle=True, types=["research_run"]).run()
    assert stats.completed == 1, get_operation(api.db, op_id).error
    op = api.get(f"/operations/{op_id}").json()
    run_id = op["result_summary"]["run_id"]
    folder = home / "runs" / run_id
    by_op, by_run = api.get(f"/research/runs/{op_id}"), api.get(f"/research/runs/{run_id}")
    assert by_op.status_code == 200 and by_op.json() == by_run.json()
    info = by_run.json()
    assert info["run_id"] == run_id and info["complete"] is True and info["symbol"] == "MNQ"
    assert info["files"] == {"summary": True, "playbook": True, "report": True}
    assert info["config"]["mc_iters"] == RESEARCH["mc_iters"]
    assert info["config"]["timeframes"] == ["5m", "15m"]
    summary = api.get(f"/research/runs/{run_id}/summary")
    assert summary.headers["content-type"] == "application/json"
    assert summary.json() == json.loads((folder / "summary.json").read_text())
    assert summary.json()["tiers"] == op["result_summary"]["tiers"]
    playbook = api.get(f"/research/runs/{op_id}/playbook").json()
    assert playbook == json.loads((folder / "playbook.json").read_text())
    assert playbook["run_id"] == run_id
    report = api.get(f"/research/runs/{run_id}/report")
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
    assert report.content == (folder / "report.html").read_bytes()
    listed = api.get("/research/runs").json()["runs"]
    assert [r["run_id"] for r in listed] == [run_id]
    assert api.get("/research/runs", params={"offset": 1}).json()["runs"] == []
    # the data routes see the market the run used
    assert api.get("/data/symbols").json()["symbols"] == ["MNQ"]


def test_a_research_run_with_null_twins_through_the_api(sqlite_api, home):
    """``null_twins`` queued through the API runs the twins after the run, as the CLI's
    ``--null-twins`` does: the block beside the run and in the operation's result."""
    api = sqlite_api
    make_market(home, "planted", 20, seed=5)
    started = api.post("/research/runs", json={**RESEARCH, "null_twins": 1})
    assert started.status_code == 202, started.text
    op_id = started.json()["id"]
    assert started.json()["metadata"]["parameters"]["null_twins"] == 1
    stats = Worker(api.db, exit_when_idle=True, types=["research_run"]).run()
    assert stats.completed == 1, get_operation(api.db, op_id).error
    result = api.get(f"/operations/{op_id}").json()["result_summary"]
    folder = home / "runs" / result["run_id"]
    block = json.loads((folder / "null_twins.json").read_text())
    assert block["twins"] == 1 and block["run_id"] == result["run_id"]
    assert api.get(f"/research/runs/{op_id}/summary").json()["null_twins"] == block
    assert result["null_twins"]["twins"] == 1
    assert result["null_twins"]["beats_the_twins"] == block["beats_the_twins"]
    assert result["null_twins"]["twins_with_any"] == {
        name: tier["twins_with_any"] for name, tier in block["tiers"].items()}
    assert len(list((folder / "null_twins").glob("twin_*.json"))) == 1


def test_a_training_run_through_the_api(sqlite_api, home):
    api = sqlite_api
    make_market(home, "realistic", 14, seed=5)
    started = api.post("/training/runs", json=TRAINING)
    assert started.status_code == 202, started.text
    op_id = started.json()["id"]
    stats = Worker(api.db, exit_when_idle=True, types=["training_run"]).run()
    assert stats.completed == 1, get_operation(api.db, op_id).error
    folder = home / "training" / op_id
    log = json.loads((folder / "training_log.json").read_text())
    info = api.get(f"/training/runs/{op_id}").json()
    assert info["operation"]["status"] == "completed" and info["folder"] == str(folder)
    assert info["log"] is True and info["report"] is True
    assert info["summary"] == log["summary"] and info["summary"]["days"] == 2
    assert api.get(f"/training/runs/{op_id}/log").json() == log
    report = api.get(f"/training/runs/{op_id}/report")
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
    assert report.content == (folder / "training_report.html").read_bytes()


def test_a_failed_run_is_listed_as_failed_with_its_error(api, home):
    # a run that failed in its data phase leaves config.json and state.json only: the list
    # names it failed, with the operation's error, not "0/8 no" with a full progress bar
    from stratforge.ops.operations import finish_operation
    from stratforge.research.config import make_config
    from stratforge.research.runs import RunFolder

    folder = RunFolder.create(make_config(symbol="MNQ", timeframes="5m"), home,
                              "run_20260101_000000_deadbeef")
    folder.release()  # the writer is done (the lock is what a running writer holds)
    op = create_operation(api.db, "research_run", {"symbol": "MNQ"},
                          metadata={"run_id": folder.run_id}, enqueue=False)
    with api.db.write() as connection:
        finish_operation(connection, op.id, "failed", error="DataError: MNQ has no bars")
    listed = {r["run_id"]: r for r in api.get("/research/runs").json()["runs"]}
    run = listed[folder.run_id]
    assert (run["status"], run["error"], run["operation_id"]) == \
        ("failed", "DataError: MNQ has no bars", op.id)
    assert run["phases_done"] == []
    detail = api.get(f"/research/runs/{folder.run_id}").json()
    assert detail["status"] == "failed" and detail["error"] == "DataError: MNQ has no bars"
