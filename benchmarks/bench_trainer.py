"""Time the day-by-day trainer (`stratforge train`) and print its figures.

Issue target: 20 trading days of 1s MNQ with 1000 parameter iterations per day on 1m bars in
under 5 minutes on 2 cores. The market is synthetic MNQ built from 1s bars (``--kind``,
``--seed``) with ``--warmup-days`` extra days in front, on which the templates are discovered
(no research run exists in the benchmark's home), so ``--days`` days are trained.

    python benchmarks/bench_trainer.py [--days 20] [--iterations 1000] [--timeframe 1m]
                                       [--warmup-days 10] [--kind realistic] [--seed 1]
                                       [--home PATH]

Without ``--home`` the market is built in a temporary home (removed at the end); with it, an
existing MNQ market there is reused and its training folder replaced. Prints the market build
time, the set-up time (states, warm-up discovery, matching), the training time with the
slowest and median day, iterations per second and the peak resident memory.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path


def main() -> None:
    """Parse the options, build or reuse the market, train, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=20)
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--timeframe", default="1m")
    parser.add_argument("--warmup-days", type=int, default=10)
    parser.add_argument("--kind", default="realistic")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--home", type=Path, default=None)
    args = parser.parse_args()

    from stratforge.data import build_atlas, list_symbols
    from stratforge.data.demo import synthesize_into_store
    from stratforge.trainer.config import make_train_config
    from stratforge.trainer.loop import train
    from stratforge.trainer.summary import finish_training

    temporary = args.home is None
    home = Path(tempfile.mkdtemp(prefix="bench-trainer-")) if temporary else args.home
    try:
        if "MNQ" not in list_symbols(home):
            started = time.perf_counter()
            report = synthesize_into_store("MNQ", days=args.days + args.warmup_days,
                                           seed=args.seed, kind=args.kind, home=home)
            build_atlas("MNQ", home=home)
            print(f"market: synthetic MNQ {args.kind} seed {args.seed}, "
                  f"{args.days + args.warmup_days} days, {report.rows_written:,} 1s bars, "
                  f"built in {time.perf_counter() - started:.1f} s")
        config = make_train_config(timeframe=args.timeframe, iterations=args.iterations,
                                   templates="warmup", warmup_days=args.warmup_days,
                                   max_days=args.days)
        marks: dict[str, float] = {}

        def progress(phase: str, done: int, total: int, message: str = "") -> None:
            marks.setdefault("first_day", time.perf_counter())

        started = time.perf_counter()
        result = train(config, home=home, fresh=True, progress=progress)
        trained = time.perf_counter()
        finish_training(result, config)
        finished = time.perf_counter()
        days = result.days
        seconds = days["seconds"].to_numpy()
        setup = marks.get("first_day", trained) - started - seconds[0]
        print(f"trained {len(days)} days of {config.timeframe} bars, {config.iterations} "
              f"iterations per day, templates from {result.library_source}")
        print(f"whole training: {trained - started:.1f} s ({(trained - started) / 60:.2f} min), "
              f"of which set-up (states, discovery, matching) {setup:.1f} s and days "
              f"{seconds.sum():.1f} s")
        print(f"per day: median {float(sorted(seconds)[len(seconds) // 2]):.2f} s, slowest "
              f"{seconds.max():.2f} s; {len(days) * config.iterations / seconds.sum():,.0f} "
              "iterations/s")
        print(f"log and report: {finished - trained:.1f} s")
        print(f"trades {int(days['trades'].sum()):,}, fired {int(days['fired'].sum()):,} of "
              f"{int(days['candidates'].sum()):,} candidates, states learned "
              f"{len(result.brain.keys())}")
        print(f"peak memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")
    finally:
        if temporary:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
