"""Build the full ATLAS from N trading days of synthetic MNQ 1-second bars and load it back.

Targets (issue 2): 403 days (about 13 million 1s bars) build in under 30 s on 2 cores with
peak memory under 4 GB; loading one timeframe-month back takes under 50 ms.

    python benchmarks/bench_atlas.py [--days 403] [--seed 1]

Each heavy step runs in its own process so its peak resident memory can be reported.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import tempfile
import time
from pathlib import Path

import pandas as pd


def _child(step: str, home: str, days: int, seed: int, out: mp.Queue) -> None:
    from stratforge.data import build_atlas
    from stratforge.data.demo import synthesize_into_store

    started = time.perf_counter()
    if step == "synth":
        report = synthesize_into_store("MNQ", days=days, seed=seed, home=home)
        detail = f"{report.rows_written:,} bars"
    else:
        report = build_atlas("MNQ", home=home)
        detail = (f"{len(report.months_rebuilt)} months, {report.files_written} files written, "
                  f"{report.files_unchanged} unchanged")
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out.put((seconds, peak_mb, detail))


def _run(step: str, home: str, days: int, seed: int) -> tuple[float, float, str]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(step, home, days, seed, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def _load_timings(home: str) -> list[tuple[str, int, float]]:
    from stratforge.data import load_bars
    from stratforge.data.store import AtlasStore

    store = AtlasStore.open("MNQ", home)
    rows = []
    for tf in store.timeframes():
        months = list(store.entries(tf))
        month = months[len(months) // 2]
        start = pd.Timestamp(str(pd.Period(f"{1970 + month // 12}-{month % 12 + 1:02d}")),
                             tz="UTC")
        end = start + pd.offsets.MonthBegin(1)
        best = float("inf")
        for _ in range(5):
            t = time.perf_counter()
            bars = load_bars("MNQ", tf, start, end, home=home)
            best = min(best, time.perf_counter() - t)
        rows.append((str(tf), len(bars), best * 1000))
    return rows


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=403)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = str(Path(tmp) / "home")
        synth_s, synth_mb, detail = _run("synth", home, args.days, args.seed)
        print(f"synthetic MNQ {args.days} days at 1s: {detail} in {synth_s:.1f} s, "
              f"peak {synth_mb:,.0f} MB")
        build_s, build_mb, detail = _run("build", home, args.days, args.seed)
        print(f"atlas build: {build_s:.1f} s, peak {build_mb:,.0f} MB ({detail})")
        again_s, _, detail = _run("build", home, args.days, args.seed)
        print(f"atlas rebuild with nothing changed: {again_s:.2f} s ({detail})")
        print("load one month (best of 5):")
        for tf, rows, ms in _load_timings(home):
            print(f"  {tf:>3}: {rows:>9,} bars in {ms:6.1f} ms")


if __name__ == "__main__":
    main()
