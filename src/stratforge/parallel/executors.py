"""The executor interface, the serial executor and the shared job window of the pooled backends.

An executor runs ``fn(job)`` for every job of a sequence and yields ``(index, result)`` pairs
as jobs finish. Backends: ``serial`` (in the calling process), ``local`` (worker processes on
this machine, :mod:`stratforge.parallel.processes`) and ``ray`` (a local or remote Ray
cluster, :mod:`stratforge.parallel.ray_executor`). ``make_executor`` (which picks one) lives
in :mod:`stratforge.parallel.factory`, so the backends and the factory never import each other
in a circle.
"""

from __future__ import annotations

import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Self, TypeVar

from stratforge.parallel.jobs import JobError, JobFailure, short_repr

J = TypeVar("J")
R = TypeVar("R")

class Executor(ABC):
    """Runs jobs and yields their results as they finish; a context manager.

    Attributes: ``kind`` (``serial``, ``local`` or ``ray``), ``workers`` (how many jobs run at
    once) and ``threads_per_worker`` (the thread limit inside each worker; ``None`` when jobs
    run in the calling process with its own settings).

    Results must not depend on which worker ran a job, nor on the order jobs finish in: seed
    every random choice from the job itself and key results by the yielded index.
    """

    kind: str = ""
    workers: int = 1
    threads_per_worker: int | None = None
    _closed: bool = False

    @abstractmethod
    def imap_unordered(self, fn: Callable[[J], R],
                       jobs: Iterable[J]) -> Iterator[tuple[int, R]]:
        """Run ``fn(job)`` for every job; yield ``(position in jobs, result)`` as jobs finish.

        ``fn`` must be a module-level function and jobs and results must be picklable
        (worker processes import ``fn`` by name). Jobs are taken from ``jobs`` lazily, a
        bounded number at a time, so a very long job list never builds a huge queue.

        Raises :class:`JobError` (naming the job's index, a short repr of the job and the
        original exception) as soon as a job fails; jobs still waiting are cancelled first.
        """

    def close(self) -> None:
        """Release the workers (waits for running jobs); safe to call more than once."""
        self._close(abort=False)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> None:
        # On Ctrl-C, stop running jobs instead of waiting for them: closing must not hang.
        abort = exc_type is not None and issubclass(exc_type, KeyboardInterrupt)
        self._close(abort=abort)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} kind={self.kind!r} workers={self.workers}>"

    def _close(self, abort: bool) -> None:
        if self._closed:
            return
        self._closed = True
        self._shutdown(abort)

    def _shutdown(self, abort: bool) -> None:  # noqa: B027 - most backends hold nothing
        """Release backend resources; ``abort`` means stop running jobs now."""

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"this {self.kind} executor is closed; make a new one")


class SerialExecutor(Executor):
    """Runs each job in the calling process, in order (debugging, tiny job lists, 1 worker)."""

    kind = "serial"

    def imap_unordered(self, fn: Callable[[J], R],
                       jobs: Iterable[J]) -> Iterator[tuple[int, R]]:
        """Run ``fn(job)`` for each job in order here; see :meth:`Executor.imap_unordered`."""
        self._check_open()
        return self._results(fn, jobs)

    @staticmethod
    def _results(fn: Callable[[J], R], jobs: Iterable[J]) -> Iterator[tuple[int, R]]:
        for index, job in enumerate(jobs):
            try:
                result = fn(job)
            except Exception as exc:
                raise JobError(index, short_repr(job), type(exc).__name__, str(exc),
                               traceback.format_exc()) from exc
            yield index, result


class PooledExecutor(Executor):
    """Base of the backends that run jobs in other processes.

    Keeps at most ``in_flight`` jobs submitted at a time, waits for any one to finish,
    yields it and tops the window up again. Subclasses say how to submit, wait, fetch a
    result and cancel.
    """

    in_flight: int = 2

    def imap_unordered(self, fn: Callable[[J], R],
                       jobs: Iterable[J]) -> Iterator[tuple[int, R]]:
        """Run the jobs in the workers; see :meth:`Executor.imap_unordered`."""
        self._check_open()
        return self._results(fn, jobs)

    def _results(self, fn: Callable[[J], R], jobs: Iterable[J]) -> Iterator[tuple[int, R]]:
        prepared = self._prepare(fn)
        source = enumerate(jobs)
        pending: dict[Any, tuple[int, J]] = {}
        try:
            self._top_up(pending, source, prepared)
            while pending:
                for handle in self._wait_any(list(pending)):
                    index, job = pending.pop(handle)
                    yield index, self._unwrap(handle, index, job)
                self._top_up(pending, source, prepared)
        finally:  # a failure, or the caller stopped early: drop what has not run yet
            if pending:
                self._cancel(list(pending))

    def _top_up(self, pending: dict[Any, tuple[int, J]], source: Iterator[tuple[int, J]],
                prepared: Any) -> None:
        while len(pending) < self.in_flight:
            item = next(source, None)
            if item is None:
                return
            pending[self._submit(prepared, item[1])] = item

    def _unwrap(self, handle: Any, index: int, job: J) -> Any:
        try:
            ok, value = self._outcome(handle)
        except Exception as exc:  # the backend failed: worker died, result not picklable...
            ok, value = False, JobFailure.from_exception(exc)
        if not ok:
            raise value.to_error(index, job)
        return value

    def _prepare(self, fn: Callable[[J], R]) -> Any:
        """What ``_submit`` receives as the function (the function itself by default)."""
        return fn

    @abstractmethod
    def _submit(self, prepared: Any, job: J) -> Any:
        """Start one job; return a hashable handle."""

    @abstractmethod
    def _wait_any(self, handles: list[Any]) -> Iterable[Any]:
        """Block until at least one handle is done; return the done ones."""

    @abstractmethod
    def _outcome(self, handle: Any) -> tuple[bool, Any]:
        """The ``(ok, value)`` pair :func:`stratforge.parallel.jobs.run_job` returned."""

    @abstractmethod
    def _cancel(self, handles: list[Any]) -> None:
        """Cancel jobs that are queued or running; never raises."""
