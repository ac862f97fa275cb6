"""A process that starts an executor of the kind in argv[1] with two long jobs running, then
prints ``started`` and waits: tests/test_orphans.py kills it with SIGKILL."""

import sys

import parallel_jobs
from stratforge.parallel import make_executor

if __name__ == "__main__":
    with make_executor(sys.argv[1], workers=2, threads_per_worker=1) as ex:
        jobs = ex.imap_unordered(parallel_jobs.sleep_then_return, [600.0] * 4)
        print("started", flush=True)
        for _ in jobs:
            pass
