"""Operations and the job queue on SQLite and PostgreSQL: lifecycle, cascade cancel, retry,
the reaper and start-up reconciliation, against the contract's rules."""

from __future__ import annotations

import re
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from stratforge.ops.events import events_after
from stratforge.ops.models import Job, Operation, Worker
from stratforge.ops.operations import (
    ConflictError,
    NotFoundError,
    aggregate_progress,
    cancel_operation,
    children,
    create_operation,
    get_operation,
    list_operations,
    retry_operation,
)
from stratforge.ops.queue import (
    claim_next_job,
    enqueue_job,
    finish_job,
    heartbeat,
    reap_stale_jobs,
    reconcile,
    register_worker,
)
from stratforge.ops.worker import Worker as QueueWorker

JOBS, OPS, WORKERS = Job.__table__, Operation.__table__, Worker.__table__
ID_RULE = re.compile(r"^op_sleep_\d{8}_\d{6}_[0-9a-f]{8}$")


def _jobs(db):
    with db.read() as connection:
        return connection.execute(select(JOBS).order_by(JOBS.c.id)).all()


def test_operation_lifecycle_through_a_worker(database):
    op = create_operation(database, "sleep", {"seconds": 0.2}, metadata={"by": "test"})
    assert ID_RULE.match(op.id) and op.status == "pending" and op.parameters == {"seconds": 0.2}
    assert op.metadata["by"] == "test"
    stats = QueueWorker(database, exit_when_idle=True).run()
    done = get_operation(database, op.id)
    assert stats.completed == 1
    assert done.status == "completed" and done.progress_percent == 100.0
    assert done.result_summary == {"slept_seconds": 0.2}
    assert done.started_at <= done.completed_at and done.worker_id
    kinds = [(e["kind"], e["payload"].get("status")) for e in events_after(database)
             if e["operation_id"] == op.id and e["kind"] == "operation"]
    assert [k for k in kinds] == [("operation", "pending"), ("operation", "running"),
                                  ("operation", "completed")]
    assert _jobs(database)[0].status == "completed" and _jobs(database)[0].attempts == 1


def test_failure_is_recorded_with_a_readable_error(database):
    op = create_operation(database, "simulation", {"symbol": "NOPE", "signal": "wrong"})
    QueueWorker(database, exit_when_idle=True).run()
    failed = get_operation(database, op.id)
    assert failed.status == "failed"
    assert "signal must be one of" in failed.error
    assert _jobs(database)[0].status == "failed"


def test_list_filters_and_children(database):
    parent = create_operation(database, "sleep", {}, enqueue=False)
    kids = [create_operation(database, "echo", {"i": i}, parent_id=parent.id) for i in range(3)]
    other = create_operation(database, "noop", {})
    assert [o.id for o in children(database, parent.id)] == [k.id for k in kids]
    assert {o.id for o in list_operations(database, op_type="echo")} == {k.id for k in kids}
    assert len(list_operations(database, limit=2)) == 2
    assert len(list_operations(database, limit=2, offset=3)) == 2
    assert {o.id for o in list_operations(database, active_only=True)} == \
        {parent.id, other.id, *(k.id for k in kids)}
    assert list_operations(database, status="completed") == []
    with pytest.raises(ValueError, match="status must be one of"):
        list_operations(database, status="bogus")
    with pytest.raises(NotFoundError):
        children(database, "op_missing")
    with pytest.raises(NotFoundError):
        create_operation(database, "echo", {}, parent_id="op_missing")
    QueueWorker(database, exit_when_idle=True, types=["echo"]).run()
    agg = aggregate_progress(database, parent.id)
    assert agg["children"] == 3 and agg["children_by_status"]["completed"] == 3
    assert agg["children_percent"] == 100.0


def test_cancel_cascades_to_every_active_descendant(database):
    root = create_operation(database, "sleep", {}, enqueue=False)
    child = create_operation(database, "sleep", {"seconds": 30}, parent_id=root.id)
    grandchild = create_operation(database, "sleep", {"seconds": 30}, parent_id=child.id)
    finished = create_operation(database, "noop", {}, parent_id=root.id)
    QueueWorker(database, exit_when_idle=True, types=["noop"]).run()
    assert get_operation(database, finished.id).status == "completed"
    cancelled = cancel_operation(database, root.id, "enough")
    assert cancelled.status == "cancelled" and cancelled.error == "enough"
    for op_id in (child.id, grandchild.id):
        assert get_operation(database, op_id).status == "cancelled"
    assert get_operation(database, finished.id).status == "completed"  # finished stays
    assert {j.status for j in _jobs(database) if j.operation_id in (child.id, grandchild.id)} \
        == {"cancelled"}
    assert claim_next_job(database, "w") is None  # nothing left to run
    with pytest.raises(ConflictError, match="already cancelled"):
        cancel_operation(database, root.id)


def test_cancelling_a_running_operation_stops_its_handler(database):
    op = create_operation(database, "sleep", {"seconds": 30})
    worker = QueueWorker(database, exit_when_idle=True, cancel_poll=0.1)
    thread = threading.Thread(target=worker.run)
    thread.start()
    deadline = time.monotonic() + 20
    while get_operation(database, op.id).status != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    started = time.monotonic()
    cancel_operation(database, op.id)
    thread.join(10)
    assert not thread.is_alive() and time.monotonic() - started < 2.0
    assert worker.stats.cancelled == 1
    assert get_operation(database, op.id).status == "cancelled"


def test_retry_clones_under_a_new_id(database):
    op = create_operation(database, "echo", {"x": 1}, metadata={"note": "keep"})
    with pytest.raises(ConflictError, match="only completed, failed or cancelled"):
        retry_operation(database, op.id)
    cancel_operation(database, op.id)
    clone = retry_operation(database, op.id)
    assert clone.id != op.id and clone.status == "pending" and clone.type == "echo"
    assert clone.parameters == {"x": 1}
    assert clone.metadata["retry_of"] == op.id and clone.metadata["note"] == "keep"
    QueueWorker(database, exit_when_idle=True).run()
    assert get_operation(database, clone.id).status == "completed"
    assert get_operation(database, op.id).status == "cancelled"


def test_claim_order_priority_then_age(database):
    low = enqueue_job(database, "noop", {"n": 1})
    high = enqueue_job(database, "noop", {"n": 2}, priority=5)
    later_low = enqueue_job(database, "noop", {"n": 3})
    order = [claim_next_job(database, "w").id for _ in range(3)]
    assert order == [high, low, later_low]
    assert claim_next_job(database, "w") is None


def test_finish_is_fenced_on_the_claiming_worker(database):
    op = create_operation(database, "noop", {})
    job = claim_next_job(database, "first")
    with database.write() as connection:  # reaped and re-claimed meanwhile
        connection.execute(update(JOBS).values(worker_id="second"))
    assert finish_job(database, job, "first", "completed") is False
    assert get_operation(database, op.id).status == "pending"
    assert _jobs(database)[0].status == "running"


def _age_heartbeats(database, seconds: float) -> None:
    with database.write() as connection:
        rows = connection.execute(select(JOBS.c.id, JOBS.c.heartbeat_at)).all()
        for row in rows:
            if row.heartbeat_at is not None:
                connection.execute(update(JOBS).where(JOBS.c.id == row.id).values(
                    heartbeat_at=row.heartbeat_at - timedelta(seconds=seconds)))


def test_reaper_requeues_stale_jobs_and_fails_them_after_max_attempts(database):
    op = create_operation(database, "noop", {}, max_attempts=2)
    fresh = create_operation(database, "noop", {})
    first = claim_next_job(database, "dead-1")
    alive = claim_next_job(database, "alive")
    assert first.operation_id == op.id and alive.operation_id == fresh.id
    _age_heartbeats(database, 120)
    heartbeat(database, "alive", [alive.id], [fresh.id])  # the live worker's job is kept
    assert reap_stale_jobs(database, stale_after=60) == {"requeued": 1, "failed": 0}
    job = {j.id: j for j in _jobs(database)}[first.id]
    assert job.status == "queued" and job.worker_id is None and job.attempts == 1
    again = claim_next_job(database, "dead-2")
    assert again.id == first.id and again.attempts == 2
    _age_heartbeats(database, 120)
    heartbeat(database, "alive", [alive.id], [fresh.id])
    assert reap_stale_jobs(database, stale_after=60) == {"requeued": 0, "failed": 1}
    gone = get_operation(database, op.id)
    assert gone.status == "failed" and "gave up after 2 attempts" in gone.error
    assert {j.id: j for j in _jobs(database)}[alive.id].status == "running"


def test_reconciliation_frees_jobs_of_dead_local_workers(database):
    op = create_operation(database, "noop", {})
    orphan = create_operation(database, "noop", {}, enqueue=False)
    register_worker(database, "ghost", None, 1)
    with database.write() as connection:  # a pid that cannot exist
        connection.execute(update(WORKERS).where(WORKERS.c.id == "ghost").values(pid=2**22 + 7))
        connection.execute(update(OPS).where(OPS.c.id == orphan.id).values(status="running"))
    job = claim_next_job(database, "ghost")
    with database.write() as connection:
        connection.execute(update(OPS).where(OPS.c.id == op.id).values(status="running"))
    counts = reconcile(database)
    assert counts["dead_workers"] == 1 and counts["requeued"] == 1 and counts["orphans"] == 1
    assert {j.id: j for j in _jobs(database)}[job.id].status == "queued"
    assert get_operation(database, op.id).status == "pending"
    left = get_operation(database, orphan.id)
    assert left.status == "failed" and "left running" in left.error
    QueueWorker(database, exit_when_idle=True).run()
    assert get_operation(database, op.id).status == "completed"


def test_worker_stop_hands_the_job_back_without_using_an_attempt(database):
    op = create_operation(database, "sleep", {"seconds": 30})
    worker = QueueWorker(database, exit_when_idle=True)
    thread = threading.Thread(target=worker.run)
    thread.start()
    deadline = time.monotonic() + 20
    while get_operation(database, op.id).status != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    worker.request_stop()
    thread.join(10)
    assert worker.stats.released == 1
    assert get_operation(database, op.id).status == "pending"
    job = _jobs(database)[0]
    assert job.status == "queued" and job.attempts == 0 and job.worker_id is None


def test_migrated_schema_equals_the_models_and_migrating_twice_is_harmless(database):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import inspect

    from stratforge.ops.models import Base

    def comparable(obj, name, kind, reflected, compare_to):
        # alembic cannot compare expression indexes (priority DESC); checked by name below
        return not (kind == "index" and name == "ix_jobs_queued")

    database.migrate()
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"include_object": comparable})
        assert compare_metadata(context, Base.metadata) == []
        names = {i["name"] for i in inspect(connection).get_indexes("jobs")}
        assert "ix_jobs_queued" in names
        if database.dialect == "sqlite":
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_bad_database_urls_are_explained(tmp_path):
    from stratforge.errors import ConfigError
    from stratforge.ops.db import Database

    with pytest.raises(ConfigError, match="not a database URL"):
        Database("::nonsense::")
    with pytest.raises(ConfigError, match="not supported"):
        Database("mysql://root@127.0.0.1/test", migrate=False)
