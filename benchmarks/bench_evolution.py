"""One evolution generation on one year of one-minute bars: features, training, 140 grid
points. Issue target: under 3 minutes on 2 cores.

    python benchmarks/bench_evolution.py [--days 250] [--mode local|queue] [--workers 2]
                                         [--algorithm elasticnet] [--jobs 1] [--home DIR]

The market is the synthetic ``realistic`` MNQ at one-minute resolution (built once into
``--home``, default a folder under /tmp, and reused). Timed: preparing the data (field-engine
states from the cache when warm, cold on the first run, and every candidate feature), training
generation 0 with permutation importance, and simulating the 7 thresholds x 4 z-cutoffs x
5 regime rules = 140 grid points on the validation and test spans. ``--mode local`` runs the
simulations in this process (one core); ``--mode queue`` runs the whole generation as an
``evolution_run`` operation on SQLite drained by ``--workers`` ``stratforge worker``
processes (two slots each), the production path.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

THRESHOLDS = [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0]
Z_CUTOFFS = [0.0, 3.0, 4.0, 6.0]
REGIMES = ["all", "vol=low,normal", "vol=normal,high", "gmm=calm", "gmm=turbulent"]


def _market(home: Path, days: int) -> None:
    from stratforge.data.store import AtlasStore

    if AtlasStore.open("MNQ", home).exists:
        return
    from stratforge.data.demo import synthesize_into_store

    started = time.perf_counter()
    synthesize_into_store("MNQ", days=days, seed=7, kind="realistic", resolution="1m",
                          replace=True, home=home)
    print(f"market: {days} days of 1m bars built in {time.perf_counter() - started:.1f} s")


def _settings(args: argparse.Namespace) -> dict:
    return {"symbol": "MNQ", "timeframe": "1m", "algorithm": args.algorithm,
            "max_generations": 1, "thresholds": THRESHOLDS, "z_cutoffs": Z_CUTOFFS,
            "regimes": REGIMES, "n_jobs": args.jobs}


def _local(args: argparse.Namespace, home: Path) -> None:
    from stratforge.evolution.config import make_evolution_config
    from stratforge.evolution.loop import LocalBackend, evolve
    from stratforge.evolution.pipeline import prepare_data

    config = make_evolution_config(**_settings(args))
    started = time.perf_counter()
    prepared = prepare_data(config, home)
    prepared_at = time.perf_counter()
    backend = LocalBackend(config, home)
    outcome = evolve(prepared, backend, home=home)
    done = time.perf_counter()
    meta = backend.models[0].meta
    train = meta["training"]
    print(f"bars: {len(prepared.bars):,}; split {prepared.split.describe()}")
    print(f"features: {len(prepared.feature_names)}; grid points: {len(config.grid)}")
    print(f"prepare data (states + features + regimes): {prepared_at - started:.1f} s")
    print(f"train {config.algorithm}: fit {train['fit_seconds']:.1f} s, permutation importance "
          f"{train['importance_seconds']:.1f} s, model + signals stored {meta['seconds']:.1f} s")
    print(f"simulate {len(config.grid)} grid points: "
          f"{done - prepared_at - meta['seconds']:.1f} s")
    print(f"generation wall time: {done - started:.1f} s "
          f"(stop: {outcome.stop_reason}; best OOS SQN {outcome.to_json()['best_sqn']})")


def _queue(args: argparse.Namespace, home: Path) -> None:
    from stratforge.ops.db import Database
    from stratforge.ops.evolution_store import RUN_TYPE, run_detail
    from stratforge.ops.operations import create_operation, get_operation

    url = f"sqlite:///{home / 'bench_evolution.db'}"
    db = Database(url)
    run = create_operation(db, RUN_TYPE, _settings(args))
    env = {**os.environ, "STRATFORGE_DATABASE_URL": url, "STRATFORGE_HOME": str(home)}
    started = time.perf_counter()
    workers = [subprocess.Popen([sys.executable, "-m", "stratforge.cli.main", "worker",
                                 "--concurrency", "2", "--poll", "0.05", "--exit-when-idle"],
                                env=env, stdout=subprocess.DEVNULL)
               for _ in range(args.workers)]
    while get_operation(db, run.id).status in ("pending", "running"):
        time.sleep(0.5)
    wall = time.perf_counter() - started
    for worker in workers:
        worker.wait(60)
    detail = run_detail(db, run.id)
    op = get_operation(db, run.id)
    gen = detail["generations"][0] if detail["generations"] else {}
    print(f"run {run.id}: {op.status} {op.error or ''}".rstrip())
    print(f"features: {gen.get('n_features')}; grid points: {gen.get('jobs_total')} "
          f"({gen.get('jobs_done')} done) by {args.workers} worker process(es), 2 slots each")
    print(f"generation wall time (worker start-up included): {wall:.1f} s")


def main() -> None:
    """Build or reuse the market, run one generation, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=250)
    parser.add_argument("--mode", choices=("local", "queue"), default="local")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--algorithm", default="elasticnet")
    parser.add_argument("--jobs", type=int, default=1,
                        help="Processes for the permutation importance (n_jobs setting).")
    parser.add_argument("--home", default=str(Path(tempfile.gettempdir()) /
                                              "stratforge_bench_evolution"))
    parser.add_argument("--fresh-models", action="store_true", default=True,
                        help="Delete stored models first so generation 0 really trains.")
    args = parser.parse_args()
    home = Path(args.home)
    os.environ["STRATFORGE_HOME"] = str(home)
    import numba

    print(f"cores: {os.cpu_count()} (numba threads {numba.get_num_threads()}); load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    _market(home, args.days)
    if args.fresh_models:
        shutil.rmtree(home / "models", ignore_errors=True)
    (_local if args.mode == "local" else _queue)(args, home)
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
