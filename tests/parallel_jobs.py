"""Job functions for tests/test_parallel.py.

They live in their own importable module because worker processes (forkserver, spawn, Ray)
import a job function by module and name; pytest puts tests/ on sys.path, which the workers
inherit.
"""

from __future__ import annotations

import os
import time

import numba
import numpy as np
from threadpoolctl import threadpool_info


@numba.njit(parallel=True, cache=True)  # worker processes load what the first one compiled
def _sum_of_squares_kernel(n):
    total = 0
    for i in numba.prange(n):
        total += i * i
    return total


def sum_of_squares(n: int) -> int:
    """A parallel (prange) numba kernel: the no-fork rule is what lets workers run it."""
    return int(_sum_of_squares_kernel(n))


def seeded_draws(job: tuple[int, int]) -> tuple[float, ...]:
    """Deterministic given the job: the generator is seeded from the job alone."""
    seed, size = job
    rng = np.random.default_rng([seed, size])
    return tuple(float(x) for x in rng.normal(size=size).cumsum())


def thread_counts(_job: object) -> tuple[int, list[int]]:
    """numba's thread count and the BLAS pools' thread counts seen inside the worker."""
    blas = [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]
    return numba.get_num_threads(), blas


def fail_on_negative(x: int) -> int:
    if x < 0:
        raise ValueError(f"negative job {x}")
    return x


def process_id(_job: object) -> int:
    return os.getpid()


def sleep_then_return(seconds: float) -> float:
    time.sleep(seconds)
    return seconds
