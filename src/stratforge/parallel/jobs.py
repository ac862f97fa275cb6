"""What runs around one job inside a worker, and how a failed job is reported."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stratforge.errors import StratforgeError
from stratforge.parallel.threads import limit_threads

JOB_REPR_LIMIT = 200


class JobError(StratforgeError):
    """A job raised an exception (or its worker died) while an executor ran it.

    The message names the job's position in the job list, a short repr of the job, and the
    original exception's type and message. ``remote_traceback`` holds the traceback text from
    the process that ran the job. The other attributes (``index``, ``job_repr``,
    ``exc_type``, ``exc_message``) let callers build their own report.
    """

    def __init__(self, index: int, job_repr: str, exc_type: str, exc_message: str,
                 remote_traceback: str = "") -> None:
        self.index = index
        self.job_repr = job_repr
        self.exc_type = exc_type
        self.exc_message = exc_message
        self.remote_traceback = remote_traceback
        cause = f"{exc_type}: {exc_message}" if exc_message else exc_type
        super().__init__(f"job {index} ({job_repr}) failed with {cause}")

    def __reduce__(self):
        return (type(self), (self.index, self.job_repr, self.exc_type, self.exc_message,
                             self.remote_traceback))


def short_repr(job: Any, limit: int = JOB_REPR_LIMIT) -> str:
    """``repr(job)`` cut to ``limit`` characters (a job can be a large array or table)."""
    try:
        text = repr(job)
    except Exception:
        text = f"<{type(job).__name__} object>"
    return text if len(text) <= limit else text[:limit - 3] + "..."


@dataclass(frozen=True)
class JobFailure:
    """A job's exception reduced to text, so that it always travels back from a worker."""

    exc_type: str
    message: str
    traceback: str

    @classmethod
    def from_exception(cls, exc: BaseException) -> JobFailure:
        """The failure describing ``exc``, with its full traceback (and chained causes)."""
        return cls(type(exc).__name__, str(exc), "".join(traceback.format_exception(exc)))

    def to_error(self, index: int, job: Any) -> JobError:
        """The :class:`JobError` to raise in the caller for the job at ``index``."""
        return JobError(index, short_repr(job), self.exc_type, self.message, self.traceback)


def run_job(fn: Callable[[Any], Any], job: Any,
            threads: int | None = None) -> tuple[bool, Any]:
    """Run ``fn(job)`` in a worker: ``(True, result)``, or ``(False, JobFailure)`` if it raised.

    ``threads`` (when given) limits the worker's threads first. Exceptions come back as
    :class:`JobFailure` text rather than as objects, so an exception that cannot be pickled
    still reaches the caller intact.
    """
    if threads is not None:
        limit_threads(threads)
    try:
        return True, fn(job)
    except Exception as exc:
        return False, JobFailure.from_exception(exc)
