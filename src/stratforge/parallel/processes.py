"""The ``local`` executor: a pool of worker processes on this machine."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from stratforge.parallel.executors import PooledExecutor
from stratforge.parallel.jobs import run_job
from stratforge.parallel.lifeline import follow_owner, mark_owner
from stratforge.parallel.threads import default_threads_per_worker, limit_threads

FORKSERVER_HOOK = "stratforge.parallel.forkserver_hook"
"""Named, never imported here: importing it is what ties a fork server to its owner."""


def start_method() -> str:
    """How worker processes start: ``forkserver`` where available, else ``spawn``; never fork.

    numba's GNU OpenMP and workqueue threading layers abort in a forked child of a process
    that has already run a parallel (``prange``) kernel, and the research pipeline runs such
    kernels before it fans work out. forkserver forks workers from a server process that was
    itself started fresh (a new interpreter, not a fork) and never runs a kernel; spawn
    starts each worker as a new interpreter.
    """
    methods = multiprocessing.get_all_start_methods()
    return "forkserver" if "forkserver" in methods else "spawn"


def _worker_context() -> multiprocessing.context.BaseContext:
    """The multiprocessing context for workers (see :func:`start_method`).

    The fork server preloads this package (numpy, numba, threadpoolctl): it never runs a
    kernel, so forking from it is safe, and each worker then starts in milliseconds instead
    of importing numba again. It also preloads :mod:`stratforge.parallel.forkserver_hook`,
    which makes it die with its owner. The setting takes effect when the fork server starts.
    """
    context = multiprocessing.get_context(start_method())
    if context.get_start_method() == "forkserver":
        context.set_forkserver_preload(["__main__", run_job.__module__, FORKSERVER_HOOK])
    return context


def start_worker(owner: int, threads: int) -> None:
    """A worker's initializer: die with ``owner`` (see :mod:`stratforge.parallel.lifeline`)
    and limit its threads."""
    follow_owner(owner)
    limit_threads(threads)


class ProcessExecutor(PooledExecutor):
    """Runs jobs in ``workers`` processes (``concurrent.futures.ProcessPoolExecutor``).

    Workers start with :func:`start_method` and limit their threads to
    ``threads_per_worker`` (numba, OpenMP, BLAS) so that together they use the machine's
    cores once. At most ``2 * workers`` jobs are submitted at a time. The workers, the fork
    server and the resource tracker end when this process ends, even by ``kill -9``
    (:mod:`stratforge.parallel.lifeline`).
    """

    kind = "local"

    def __init__(self, workers: int, threads_per_worker: int | None = None) -> None:
        self.workers = workers
        self.threads_per_worker = threads_per_worker or default_threads_per_worker(workers)
        self.in_flight = 2 * workers
        self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=_worker_context(),
                                         initializer=start_worker,
                                         initargs=(mark_owner(), self.threads_per_worker))

    def _submit(self, prepared: Callable[[Any], Any], job: Any) -> Future:
        return self._pool.submit(run_job, prepared, job, self.threads_per_worker)

    def _wait_any(self, handles: list[Future]) -> Iterable[Future]:
        done, _ = wait(handles, return_when=FIRST_COMPLETED)
        return done

    def _outcome(self, handle: Future) -> tuple[bool, Any]:
        return handle.result()

    def _cancel(self, handles: list[Future]) -> None:
        for future in handles:
            future.cancel()  # queued ones only; a running job finishes, its result is dropped

    def _shutdown(self, abort: bool) -> None:
        if abort:
            self._terminate_workers()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _terminate_workers(self) -> None:
        """Stop running jobs now (Ctrl-C), so the shutdown that follows does not wait."""
        terminate = getattr(self._pool, "terminate_workers", None)  # Python 3.14+
        if terminate is not None:
            terminate()
            return
        for process in list((getattr(self._pool, "_processes", None) or {}).values()):
            if process.is_alive():
                process.terminate()
