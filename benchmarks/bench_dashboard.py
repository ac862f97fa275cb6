"""Time to a rendered overview with 1,000 operations in the database.

Inserts ``--operations`` operations (a mix of statuses, a tenth of them active, with progress)
into a temporary home's SQLite database, starts ``stratforge serve`` (no worker, so nothing
changes them) on a free loopback port, and loads the overview ``--loads`` times in headless
Debian chromium (a fresh browser context each time, so nothing is cached but what a first
visit gets). For each load it prints the time from navigation start to the page's
``rendered:overview`` mark (every API call answered and the DOM built) and the time until
Playwright sees the page ready; then the median and the slowest.

    python benchmarks/bench_dashboard.py [--operations 1000] [--loads 7] [--token]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from sqlalchemy import update

from dashboard_helpers import Console, chromium, serve
from stratforge.ops.db import Database
from stratforge.ops.models import Operation
from stratforge.ops.operations import create_operation

TYPES = ("research_run", "training_run", "sleep", "sweep", "agent_cycle")


def populate(home: Path, count: int, seed: int = 7) -> dict[str, int]:
    """``count`` operations: 10% active (half of them running, with progress), the rest
    finished (completed, failed, cancelled). Returns counts per status."""
    rng = random.Random(seed)
    db = Database(f"sqlite:///{home / 'stratforge.db'}")
    ids = [create_operation(db, rng.choice(TYPES), {"n": i}).id for i in range(count)]
    active = set(rng.sample(ids, count // 10))
    counts: dict[str, int] = {}
    with db.write() as connection:
        for i, op_id in enumerate(ids):
            if op_id in active:
                status = "running" if i % 2 else "pending"
                values = {"status": status, "progress_percent": rng.uniform(1, 99) if i % 2
                          else 0.0, "progress_step": "sweep" if i % 2 else ""}
            else:
                status = rng.choice(("completed", "completed", "failed", "cancelled"))
                values = {"status": status,
                          "progress_percent": 100.0 if status == "completed" else 40.0,
                          "error": None if status == "completed" else f"{status} (benchmark)"}
            connection.execute(update(Operation).where(Operation.id == op_id).values(**values))
            counts[status] = counts.get(status, 0) + 1
    db.dispose()
    return counts


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--operations", type=int, default=1000)
    parser.add_argument("--loads", type=int, default=7)
    parser.add_argument("--token", action="store_true", help="serve with a bearer token")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="sf_bench_dash_")) / "home"
    home.mkdir(parents=True)
    token = "bench-token" if args.token else None
    with serve(home, token=token, workers=0) as server:  # migrates the database
        started = time.perf_counter()
        counts = populate(home, args.operations)
        print(f"inserted {args.operations} operations in {time.perf_counter() - started:.1f} s:"
              f" {counts}")
        marks, readies = [], []
        with chromium() as browser:
            for load in range(args.loads):
                context = browser.new_context(viewport={"width": 1440, "height": 900})
                if token:
                    context.add_init_script(f"localStorage.setItem('stratforge.token', '{token}')")
                page = context.new_page()
                console = Console()
                console.watch(page)
                began = time.perf_counter()
                page.goto(f"{server.url}/ui/#/overview")
                page.wait_for_selector("#page[data-state=ready]")
                ready = time.perf_counter() - began
                mark = page.evaluate("performance.getEntriesByName('rendered:overview')[0]"
                                     ".startTime")
                rows = page.locator("#active-body tr").count()
                context.close()
                assert not console.errors, console.errors
                marks.append(mark / 1000)
                readies.append(ready)
                print(f"load {load + 1}: rendered at {mark:.0f} ms after navigation start, "
                      f"ready seen after {ready * 1000:.0f} ms, {rows} active rows")
    print(f"overview with {args.operations} operations: median {statistics.median(marks):.3f} s"
          f" (slowest {max(marks):.3f} s) to rendered; median "
          f"{statistics.median(readies):.3f} s until Playwright saw it ready")


if __name__ == "__main__":
    main()
