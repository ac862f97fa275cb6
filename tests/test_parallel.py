"""Executors: every kind runs every job once, gives the same results, limits worker threads,
reports failures as JobError and closes without hanging."""

from __future__ import annotations

import os
import pickle
import sys
import time
from collections.abc import Sequence

import numba
import pytest

import parallel_jobs
from stratforge.errors import ConfigError
from stratforge.parallel import EXECUTOR_KINDS, JobError, make_executor

KINDS = ("serial", "local", "ray")


def _unavailable(reason: str) -> None:
    """Skip, unless STRATFORGE_REQUIRE_SERVICES=1 asks for every backend to be tested."""
    if os.environ.get("STRATFORGE_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (STRATFORGE_REQUIRE_SERVICES=1 forbids skipping)")
    pytest.skip(reason)


@numba.njit(parallel=True)
def _parent_kernel(n):
    total = 0.0
    for i in numba.prange(n):
        total += i
    return total


@pytest.fixture(scope="module")
def local_executor():
    """Two worker processes, started after this process ran a parallel numba kernel (with
    fork, numba's OpenMP layer would abort the workers)."""
    assert _parent_kernel(1000) == 499500.0
    with make_executor("local", workers=2, threads_per_worker=1) as ex:
        yield ex


@pytest.fixture(scope="module")
def ray_executor():
    """One local Ray instance (2 CPUs) for the whole module, owned by the executor."""
    try:
        import ray
    except ImportError as exc:
        _unavailable(f"ray is not installed ({exc}); pip install 'stratforge[ray]'")
    if ray.is_initialized():
        ray.shutdown()
    ex = make_executor("ray", workers=2, threads_per_worker=1)
    yield ex
    ex.close()
    assert not ray.is_initialized(), "the executor that started Ray must shut it down"


@pytest.fixture(params=KINDS)
def executor(request):
    if request.param == "serial":
        with make_executor("serial") as ex:
            yield ex
    else:
        yield request.getfixturevalue(f"{request.param}_executor")


def _by_index(pairs, n):
    pairs = list(pairs)
    indices = [index for index, _ in pairs]
    assert sorted(indices) == list(range(n)), "each index exactly once"
    return [result for _, result in sorted(pairs)]


def test_the_kinds_are_the_documented_ones():
    assert EXECUTOR_KINDS == ("serial", "local", "ray")


def test_every_job_runs_once_with_the_right_result(executor):
    jobs = [1000 + 37 * i for i in range(12)]
    results = _by_index(executor.imap_unordered(parallel_jobs.sum_of_squares, jobs), len(jobs))
    assert results == [sum(i * i for i in range(n)) for n in jobs]


def test_all_kinds_give_identical_seeded_results(local_executor, ray_executor):
    jobs = [(seed, 5 + seed % 4) for seed in range(10)]
    per_kind = {}
    for ex in (make_executor("serial"), local_executor, ray_executor):
        per_kind[ex.kind] = _by_index(ex.imap_unordered(parallel_jobs.seeded_draws, jobs),
                                      len(jobs))
    assert per_kind["serial"] == per_kind["local"] == per_kind["ray"]
    assert len(set(per_kind["serial"])) == len(jobs)  # the jobs really differ


@pytest.mark.parametrize("kind", ["local", "ray"])
def test_workers_run_with_the_thread_limit(kind, request):
    ex = request.getfixturevalue(f"{kind}_executor")
    parent_threads = numba.get_num_threads()
    results = _by_index(ex.imap_unordered(parallel_jobs.thread_counts, range(6)), 6)
    assert ex.threads_per_worker == 1
    for numba_threads, blas_threads in results:
        assert numba_threads == 1
        assert all(count == 1 for count in blas_threads)
    assert numba.get_num_threads() == parent_threads  # the caller is left alone


def test_default_thread_share_divides_the_cores():
    with make_executor("local", workers=2) as ex:  # no job: no process is started
        assert ex.threads_per_worker == max(1, (os.cpu_count() or 1) // 2)
        assert (ex.kind, ex.workers) == ("local", 2)


def test_local_jobs_run_in_other_processes(local_executor):
    pids = _by_index(local_executor.imap_unordered(parallel_jobs.process_id, range(4)), 4)
    assert os.getpid() not in pids


def test_local_with_one_worker_runs_in_this_process():
    with make_executor("local", workers=1) as ex:
        assert ex.kind == "serial"
        assert list(ex.imap_unordered(parallel_jobs.process_id, [None])) == [(0, os.getpid())]


def test_a_failing_job_raises_job_error(executor):
    with pytest.raises(JobError) as info:
        list(executor.imap_unordered(parallel_jobs.fail_on_negative, [1, 2, -3, 4]))
    error = info.value
    assert error.index == 2
    assert "job 2 (-3)" in str(error)
    assert "ValueError: negative job -3" in str(error)
    assert "fail_on_negative" in error.remote_traceback
    # the executor stays usable after a failure
    assert _by_index(executor.imap_unordered(parallel_jobs.fail_on_negative, [5, 6]), 2) == [5, 6]


def test_job_error_truncates_a_long_job_and_pickles():
    with pytest.raises(JobError) as info:
        list(make_executor("serial").imap_unordered(parallel_jobs.fail_on_negative, ["x" * 999]))
    error = info.value
    assert error.job_repr.endswith("...") and len(error.job_repr) == 200
    assert error.exc_type == "TypeError"
    copy = pickle.loads(pickle.dumps(error))
    assert str(copy) == str(error) and copy.remote_traceback == error.remote_traceback


class CountingJobs(Sequence):
    """A huge job list that records how far it has been read."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.read = 0

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index):
        if isinstance(index, slice) or not 0 <= index < self.size:
            raise IndexError(index)
        self.read = max(self.read, index + 1)
        return index


@pytest.mark.parametrize("kind", ["local", "ray"])
def test_jobs_are_submitted_lazily(kind, request):
    ex = request.getfixturevalue(f"{kind}_executor")
    jobs = CountingJobs(10**9)
    results = ex.imap_unordered(parallel_jobs.fail_on_negative, jobs)
    next(results)
    results.close()
    assert jobs.read <= 2 * ex.workers


def test_ctrl_c_inside_the_block_does_not_wait_for_running_jobs():
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt), make_executor("local", workers=2) as ex:
        for _ in ex.imap_unordered(parallel_jobs.sleep_then_return, [0.0, 120.0, 120.0]):
            raise KeyboardInterrupt
    assert time.monotonic() - start < 30
    ex.close()  # idempotent


def test_ray_reuses_a_running_instance_and_leaves_it_running(ray_executor):
    import ray

    with make_executor("ray", workers=7) as ex:
        assert ex.workers == 2  # the running instance's CPUs, not the argument
        assert list(ex.imap_unordered(parallel_jobs.fail_on_negative, [3])) == [(0, 3)]
    assert ray.is_initialized()


@pytest.mark.parametrize("kwargs, words", [
    ({"kind": "threads"}, "serial, local, ray"),
    ({"kind": "local", "workers": 0}, "workers"),
    ({"kind": "local", "workers": 2.5}, "workers"),
    ({"kind": "local", "threads_per_worker": 0}, "threads_per_worker"),
    ({"kind": "local", "address": "ray://head:10001"}, "ray"),
    ({"kind": "serial", "address": "auto"}, "ray"),
])
def test_bad_settings_raise_config_error(kwargs, words):
    with pytest.raises(ConfigError, match=words):
        make_executor(**kwargs)


def test_missing_ray_raises_config_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ConfigError, match=r"pip install 'stratforge\[ray\]'"):
        make_executor("ray", workers=2)


def test_a_closed_executor_refuses_work():
    ex = make_executor("serial")
    ex.close()
    with pytest.raises(RuntimeError, match="closed"):
        ex.imap_unordered(parallel_jobs.fail_on_negative, [1])
