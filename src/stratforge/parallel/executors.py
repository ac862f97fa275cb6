"""The executor interface, the serial executor, the shared job window and ``make_executor``.

An executor runs ``fn(job)`` for every job of a sequence and yields ``(index, result)`` pairs
as jobs finish. Backends: ``serial`` (in the calling process), ``local`` (worker processes on
this machine, :mod:`stratforge.parallel.processes`) and ``ray`` (a local or remote Ray
cluster, :mod:`stratforge.parallel.ray_executor`).
"""

from __future__ import annotations

import operator
import os
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Self, TypeVar

from stratforge.errors import ConfigError
from stratforge.parallel.jobs import JobError, JobFailure, short_repr

J = TypeVar("J")
R = TypeVar("R")

EXECUTOR_KINDS = ("serial", "local", "ray")


class Executor(ABC):
    """Runs jobs and yields their results as they finish; a context manager.

    Attributes: ``kind`` (one of :data:`EXECUTOR_KINDS`), ``workers`` (how many jobs run at
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


def make_executor(kind: str, workers: int | None = None, address: str | None = None,
                  threads_per_worker: int | None = None) -> Executor:
    """The executor of ``kind`` (``"serial"``, ``"local"`` or ``"ray"``).

    ``workers``: jobs run at once; ``None`` means one per CPU core (``os.cpu_count()``).
    ``"local"`` with one worker runs in the calling process (a :class:`SerialExecutor`,
    ``kind == "serial"``): a process pool of one only adds start-up and pickling costs.
    ``address``: a Ray cluster to connect to (``ray`` only); without it Ray starts a local
    instance with ``workers`` CPUs. ``threads_per_worker``: thread limit inside each worker
    (numba, OpenMP, BLAS); default ``max(1, cpu_count // workers)``, 1 on a Ray cluster.

    Raises :class:`~stratforge.errors.ConfigError` for an unknown kind, ``workers`` or
    ``threads_per_worker`` below 1, an address with a kind other than ``ray``, or ``ray``
    when Ray is not installed.
    """
    kind = _check_kind(kind)
    if workers is None:
        workers = os.cpu_count() or 1
    workers = _check_count("workers", workers)
    if threads_per_worker is not None:
        threads_per_worker = _check_count("threads_per_worker", threads_per_worker)
    if address is not None and kind != "ray":
        raise ConfigError(f"a Ray address ({address!r}) needs the ray executor, not {kind!r}; "
                          "use --executor ray or drop --ray-address")
    if kind == "serial" or (kind == "local" and workers == 1):
        return SerialExecutor()
    if kind == "local":
        from stratforge.parallel.processes import ProcessExecutor

        return ProcessExecutor(workers, threads_per_worker)
    from stratforge.parallel.ray_executor import RayExecutor

    return RayExecutor(workers, address, threads_per_worker)


def _check_kind(kind: str) -> str:
    name = kind.strip().lower() if isinstance(kind, str) else kind
    if name not in EXECUTOR_KINDS:
        raise ConfigError(f"unknown executor {kind!r}; choose one of {', '.join(EXECUTOR_KINDS)}")
    return name


def _check_count(name: str, value: object) -> int:
    try:
        count = operator.index(value)  # int or numpy integer, not float or bool
    except TypeError:
        count = None
    if count is None or isinstance(value, bool) or count < 1:
        raise ConfigError(f"{name} must be a whole number of at least 1, got {value!r}")
    return count
