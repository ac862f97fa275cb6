"""The ``ray`` executor: jobs as Ray tasks, on a local Ray instance or a cluster.

Ray is imported here only when a Ray executor is made, so that stratforge works (and its
workers stay light) without it.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any

from stratforge.errors import ConfigError
from stratforge.parallel import reaper
from stratforge.parallel.executors import PooledExecutor
from stratforge.parallel.jobs import run_job
from stratforge.parallel.threads import default_threads_per_worker


def import_ray() -> Any:
    """The ``ray`` module, or a ConfigError saying how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise ConfigError("Ray is not installed: pip install 'stratforge[ray]' "
                          "(or use the local executor)") from exc
    return ray


class RayExecutor(PooledExecutor):
    """Runs each job as a Ray task reserving one CPU.

    Without ``address`` it starts a local Ray instance with ``workers`` CPUs and shuts it down
    on close; a watcher process (:mod:`stratforge.parallel.reaper`) ends that instance's
    processes if this process dies without closing it (``kill -9``, out of memory).
    With ``address`` it connects to that cluster and leaves it running; a Ray
    already initialised in this process is reused the same way. At most twice the cluster's
    CPUs (or ``2 * workers`` locally) tasks are in flight.
    """

    kind = "ray"

    def __init__(self, workers: int, address: str | None = None,
                 threads_per_worker: int | None = None) -> None:
        self._ray = import_ray()
        self._owns_ray = False
        self._reaper = None
        if not self._ray.is_initialized():
            self._init_ray(workers, address)
        if not self._owns_ray:  # an existing cluster: its size sets the window
            workers = int(self._ray.cluster_resources().get("CPU", workers)) or workers
        self.workers = workers
        self.in_flight = 2 * workers
        # each task reserves one CPU, so on a cluster one thread per task fills it exactly
        default = default_threads_per_worker(workers) if self._owns_ray else 1
        self.threads_per_worker = threads_per_worker or default
        self._task = self._ray.remote(num_cpus=1)(run_job)

    def _init_ray(self, workers: int, address: str | None) -> None:
        ray = self._ray
        try:
            if address is not None:
                ray.init(address=address, log_to_driver=False, configure_logging=False)
                return
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False,
                     configure_logging=False,
                     runtime_env={"env_vars": {"PYTHONPATH": _driver_python_path()}})
        except Exception as exc:
            where = f"connect to the Ray cluster at {address!r}" if address else "start Ray"
            raise ConfigError(f"could not {where}: {type(exc).__name__}: {exc}") from exc
        self._owns_ray = True
        self._reaper = reaper.start()

    def _prepare(self, fn: Callable[[Any], Any]) -> Any:
        return self._ray.put(fn)  # pickled once per imap_unordered, not once per job

    def _submit(self, prepared: Any, job: Any) -> Any:
        return self._task.remote(prepared, job, self.threads_per_worker)

    def _wait_any(self, handles: list[Any]) -> Iterable[Any]:
        ready, _ = self._ray.wait(handles, num_returns=1)
        return ready

    def _outcome(self, handle: Any) -> tuple[bool, Any]:
        return self._ray.get(handle)

    def _cancel(self, handles: list[Any]) -> None:
        for ref in handles:
            with contextlib.suppress(Exception):  # already finished or gone: nothing to do
                self._ray.cancel(ref)

    def _shutdown(self, abort: bool) -> None:
        if self._owns_ray and self._ray.is_initialized():
            self._ray.shutdown()
        reaper.stop(self._reaper)


def _driver_python_path() -> str:
    """This process's import path as PYTHONPATH for local Ray workers.

    Ray workers start from the current directory only; giving them the caller's ``sys.path``
    lets them import job functions exactly as ``spawn`` workers do (from a test folder, a
    script's folder or a source checkout).
    """
    entries = (os.getcwd() if entry == "" else entry for entry in sys.path)
    return os.pathsep.join(dict.fromkeys(entry for entry in entries if os.path.isdir(entry)))
