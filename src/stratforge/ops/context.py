"""What a job handler gets: its job and operation, a throttled progress callback that also
delivers cancellation and shutdown, and the database, with writes fenced by the job's claim."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from stratforge.errors import StratforgeError
from stratforge.ops.db import Database
from stratforge.ops.operations import get_operation, merge_metadata, report_progress
from stratforge.ops.queue import claim_state
from stratforge.ops.records import JobRecord, OperationRecord

PROGRESS_INTERVAL = 1.0
"""Seconds between two progress writes of one operation (the first is always written)."""


class OperationCancelledError(StratforgeError):
    """Raised inside a handler (at a progress report) once its operation was cancelled."""


class WorkerStoppingError(StratforgeError):
    """Raised inside a handler (at a progress report) when its worker is shutting down: the
    job goes back to the queue and resumes from its checkpoints elsewhere."""


class ClaimLostError(StratforgeError):
    """Raised inside a handler once its worker no longer holds the job's claim (the reaper
    gave the job to another claim while this worker was stalled): nothing more is written."""


@dataclass
class JobContext:
    """One running job: ``progress`` is the progress protocol's callback for it.

    Side effects in the database go through :meth:`write`, which checks, inside the same
    transaction, that this worker still holds the job's claim (its attempt); ``progress``
    and ``remember`` use it too.
    """

    db: Database
    job: JobRecord
    operation: OperationRecord | None
    worker_id: str
    cancelled: threading.Event = field(default_factory=threading.Event)
    stopping: threading.Event = field(default_factory=threading.Event)
    lost: threading.Event = field(default_factory=threading.Event)
    phases: Sequence[str] | None = None
    _last_write: float = field(default=-1e18, repr=False)

    @property
    def parameters(self) -> dict[str, Any]:
        """The operation's ``metadata.parameters`` (else the job's payload)."""
        return self.operation.parameters if self.operation else dict(self.job.payload)

    def check(self) -> None:
        """Raise if the claim was lost, the operation was cancelled or the worker is
        stopping."""
        if self.cancelled.is_set():
            raise OperationCancelledError(f"operation {self.job.operation_id} was cancelled")
        if self.lost.is_set():
            raise ClaimLostError(f"job {self.job.id}: attempt {self.job.attempts} is no "
                                 "longer this worker's")
        if self.stopping.is_set():
            raise WorkerStoppingError("the worker is shutting down")

    @contextlib.contextmanager
    def write(self, *, ending: bool = False) -> Iterator[Connection]:
        """A write transaction that first checks this worker still holds the job's claim;
        raises :class:`ClaimLostError` (or, for a cancelled job,
        :class:`OperationCancelledError`), writing nothing, when it does not. ``ending``: the
        handler records how its cancelled job ended; the claim of a cancelled job is still
        this worker's, so that write goes through (a lost claim never does)."""
        with self.db.write() as connection:
            state = claim_state(connection, self.job, self.worker_id)
            if state == "cancelled" and ending:
                yield connection
                return
            if state != "held":
                (self.cancelled if state == "cancelled" else self.lost).set()
                self.check()
            yield connection

    def _percent(self, phase: str, done: int, total: int) -> float:
        fraction = min(1.0, done / total) if total > 0 else 0.0
        if self.phases and phase in self.phases:
            return 100.0 * (list(self.phases).index(phase) + fraction) / len(self.phases)
        return 100.0 * fraction

    def progress(self, phase: str, done: int, total: int, message: str = "") -> None:
        """Record progress (at most once per ``PROGRESS_INTERVAL`` per operation), then stop
        the handler if its operation was cancelled or the worker is stopping."""
        self.check()
        if self.operation is None:
            return
        now = time.monotonic()
        if now - self._last_write < PROGRESS_INTERVAL:
            return
        self._last_write = now
        with self.write() as connection:
            report_progress(self.db, self.operation.id,
                            percent=self._percent(phase, done, total), step=phase, done=done,
                            total=total, message=message, connection=connection)

    def sleep(self, seconds: float) -> None:
        """Wait, checking for cancellation and shutdown every 50 ms."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.check()
            time.sleep(min(0.05, max(0.0, end - time.monotonic())))
        self.check()

    def remember(self, *, ending: bool = False, **values: Any) -> None:
        """Add keys to the operation's metadata (a resumed job reads them back); ``ending``
        as for :meth:`write`."""
        if self.operation is not None:
            with self.write(ending=ending) as connection:
                self.operation = merge_metadata(self.db, self.operation.id, values,
                                                connection=connection)

    def refresh(self) -> OperationRecord | None:
        """Re-read the operation."""
        if self.operation is not None:
            self.operation = get_operation(self.db, self.operation.id)
        return self.operation
