"""Time fractal discovery and clustering over the ATLAS of a 403-day synthetic MNQ 1s market.

Target (issue): discovery plus clustering over the 403-day ATLAS in under 2 minutes on 2
cores, with the states served from the states cache on the second run.

    python benchmarks/bench_discovery.py [--days 403] [--seed 7] [--kind realistic]
                                         [--home PATH] [--cold] [--threads 2]
                                         [--low-top 1h,15m,5m,1m,15s,5s,1s]

Without ``--home`` the market and its ATLAS are built in a temporary home (removed at the
end), so the first run computes every timeframe's states. ``--home`` reuses a home (building
the market there first when it has no MNQ store, with ``--days``/``--seed``/``--kind``); its
states cache is used as found unless ``--cold`` deletes it first (``<home>/cache/states/MNQ``).
Each hierarchy is discovered twice from scratch (``fresh=True``, no checkpoint resume) and
clustered: the first run reports the states cache as found, the second must be served from it.
Per run: seconds per phase, the states cache hits/misses (``cache_stats()``), and per level
the bars scanned, windows, patterns and seconds; the peak resident memory of the process at
the end. Discovery writes to ``<home>/discovery/MNQ`` (its checkpoint and patterns file).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path


def _build_market(home: str, days: int, seed: int, kind: str) -> None:
    from stratforge.data import build_atlas
    from stratforge.data.demo import synthesize_into_store

    started = time.perf_counter()
    report = synthesize_into_store("MNQ", days=days, seed=seed, kind=kind, home=home)
    synth_s = time.perf_counter() - started
    print(f"synthetic MNQ ({kind}, seed {seed}) {days} days at 1s: {report.rows_written:,} "
          f"bars in {synth_s:.1f} s")
    started = time.perf_counter()
    build = build_atlas("MNQ", home=home)
    print(f"atlas build: {time.perf_counter() - started:.1f} s "
          f"({len(build.months_rebuilt)} months, {build.files_written} files)")


def _describe_home(home: str) -> None:
    from stratforge.data.demo import synthetic_spec
    from stratforge.data.store import AtlasStore

    spec = synthetic_spec("MNQ", home) or {}
    store = AtlasStore.open("MNQ", home)
    timeframes = ", ".join(str(tf) for tf in sorted(store.timeframes(), reverse=True))
    print(f"reusing {home}: {spec.get('kind', 'not synthetic')} seed {spec.get('seed', '?')}, "
          f"{spec.get('days', '?')} days, {spec.get('bars', 0):,} base bars; ATLAS: "
          f"{timeframes}")


def _run(home: str, hierarchy: list[str] | None, label: str) -> dict:
    """One fresh discovery plus clustering; prints and returns its figures."""
    from stratforge.discovery.fractal import discover_patterns
    from stratforge.discovery.templates import cluster_patterns
    from stratforge.features.cache import cache_stats, reset_cache_stats

    reset_cache_stats()
    started = time.perf_counter()
    result = discover_patterns("MNQ", timeframes=hierarchy, home=home, fresh=True)
    discover_s = time.perf_counter() - started
    stats = cache_stats()
    started = time.perf_counter()
    library = cluster_patterns(result.patterns)
    cluster_s = time.perf_counter() - started
    total = discover_s + cluster_s
    print(f"  {label}: discovery {discover_s:.1f} s + clustering {cluster_s:.1f} s = "
          f"{total:.1f} s; states cache {stats['hit']} hit / {stats['miss']} miss; "
          f"{len(result.patterns):,} patterns, {len(library)} templates "
          f"(k={library.metadata['k_used']}, {library.metadata['splits']} splits, "
          f"{library.metadata['dropped_rows']} dropped for NaN features)")
    print(f"    {'level':>5} {'scan':>6} {'windows':>8} {'bars scanned':>13} {'patterns':>9} "
          f"{'seconds':>8} {'states':>6}")
    for level in result.levels:
        scan = "full" if level.full_scan else ("skip" if level.skipped else "drill")
        print(f"    {level.timeframe:>5} {scan:>6} {level.windows:>8,} {level.bars_scanned:>13,} "
              f"{level.patterns:>9,} {level.seconds:>8.2f} {level.states_cache:>6}")
    return {"total": total, "hit": stats["hit"], "miss": stats["miss"]}


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=403)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--kind", default="realistic", choices=["null", "realistic", "planted"])
    parser.add_argument("--home", help="reuse (or build once into) this home")
    parser.add_argument("--cold", action="store_true",
                        help="delete the MNQ states cache of --home before the first run")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--low-top", default="1h,15m,5m,1m,15s,5s,1s",
                        help="the second, lower-top hierarchy (comma-separated)")
    args = parser.parse_args()
    for name in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                 "MKL_NUM_THREADS"):
        os.environ[name] = str(args.threads)

    import numba

    from stratforge.data.store import AtlasStore
    from stratforge.features.cache import cache_folder

    numba.set_num_threads(args.threads)
    print(f"threads: {numba.get_num_threads()} (numba, OpenMP) of {os.cpu_count()} cores")
    temporary = None if args.home else tempfile.mkdtemp(prefix="bench-discovery-")
    home = args.home or str(Path(temporary) / "home")
    try:
        if AtlasStore.open("MNQ", home).exists:
            _describe_home(home)
        else:
            _build_market(home, args.days, args.seed, args.kind)
        if args.cold:
            states = cache_folder("MNQ", "1s", home).parent
            shutil.rmtree(states, ignore_errors=True)
            print(f"--cold: deleted {states}")
        results = {}
        for label, hierarchy in (("default hierarchy", None),
                                 (f"low top {args.low_top}", args.low_top.split(","))):
            print(f"{label}:")
            first = _run(home, hierarchy, "first run ")
            second = _run(home, hierarchy, "second run")
            results[label] = (first, second)
        peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2
        print(f"peak resident memory: {peak_gb:.1f} GB")
        ok = True
        for label, (_, second) in results.items():
            cached = second["miss"] == 0 and second["hit"] > 0
            fast = second["total"] < 120
            ok &= cached and fast
            print(f"{label}: second run {second['total']:.1f} s "
                  f"({'under' if fast else 'OVER'} the 120 s target), states "
                  f"{'all from the cache' if cached else 'NOT all from the cache'}")
    finally:
        if temporary:
            shutil.rmtree(temporary, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
