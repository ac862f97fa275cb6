"""Per-worker thread limits, so that N workers with M threads each never ask for more than the
machine's cores (numba's ``prange`` pool, OpenMP and BLAS all start one thread per core by
default, which would run ``workers x cores`` threads)."""

from __future__ import annotations

import contextlib
import os

import numba
from threadpoolctl import threadpool_limits

#: Read by OpenMP and BLAS libraries when they load; set in a worker so that libraries a job
#: imports later start with the same limit.
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                   "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")

_native_limit: int | None = None  # what limit_threads last applied to native pools here


def default_threads_per_worker(workers: int) -> int:
    """Threads each of ``workers`` workers may use: an equal share of the cores, at least 1."""
    return max(1, (os.cpu_count() or 1) // workers)


def limit_threads(threads: int) -> None:
    """Limit this process (a worker) to ``threads`` threads in numba, OpenMP and BLAS.

    Cheap to call before every job: the environment and the native pools (through
    threadpoolctl) are only touched when the limit changes; numba's thread count is set every
    time because numba keeps it per calling thread. Never raises: a limit that cannot be
    applied costs speed, not correctness.
    """
    global _native_limit
    if _native_limit != threads:
        for name in THREAD_ENV_VARS:
            os.environ[name] = str(threads)
        # an exotic native library may refuse; the environment variables still hold
        with contextlib.suppress(Exception):
            threadpool_limits(limits=threads)
        _native_limit = threads
    _set_numba_threads(threads)


def _set_numba_threads(threads: int) -> None:
    """``numba.set_num_threads``, capped at the threads numba started with (NUMBA_NUM_THREADS)."""
    try:
        numba.set_num_threads(threads)
    except ValueError:  # more than numba has: use all it has
        numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
