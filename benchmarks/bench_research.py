"""Time the whole research pipeline (`stratforge run`) at seed scale and print its figures.

Seed scale (issue): about 113 templates x 5 timeframes (1m, 5m, 15m, 1h, 4h) x 2000 parameter
sets (1.13 million backtests) over 403 trading days of synthetic MNQ. Targets on 2 cores: the
sweep under 10 minutes, peak memory under 4 GB, the whole pipeline under 15 minutes.

    python benchmarks/bench_research.py [--days 403] [--seed 7] [--kind realistic]
                                        [--home PATH] [--templates 113] [--mc-iters 2000]
                                        [--workers 2] [--executor local]

Without ``--home`` the market is built in a temporary home (removed at the end); with it, a
home that already has MNQ data is reused (its states cache too). The run uses the default
research settings except ``--templates`` (the largest N templates are kept), ``--mc-iters``,
``--workers`` and ``--executor``. Prints the market build time, then per phase its seconds
and figures, the sweep's backtests per second, and the peak resident memory of the main
process, of the largest worker process, and of all of them together (sampled from /proc).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import threading
import time
from pathlib import Path


def _peak_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def _tree_rss_mb(root: int) -> float:
    """Resident memory of ``root`` and all its descendants, from /proc (Linux)."""
    parents: dict[int, int] = {}
    rss: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            parents[int(entry.name)] = int(fields[1])
            rss[int(entry.name)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE") / 2**20
        except (OSError, ValueError, IndexError):
            continue
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0.0)
        todo.extend(child for child, parent in parents.items() if parent == pid)
    return total


class TreeMemory(threading.Thread):
    """Samples the resident memory of this process and its workers every half second."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = 0.0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.5):
            self.peak = max(self.peak, _tree_rss_mb(os.getpid()))


def main() -> None:
    """Parse the options, build or reuse the market, run the pipeline, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=403)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--kind", default="realistic")
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--templates", type=int, default=113)
    parser.add_argument("--mc-iters", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--executor", default="local")
    args = parser.parse_args()

    from stratforge.data import build_atlas, list_symbols
    from stratforge.data.demo import synthesize_into_store
    from stratforge.research.config import make_config
    from stratforge.research.pipeline import run_research

    temporary = args.home is None
    home = Path(tempfile.mkdtemp(prefix="bench-research-")) if temporary else args.home
    try:
        if "MNQ" not in list_symbols(home):
            started = time.perf_counter()
            report = synthesize_into_store("MNQ", days=args.days, seed=args.seed,
                                           kind=args.kind, home=home)
            build_atlas("MNQ", home=home)
            print(f"market: synthetic MNQ {args.kind} seed {args.seed}, {args.days} days, "
                  f"{report.rows_written:,} 1s bars, built in "
                  f"{time.perf_counter() - started:.1f} s")
        config = make_config(max_templates=args.templates, mc_iters=args.mc_iters,
                             workers=args.workers, executor=args.executor)
        last = {}

        def progress(phase: str, done: int, total: int, message: str = "") -> None:
            if last.get(phase, (None,))[0] != done and done in (total, 0):
                print(f"  {phase}: {done}/{total} {message}", flush=True)
            last[phase] = (done,)

        memory = TreeMemory()
        memory.start()
        started = time.perf_counter()
        result = run_research(config, home=home, progress=progress)
        total = time.perf_counter() - started
        memory.stopped.set()
        phases = result.summary["phases"]
        print(f"\nwhole pipeline: {total:.1f} s ({total / 60:.1f} min)")
        for name, info in phases.items():
            figures = {k: v for k, v in info.items() if k not in ("seconds", "train_end_ns")}
            print(f"  {name:<11}{info['seconds']:8.1f} s  {json.dumps(figures)}")
        sweep = phases["sweep"]
        print(f"sweep: {sweep['backtests']:,} backtests ({sweep['pairs']} pairs) in "
              f"{sweep['seconds']:.1f} s = {sweep['backtests'] / sweep['seconds']:,.0f} "
              "backtests/s")
        print(f"peak memory: main process {_peak_mb(resource.RUSAGE_SELF):,.0f} MB, largest "
              f"worker {_peak_mb(resource.RUSAGE_CHILDREN):,.0f} MB, main and workers "
              f"together {memory.peak:,.0f} MB (sampled every 0.5 s)")
        print(f"tiers: {result.summary.get('tiers')}")
    finally:
        if temporary:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
