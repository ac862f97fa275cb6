"""``make_executor``: the executor of a kind, checked settings; the one module that knows every
backend (the backends import only :mod:`stratforge.parallel.executors`)."""

from __future__ import annotations

import operator
import os

from stratforge.errors import ConfigError
from stratforge.parallel.executors import Executor, SerialExecutor

EXECUTOR_KINDS = ("serial", "local", "ray")


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
