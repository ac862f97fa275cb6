"""``/events`` (Server-Sent Events) on SQLite and PostgreSQL: the format, where a stream
starts (``Last-Event-ID``, ``?after=``, now), the operation filter, keep-alive comments,
how a stream ends, and the events of a real job."""

from __future__ import annotations

import threading
import time

import pytest

from stratforge.ops.events import events_after, last_event_id
from stratforge.ops.operations import create_operation
from stratforge.ops.worker import Worker
from test_api_support import make_api, parse_sse


@pytest.fixture
def api(home, database_url, monkeypatch):
    with make_api(database_url, monkeypatch) as client:
        yield client


def _stream(api, **params):
    response = api.get("/events", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return parse_sse(response.text)


def test_messages_carry_the_events_in_id_order(api):
    ops = [create_operation(api.db, "sleep", {"i": i}) for i in range(3)]
    messages, _ = _stream(api, after=0, max_events=3)
    assert messages[0] == {"retry": "2000"}
    events = messages[1:]
    assert [m["data"] for m in events] == events_after(api.db, 0)
    assert [int(m["id"]) for m in events] == [m["data"]["id"] for m in events]
    assert [m["event"] for m in events] == ["operation"] * 3
    assert [m["data"]["operation_id"] for m in events] == [o.id for o in ops]
    assert events[0]["data"]["payload"]["status"] == "pending"
    assert events[0]["data"]["ts"].endswith("Z")


def test_last_event_id_wins_over_after_and_max_events_ends(api):
    for i in range(5):
        create_operation(api.db, "sleep", {"i": i})
    first = events_after(api.db, 0)[0]["id"]
    response = api.get("/events", params={"after": 0, "max_events": 2},
                       headers={"Last-Event-ID": str(first)})
    messages, _ = parse_sse(response.text)
    assert [m["data"]["id"] for m in messages[1:]] == [first + 1, first + 2]
    later, _ = _stream(api, after=first + 2, timeout=0.3)
    assert [m["data"]["id"] for m in later[1:]] == [first + 3, first + 4]
    bad = api.get("/events", headers={"Last-Event-ID": "not-a-number"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["header",
                                                                         "Last-Event-ID"]


def test_without_a_start_only_new_events_come(api):
    create_operation(api.db, "sleep", {})
    newest = last_event_id(api.db)

    def later():
        # after the stream has read its start (the newest event id): on a loaded machine
        # opening the stream took more than 0.3 s and the noop counted as old
        time.sleep(1.5)
        create_operation(api.db, "noop", {})

    thread = threading.Thread(target=later)
    thread.start()
    messages, _ = _stream(api, timeout=10, max_events=1)
    thread.join()
    assert len(messages) == 2 and messages[1]["data"]["id"] > newest
    assert messages[1]["data"]["payload"]["type"] == "noop"


def test_operation_filter_and_unknown_operation(api):
    mine = create_operation(api.db, "sleep", {})
    create_operation(api.db, "noop", {})
    api.delete(f"/operations/{mine.id}")
    messages, _ = _stream(api, after=0, operation_id=mine.id, timeout=0.3)
    assert [m["data"]["payload"]["status"] for m in messages[1:]] == ["pending", "cancelled"]
    assert {m["data"]["operation_id"] for m in messages[1:]} == {mine.id}
    missing = api.get("/events", params={"operation_id": "op_missing"})
    assert missing.status_code == 404 and "op_missing" in missing.json()["detail"]


def test_keep_alive_comments_and_the_timeout(api):
    started = time.monotonic()
    messages, comments = _stream(api, timeout=1.3, keepalive=0.4)
    elapsed = time.monotonic() - started
    assert messages == [{"retry": "2000"}]
    assert comments.count("keep-alive") >= 2
    assert 1.2 <= elapsed < 5.0


@pytest.mark.parametrize(("params", "field"), [
    ({"timeout": 0}, "timeout"), ({"timeout": "inf"}, "timeout"), ({"max_events": 0},
                                                                   "max_events"),
    ({"after": -1}, "after"), ({"keepalive": 0.01}, "keepalive"),
    ({"operation_id": "bad id"}, "operation_id")])
def test_bad_stream_parameters_are_422(api, params, field):
    response = api.get("/events", params=params)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", field]


def test_a_real_job_streams_its_state_and_progress(api):
    op = create_operation(api.db, "sleep", {"seconds": 1.2})
    Worker(api.db, exit_when_idle=True).run()
    messages, _ = _stream(api, after=0, operation_id=op.id, timeout=0.3)
    kinds = [(m["event"], m["data"]["payload"].get("status")) for m in messages[1:]]
    assert kinds[0] == ("operation", "pending") and kinds[1] == ("operation", "running")
    assert kinds[-1] == ("operation", "completed")
    progress = [m["data"]["payload"] for m in messages[1:] if m["event"] == "progress"]
    assert progress and all(p["id"] == op.id and p["step"] == "sleep" for p in progress)
    assert [p["percent"] for p in progress] == sorted(p["percent"] for p in progress)
