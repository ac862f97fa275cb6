"""Job-claim throughput of the queue: empty (``noop``) jobs drained by worker processes.

Issue target: at least 500 jobs per second on PostgreSQL with 4 workers.

    python benchmarks/bench_queue.py [--jobs 20000] [--workers 4]
                                     [--url postgresql://postgres@127.0.0.1:5432/test]

Each job is claimed (one UPDATE ... FOR UPDATE SKIP LOCKED ... RETURNING) and finished (one
fenced UPDATE) by ``stratforge worker`` processes, as in production. The jobs go into a new
schema of the server (dropped at the end). The rate is measured from the jobs' own
timestamps (first claim to last finish), so the workers' start-up is not counted; the
wall time including start-up is printed too.
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import time


def main() -> None:
    """Queue the jobs, run the workers, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()

    import psycopg
    from sqlalchemy import func, select

    from stratforge.ops.db import Database
    from stratforge.ops.models import Job
    from stratforge.ops.queue import enqueue_many

    jobs = Job.__table__
    schema = f"sf_bench_{secrets.token_hex(4)}"
    with psycopg.connect(args.url, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    url = f"{args.url}?options=-csearch_path%3D{schema}"
    try:
        db = Database(url)
        for start in range(0, args.jobs, 5000):
            enqueue_many(db, "noop", [{}] * min(5000, args.jobs - start))
        env = {**os.environ, "STRATFORGE_DATABASE_URL": url}
        started = time.perf_counter()
        workers = [subprocess.Popen([sys.executable, "-m", "stratforge.cli.main", "worker",
                                     "--exit-when-idle", "--types", "noop", "--poll", "0.01"],
                                    env=env, stdout=subprocess.DEVNULL)
                   for _ in range(args.workers)]
        for worker in workers:
            worker.wait()
        wall = time.perf_counter() - started
        with db.read() as connection:
            first, last, done = connection.execute(select(
                func.min(jobs.c.started_at), func.max(jobs.c.finished_at),
                func.count().filter(jobs.c.status == "completed"))).one()
        seconds = (last - first).total_seconds()
        print(f"{done:,} of {args.jobs:,} noop jobs completed by {args.workers} workers on "
              f"PostgreSQL in {seconds:.2f} s (first claim to last finish) = "
              f"{done / seconds:,.0f} jobs/s; wall time with worker start-up {wall:.1f} s")
        db.dispose()
    finally:
        with psycopg.connect(args.url, autocommit=True) as connection:
            connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


if __name__ == "__main__":
    main()
