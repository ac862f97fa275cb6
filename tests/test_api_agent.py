"""``/agent`` on SQLite and PostgreSQL, through the real ``ops.agent.service``: trigger
(202, then 409 naming the active cycle), status while active and after, cancel (the cycle
and its experiment), the experiments list, and bad triggers as 422."""

from __future__ import annotations

import pytest

from stratforge.ops.agent.experiments import claim_experiment
from stratforge.ops.agent.service import list_experiments
from stratforge.ops.operations import create_operation, get_operation, merge_metadata
from test_api_support import make_api


@pytest.fixture
def api(home, database_url, monkeypatch):
    with make_api(database_url, monkeypatch) as client:
        yield client


def test_idle_agent(api):
    status = api.get("/agent/status").json()
    assert status["active"] is False and status["phase"] == "idle"
    assert status["operation"] is None and status["child"] is None
    assert status["training_op_id"] is status["backtest_op_id"] is None
    assert status["child_operation_id"] is None
    assert api.get("/agent/experiments").json() == {"experiments": [], "limit": 100,
                                                    "offset": 0}
    nothing = api.delete("/agent/cancel")
    assert nothing.status_code == 200 and nothing.json() == {"cancelled": False,
                                                             "operation": None}


def test_trigger_conflict_status_and_cancel(api):
    started = api.post("/agent/trigger", json={"bypass_gates": True,
                                               "overrides": {"signal.timeframe": "5m"}})
    assert started.status_code == 202, started.text
    body = started.json()
    cycle_id = body["operation_id"]
    assert body["operation"]["id"] == cycle_id and body["operation"]["type"] == "agent_cycle"
    parameters = get_operation(api.db, cycle_id).parameters
    assert parameters["bypass_gates"] is True and parameters["designer"] == "thompson"
    assert parameters["overrides"] == {"signal": {"timeframe": "5m"}}

    second = api.post("/agent/trigger", json={})
    assert second.status_code == 409
    assert second.json()["active_id"] == cycle_id and cycle_id in second.json()["detail"]

    status = api.get("/agent/status").json()
    assert status["active"] is True and status["operation"]["id"] == cycle_id
    assert status["phase"] == "idle" and status["operation"]["status"] == "pending"
    assert "percent" in status["progress"]

    experiment = claim_experiment(api.db, spec={"k": 1}, fingerprint="ab" * 32, arm="arm-1",
                                  operation_id=cycle_id)
    listed = api.get("/agent/experiments").json()["experiments"]
    assert listed == list_experiments(api.db)
    assert [e["id"] for e in listed] == [experiment] and listed[0]["status"] == "running"

    cancelled = api.delete("/agent/cancel", params={"reason": "enough for today"})
    assert cancelled.status_code == 200
    assert cancelled.json()["cancelled"] is True
    assert cancelled.json()["operation"]["status"] == "cancelled"
    assert get_operation(api.db, cycle_id).error == "enough for today"
    after = api.get("/agent/status").json()
    assert after["active"] is False and after["operation"]["id"] == cycle_id
    assert after["phase"] == "cancelled"
    assert api.get("/agent/experiments").json()["experiments"][0]["status"] == "cancelled"
    again = api.post("/agent/trigger")
    assert again.status_code == 202 and again.json()["operation_id"] != cycle_id
    by_body = api.delete("/agent/cancel", json={"reason": "from the body"})
    assert by_body.json()["cancelled"] is True
    assert get_operation(api.db, again.json()["operation_id"]).error == "from the body"


def test_status_gives_the_child_ids_at_the_top_level(api):
    cycle_id = api.post("/agent/trigger", json={}).json()["operation_id"]
    training = create_operation(api.db, "training", {}, parent_id=cycle_id)
    merge_metadata(api.db, cycle_id, {"training_op_id": training.id})
    status = api.get("/agent/status").json()
    assert status["training_op_id"] == status["child_operation_id"] == training.id
    assert status["child"]["id"] == training.id and status["backtest_op_id"] is None
    backtest = create_operation(api.db, "backtesting", {}, parent_id=cycle_id)
    merge_metadata(api.db, cycle_id, {"backtesting_op_id": backtest.id})
    status = api.get("/agent/status").json()
    assert status["backtest_op_id"] == status["child_operation_id"] == backtest.id
    assert status["training_op_id"] == training.id
    assert status["operation"]["metadata"]["backtesting_op_id"] == backtest.id


@pytest.mark.parametrize(("body", "needle"), [
    ({"designer": "nope"}, "designer"),
    ({"overrides": {"no_such_field": 1}}, "no_such_field"),
    ({"overrides": {"symbol": "ZZZ"}}, "symbol"),
    ({"designer": "bad name!"}, "designer"),
    ({"bypass_gates": "sometimes"}, "bypass_gates"),
    ({"unknown": True}, "unknown"),
])
def test_bad_triggers_are_422_and_queue_nothing(api, body, needle):
    response = api.post("/agent/trigger", json=body)
    assert response.status_code == 422, response.text
    assert needle in str(response.json()["detail"])
    assert api.get("/operations").json()["operations"] == []


def test_experiments_paging_is_validated(api):
    assert api.get("/agent/experiments", params={"limit": 0}).status_code == 422
    assert api.get("/agent/experiments", params={"limit": 5, "offset": 2}).json() == {
        "experiments": [], "limit": 5, "offset": 2}
