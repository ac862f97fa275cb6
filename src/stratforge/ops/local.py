"""Long jobs that run in this process (the CLI's ``run``, ``train``, ``discover``) as
operations of the home's database: the same rows, events and cancel path as a worker's job.

``with run_here(db, "training_run", parameters) as job:`` creates the operation together with
its queue job, already claimed by this process (so no worker of a server takes it), marks it
running, and yields the :class:`~stratforge.ops.context.JobContext` a worker's handler would
get: ``job.progress`` is the progress protocol's callback (it writes the progress row and
raises :class:`~stratforge.ops.context.OperationCancelledError` once the operation was
cancelled from the dashboard, the API or ``stratforge ops cancel``). A monitor thread
heartbeats the job and notices cancellation every ``cancel_poll`` seconds. On leaving the
block the operation is completed with ``job.result``; an exception fails it with its
message; Ctrl-C cancels it. The queue job is claimed with ``max_attempts=1``: if this process
dies, the reaper fails the operation instead of handing it to a server's worker.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert

from stratforge.errors import StratforgeError
from stratforge.ops.context import JobContext, OperationCancelledError
from stratforge.ops.db import Database, utcnow
from stratforge.ops.models import Job
from stratforge.ops.operations import (
    cancel_operation,
    cancel_requested,
    create_operation,
    get_operation,
    mark_running,
)
from stratforge.ops.queue import finish_job, heartbeat, register_worker, stop_worker
from stratforge.ops.records import JobRecord
from stratforge.ops.worker import new_worker_id

JOBS = Job.__table__
INTERRUPTED = "interrupted in the terminal (Ctrl-C)"


@dataclass
class LocalJob(JobContext):
    """A :class:`JobContext` for work run in this process; set ``result`` (the operation's
    ``result_summary``) before leaving the ``run_here`` block."""

    result: dict[str, Any] | None = None


def _claimed_operation(db: Database, op_type: str, parameters: dict[str, Any],
                       metadata: dict[str, Any] | None, worker_id: str
                       ) -> tuple[JobRecord, str]:
    """The operation and its job, claimed by ``worker_id``, in one transaction."""
    with db.write() as connection:
        op = create_operation(db, op_type, parameters, metadata=metadata, enqueue=False,
                              connection=connection)
        now = utcnow()
        row = connection.execute(insert(JOBS).values(
            operation_id=op.id, type=op_type, payload={}, priority=0, status="running",
            attempts=1, max_attempts=1, worker_id=worker_id, created_at=now, started_at=now,
            heartbeat_at=now).returning(*JOBS.c)).first()
        mark_running(connection, op.id, worker_id)
    return JobRecord.from_row(row), op.id


def _monitor(job: LocalJob, done: threading.Event, cancel_poll: float,
             heartbeat_every: float) -> None:
    """Set ``job.cancelled`` once its operation was cancelled; heartbeat the job."""
    waited = 0.0
    op_id = job.job.operation_id
    while not done.wait(cancel_poll):
        waited += cancel_poll
        with contextlib.suppress(Exception):  # a database hiccup: try again next time
            if cancel_requested(job.db, [op_id]):
                job.cancelled.set()
            if waited >= heartbeat_every:
                waited = 0.0
                heartbeat(job.db, job.worker_id, [job.job.id], [op_id])


@contextlib.contextmanager
def run_here(db: Database, op_type: str, parameters: dict[str, Any], *,
             metadata: dict[str, Any] | None = None, phases: tuple[str, ...] | None = None,
             cancel_poll: float = 0.5, heartbeat_every: float = 5.0) -> Iterator[LocalJob]:
    """Record the work of the ``with`` block as a running operation of ``op_type`` (see the
    module docstring); yields its :class:`LocalJob`."""
    worker_id = f"cli-{new_worker_id()}"
    register_worker(db, worker_id, [op_type], 1)
    claimed, op_id = _claimed_operation(db, op_type, parameters, metadata, worker_id)
    job = LocalJob(db, claimed, get_operation(db, op_id), worker_id, phases=phases)
    done = threading.Event()
    monitor = threading.Thread(target=_monitor, args=(job, done, cancel_poll, heartbeat_every),
                               daemon=True, name="stratforge-local-operation")
    monitor.start()
    try:
        yield job
    except OperationCancelledError:
        raise  # cancel_operation already wrote the operation and its job
    except KeyboardInterrupt:
        with contextlib.suppress(StratforgeError):
            cancel_operation(db, op_id, INTERRUPTED)
        raise
    except BaseException as exc:
        message = str(exc) if isinstance(exc, StratforgeError) else \
            f"{type(exc).__name__}: {exc}"
        finish_job(db, claimed, worker_id, "failed", error=message or type(exc).__name__)
        raise
    else:
        if not finish_job(db, claimed, worker_id, "completed", result=job.result) and \
                get_operation(db, op_id).status == "cancelled":
            # cancelled after the last progress report: the work is complete and saved, but
            # the operation keeps what was asked of it
            job.cancelled.set()
    finally:
        done.set()
        monitor.join(2.0)
        stop_worker(db, worker_id, jobs_done=1)
