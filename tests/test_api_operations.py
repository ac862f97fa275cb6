"""``/operations`` on SQLite and PostgreSQL: list filters, the single read with its
children's aggregate, children, cancel (reason by query or body) and retry; real jobs run
by a worker; errors as JSON."""

from __future__ import annotations

import threading
import time

import pytest

from stratforge.api.operation_reads import operation_detail, operation_json
from stratforge.ops.models import Operation
from stratforge.ops.operations import (
    aggregate_progress,
    create_operation,
    get_operation,
    report_progress,
)
from stratforge.ops.worker import Worker
from test_api_support import make_api

OPS = Operation.__table__


@pytest.fixture
def api(home, database_url, monkeypatch):
    with make_api(database_url, monkeypatch) as client:
        yield client


def test_a_sleep_operation_read_after_a_real_worker_ran_it(api):
    op = create_operation(api.db, "sleep", {"seconds": 0.2})
    before = api.get(f"/operations/{op.id}")
    assert before.status_code == 200 and before.json()["status"] == "pending"
    Worker(api.db, exit_when_idle=True).run()
    body = api.get(f"/operations/{op.id}").json()
    assert body["status"] == "completed" and body["result_summary"] == {"slept_seconds": 0.2}
    assert body["progress"]["percent"] == 100.0 and body["worker_id"]
    assert body["metadata"]["parameters"] == {"seconds": 0.2}
    assert body["created_at"].endswith("Z") and body["completed_at"] >= body["started_at"]
    assert body["aggregate"]["children"] == 0 and body["aggregate"]["children_percent"] is None


def test_the_fast_read_equals_the_records_and_aggregate_progress(api):
    parent = create_operation(api.db, "sleep", {}, enqueue=False)
    kids = [create_operation(api.db, "sleep", {"seconds": 30}, parent_id=parent.id)
            for _ in range(3)]
    create_operation(api.db, "noop", {}, parent_id=parent.id)
    Worker(api.db, exit_when_idle=True, types=["noop"]).run()
    with api.db.write() as connection:  # one child running at 40 %
        connection.execute(OPS.update().where(OPS.c.id == kids[0].id).values(status="running"))
    report_progress(api.db, kids[0].id, percent=40.0, step="sleep", done=4, total=10)
    api.delete(f"/operations/{kids[1].id}")
    detail = operation_detail(api.db, parent.id)
    reference = aggregate_progress(api.db, parent.id)
    assert detail["aggregate"] == reference
    assert reference["children_by_status"] == {"pending": 1, "running": 1, "completed": 1,
                                               "failed": 0, "cancelled": 1}
    assert reference["children_percent"] == pytest.approx((40.0 + 0 + 0 + 100.0) / 4)
    record = get_operation(api.db, parent.id)
    assert {k: v for k, v in detail.items() if k != "aggregate"} == record.to_json()
    with api.db.read() as connection:
        row = connection.execute(OPS.select().where(OPS.c.id == kids[0].id)).first()
    assert operation_json(row._mapping) == get_operation(api.db, kids[0].id).to_json()
    assert api.get(f"/operations/{parent.id}").json()["aggregate"] == reference


def test_list_filters_paging_and_children(api):
    parent = create_operation(api.db, "sleep", {}, enqueue=False)
    kids = [create_operation(api.db, "echo", {"i": i}, parent_id=parent.id) for i in range(3)]
    other = create_operation(api.db, "noop", {})
    Worker(api.db, exit_when_idle=True, types=["noop"]).run()
    listed = api.get("/operations").json()
    assert [o["id"] for o in listed["operations"]] == \
        [o.id for o in sorted([parent, *kids, other], key=lambda o: (o.created_at, o.id),
                              reverse=True)]
    assert listed["limit"] == 100 and listed["offset"] == 0

    def ids(**params):
        response = api.get("/operations", params=params)
        assert response.status_code == 200, response.text
        return {o["id"] for o in response.json()["operations"]}

    assert ids(type="echo") == {k.id for k in kids}
    assert ids(status="completed") == {other.id}
    assert ids(active_only=True) == {parent.id, *(k.id for k in kids)}
    assert ids(parent_id=parent.id) == {k.id for k in kids}
    assert len(ids(limit=2)) == 2 and len(ids(limit=2, offset=4)) == 1
    assert ids(type="nothing_like_this") == set()
    children = api.get(f"/operations/{parent.id}/children").json()["operations"]
    assert [c["id"] for c in children] == [k.id for k in kids]
    assert api.get(f"/operations/{other.id}/children").json()["operations"] == []


@pytest.mark.parametrize(("params", "field"), [
    ({"limit": 1001}, "limit"), ({"limit": 0}, "limit"), ({"offset": -1}, "offset"),
    ({"status": "bogus"}, "status"), ({"type": "no spaces"}, "type"),
    ({"active_only": "maybe"}, "active_only"), ({"parent_id": "x" * 80}, "parent_id"),
])
def test_bad_list_parameters_are_422_naming_the_field(api, params, field):
    response = api.get("/operations", params=params)
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [["query", field]]


def test_unknown_and_malformed_ids(api):
    for path in ("/operations/op_missing", "/operations/op_missing/children"):
        response = api.get(path)
        assert response.status_code == 404 and "op_missing" in response.json()["detail"]
    assert api.delete("/operations/op_missing").status_code == 404
    assert api.post("/operations/op_missing/retry").status_code == 404
    bad = api.get("/operations/bad%20id")
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["path", "operation_id"]


def test_cancel_with_a_reason_from_the_query_or_the_body(api):
    by_query = create_operation(api.db, "sleep", {"seconds": 30})
    by_body = create_operation(api.db, "sleep", {"seconds": 30})
    plain = create_operation(api.db, "sleep", {"seconds": 30})
    one = api.delete(f"/operations/{by_query.id}", params={"reason": "wrong span"})
    two = api.delete(f"/operations/{by_body.id}", json={"reason": "from the body"})
    three = api.delete(f"/operations/{plain.id}")
    assert (one.status_code, two.status_code, three.status_code) == (200, 200, 200)
    assert one.json()["status"] == "cancelled" and one.json()["error"] == "wrong span"
    assert get_operation(api.db, by_body.id).error == "from the body"
    assert three.json()["error"] == "cancelled by request"
    again = api.delete(f"/operations/{plain.id}")
    assert again.status_code == 409 and "already cancelled" in again.json()["detail"]
    bad = api.delete(f"/operations/{plain.id}", json={"reason": "x", "extra": 1})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "extra"]
    nul = api.delete(f"/operations/{plain.id}", params={"reason": "a\x00b"})
    assert nul.status_code == 422


def test_cancelling_a_running_operation_through_the_api_stops_it(api):
    op = create_operation(api.db, "sleep", {"seconds": 30})
    worker = Worker(api.db, exit_when_idle=True, cancel_poll=0.1)
    thread = threading.Thread(target=worker.run)
    thread.start()
    deadline = time.monotonic() + 20
    while api.get(f"/operations/{op.id}").json()["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert api.delete(f"/operations/{op.id}", params={"reason": "stop"}).status_code == 200
    thread.join(10)
    assert not thread.is_alive() and worker.stats.cancelled == 1
    assert api.get(f"/operations/{op.id}").json()["status"] == "cancelled"


def test_retry_a_finished_operation_and_refuse_an_active_one(api):
    op = create_operation(api.db, "echo", {"x": 1})
    active = api.post(f"/operations/{op.id}/retry")
    assert active.status_code == 409 and "only completed, failed or cancelled" in \
        active.json()["detail"]
    Worker(api.db, exit_when_idle=True).run()
    retried = api.post(f"/operations/{op.id}/retry")
    assert retried.status_code == 202
    clone = retried.json()
    assert clone["id"] != op.id and clone["status"] == "pending"
    assert clone["metadata"]["retry_of"] == op.id and clone["metadata"]["parameters"] == {"x": 1}
    Worker(api.db, exit_when_idle=True).run()
    assert api.get(f"/operations/{clone['id']}").json()["status"] == "completed"
