"""A worker: claims jobs from the queue, runs their handlers, heartbeats, reaps, stops cleanly.

``Worker(db).run()`` blocks until ``request_stop()`` (SIGTERM and SIGINT call it when run in
the main thread), ``max_jobs`` jobs have run, or (``exit_when_idle``) no job of its types is
queued or running elsewhere.
``concurrency`` threads claim and run jobs; one monitor thread, every ``cancel_poll``
seconds, notices cancelled operations (their handler stops at its next progress report) and,
every ``heartbeat_every`` seconds, writes the heartbeat of the worker, its jobs and their
operations and reaps jobs whose heartbeat is older than ``stale_after`` seconds.

On a stop request a running handler is interrupted at its next progress report and its job
handed back to the queue (``release_job``); handlers checkpoint as they go (research runs,
training runs), so the next worker resumes where this one stopped.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import threading
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy.exc import OperationalError

from stratforge.errors import StratforgeError
from stratforge.ops.context import (
    ClaimLostError,
    JobContext,
    OperationCancelledError,
    WorkerStoppingError,
)
from stratforge.ops.db import Database
from stratforge.ops.handlers import get_handler, handler_types
from stratforge.ops.operations import cancel_requested, get_operation, mark_running
from stratforge.ops.queue import (
    DEFAULT_STALE_AFTER,
    claim_next_job,
    finish_and_claim,
    heartbeat,
    lost_claims,
    queue_depth,
    reap_stale_jobs,
    reconcile,
    register_worker,
    release_job,
    stop_worker,
)
from stratforge.ops.records import JobRecord

log = logging.getLogger("stratforge.worker")


def _retrying(action, *args, attempts: int = 5, **kwargs):
    """Run a queue write again after a transient database error (deadlock, lost
    connection); the writes are fenced, so running one twice is harmless."""
    for attempt in range(attempts):
        try:
            return action(*args, **kwargs)
        except OperationalError:
            if attempt == attempts - 1:
                raise
            log.warning("transient database error in %s; retrying", action.__name__,
                        exc_info=True)
            time.sleep(0.05 * (attempt + 1))
    return None


def new_worker_id() -> str:
    """``<hostname>-<pid>-<4 hex>``."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"


@dataclass
class WorkerStats:
    """What a worker did: jobs completed, failed, cancelled and handed back, and jobs whose
    claim it lost while it ran them (it stalled past the stale time; another claim has it)."""

    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    released: int = 0
    lost: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def total(self) -> int:
        """Jobs that ended on this worker."""
        return self.completed + self.failed + self.cancelled

    def add(self, kind: str) -> None:
        """Count one job of ``kind``."""
        with self.lock:
            setattr(self, kind, getattr(self, kind) + 1)


class Worker:
    """Runs queued jobs of ``types`` (all known types when None); see the module docstring."""

    def __init__(self, db: Database, *, types: Sequence[str] | None = None,
                 concurrency: int = 1, poll_interval: float = 0.2,
                 heartbeat_every: float = 5.0, cancel_poll: float = 0.5,
                 stale_after: float = DEFAULT_STALE_AFTER, worker_id: str | None = None,
                 max_jobs: int | None = None, exit_when_idle: bool = False) -> None:
        unknown = sorted(set(types or ()) - set(handler_types()))
        if unknown:
            raise StratforgeError(f"unknown job type(s) {', '.join(unknown)}; known: "
                                  f"{', '.join(handler_types())}")
        if concurrency < 1:
            raise StratforgeError(f"--concurrency must be at least 1, got {concurrency}")
        self.db = db
        self.types = list(types) if types else list(handler_types())
        self.concurrency = int(concurrency)
        self.poll_interval = poll_interval
        self.heartbeat_every = heartbeat_every
        self.cancel_poll = cancel_poll
        self.stale_after = stale_after
        self.worker_id = worker_id or new_worker_id()
        self.max_jobs = max_jobs
        self.exit_when_idle = exit_when_idle
        self.stats = WorkerStats()
        self._stop = threading.Event()
        self._running: dict[int, JobContext] = {}
        self._lock = threading.Lock()
        self._claimed = 0
        self._signalled = False  # set by SIGTERM/SIGINT; the main thread acts on it

    def _on_signal(self, signum: int, frame: object) -> None:
        """SIGTERM/SIGINT: ask the main thread to stop (async-signal-safe: no lock taken)."""
        self._signalled = True

    def request_stop(self) -> None:
        """Stop claiming; interrupt running handlers at their next progress report."""
        self._stop.set()
        with self._lock:
            for context in self._running.values():
                context.stopping.set()

    def _reserve(self) -> bool:
        """Take one slot of ``max_jobs`` (always True without a limit)."""
        with self._lock:
            if self._stop.is_set() or (self.max_jobs is not None
                                       and self._claimed >= self.max_jobs):
                return False
            self._claimed += 1
            return True

    def _unreserve(self) -> None:
        with self._lock:
            self._claimed -= 1

    def _next_job(self) -> JobRecord | None:
        if not self._reserve():
            return None
        job = claim_next_job(self.db, self.worker_id, self.types)
        if job is None:
            self._unreserve()
        return job

    def _run_one(self, job: JobRecord) -> tuple[str, dict | None, str | None] | None:
        """Run the job's handler; the outcome to record (status, result, error), or None
        when nothing is left to record (cancelled, handed back)."""
        operation = None
        if job.operation_id is not None:
            with self.db.write() as connection:
                mark_running(connection, job.operation_id, self.worker_id)
            operation = get_operation(self.db, job.operation_id)
            if operation.status != "running":  # cancelled between enqueue and claim
                self.stats.add("cancelled")
                return None
        context = JobContext(self.db, job, operation, self.worker_id)
        with self._lock:
            self._running[job.id] = context
            if self._stop.is_set():
                context.stopping.set()
        try:
            result = get_handler(job.type)(context)
        except OperationCancelledError:
            self.stats.add("cancelled")
            return None
        except ClaimLostError:
            log.warning("job %s: claim (attempt %s) lost while it ran; dropped", job.id,
                        job.attempts)
            self.stats.add("lost")
            return None
        except WorkerStoppingError:
            if _retrying(release_job, self.db, job, self.worker_id,
                         "worker shut down; resumes elsewhere"):
                self.stats.add("released")
            return None
        except Exception as exc:
            message = str(exc) if isinstance(exc, StratforgeError) else \
                f"{type(exc).__name__}: {exc}"
            log.error("job %s (%s) failed: %s\n%s", job.id, job.type, message,
                      traceback.format_exc())
            return "failed", None, message
        finally:
            with self._lock:
                self._running.pop(job.id, None)
        return "completed", result, None

    def _record(self, job: JobRecord, outcome: tuple[str, dict | None, str | None]
                ) -> JobRecord | None:
        """Write the outcome and, in the same transaction, claim the next job."""
        status, result, error = outcome
        claim = self._reserve()
        owned, following = _retrying(finish_and_claim, self.db, job, self.worker_id, status,
                                     result=result, error=error, types=self.types,
                                     claim=claim)
        if claim and following is None:
            self._unreserve()
        self.stats.add(status if owned else "cancelled")
        return following

    def _job_loop(self) -> None:
        job: JobRecord | None = None
        while not self._stop.is_set() or job is not None:
            if job is None:
                try:
                    job = self._next_job()
                except Exception:  # a database hiccup must not kill the worker
                    log.exception("claiming a job failed; retrying")
                    time.sleep(self.poll_interval)
                    continue
            if job is None:
                if self.max_jobs is not None and self._claimed >= self.max_jobs:
                    return
                if self.exit_when_idle and self._drained():
                    return
                self._stop.wait(self.poll_interval)
                continue
            current, job = job, None
            try:
                outcome = self._run_one(current)
                if outcome is not None:
                    job = self._record(current, outcome)
            except Exception:  # the job stays running; the reaper hands it back later
                log.exception("job %s: bookkeeping failed", current.id)

    def _drained(self) -> bool:
        """No job of this worker's types is queued or running anywhere, this worker's other
        slots included (a running agent cycle still queues its children; a dead worker's job
        comes back to the queue once the reaper sees its stale heartbeat)."""
        depth = queue_depth(self.db, self.types)
        return depth.get("queued", 0) == 0 and depth.get("running", 0) == 0

    def _monitor(self, done: threading.Event) -> None:
        last_beat = 0.0
        while not done.wait(self.cancel_poll):
            with self._lock:
                running = dict(self._running)
            try:
                ids = {c.job.operation_id: c for c in running.values() if c.job.operation_id}
                for op_id in cancel_requested(self.db, list(ids)):
                    ids[op_id].cancelled.set()
                if time.monotonic() - last_beat >= self.heartbeat_every:
                    last_beat = time.monotonic()
                    heartbeat(self.db, self.worker_id, list(running), list(ids),
                              jobs_done=self.stats.total)
                    for job_id in lost_claims(self.db, self.worker_id,
                                              [c.job for c in running.values()]):
                        running[job_id].lost.set()
                    reap_stale_jobs(self.db, self.stale_after)
            except Exception:
                log.exception("worker monitor failed; retrying")

    def run(self) -> WorkerStats:
        """Work until stopped (see the class docstring); returns what was done."""
        register_worker(self.db, self.worker_id, self.types, self.concurrency)
        reconcile(self.db)
        reap_stale_jobs(self.db, self.stale_after)
        previous = {}
        if threading.current_thread() is threading.main_thread():
            # the handler only sets a flag: taking a lock in it (Event.set, the running
            # jobs' lock) deadlocks when a second signal lands while the first handler holds
            # it (serve's death signal and its own SIGTERM often come together)
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, self._on_signal)
        done = threading.Event()
        monitor = threading.Thread(target=self._monitor, args=(done,), daemon=True,
                                   name="stratforge-worker-monitor")
        monitor.start()
        threads = [threading.Thread(target=self._job_loop, name=f"stratforge-job-{i}",
                                    daemon=True) for i in range(self.concurrency)]
        try:
            for thread in threads:
                thread.start()
            while any(t.is_alive() for t in threads):
                if self._signalled and not self._stop.is_set():
                    self.request_stop()
                for thread in threads:
                    thread.join(0.2)
        finally:
            done.set()
            monitor.join(2.0)
            stop_worker(self.db, self.worker_id, jobs_done=self.stats.total)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return self.stats
