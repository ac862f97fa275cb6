"""Time ``compute_states`` on about 13 million 1-second bars (issue target: under 60 s, 2 cores).

    python benchmarks/bench_features.py [--rows 13000000] [--threads 2] [--repeats 2]
                                        [--synthetic] [--compile] [--vectors]

Bars are a tick-grid random walk made with numpy (``--synthetic``: 403 trading days of the
built-in synthetic MNQ market instead). The first call includes numba's start-up: loading the
cached kernels, or compiling them with ``--compile`` (a fresh, empty numba cache), and the
first touch of the output memory; the warm figure is the best of ``--repeats`` further calls.
``--vectors`` also times ``feature_vectors`` over 1s, 1m, 1h built from the same bars.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time


def _random_walk(rows: int, seed: int):
    import numpy as np

    from stratforge.data.bars import bars_from_arrays

    rng = np.random.default_rng(seed)
    tick = 0.25
    close = 18_000.0 + np.cumsum(rng.integers(-2, 3, rows)) * tick
    open_ = np.concatenate(([close[0]], close[:-1]))
    high = np.maximum(open_, close) + rng.integers(0, 3, rows) * tick
    low = np.minimum(open_, close) - rng.integers(0, 3, rows) * tick
    volume = rng.integers(1, 30, rows).astype(np.float64)
    start = 1_704_236_400 * 1_000_000_000  # 2024-01-02 23:00 UTC, a CME session open
    ts = start + np.arange(rows, dtype=np.int64) * 1_000_000_000
    return bars_from_arrays(ts, open_, high, low, close, volume)


def _synthetic(seed: int):
    from stratforge.data.synthetic import generate_market
    from stratforge.instruments import get_instrument

    return generate_market(get_instrument("MNQ"), days=403, seed=seed, kind="realistic").bars


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=13_000_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--synthetic", action="store_true")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--vectors", action="store_true")
    args = parser.parse_args()
    if args.compile:
        os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="stratforge-numba-")
    os.environ.setdefault("NUMBA_NUM_THREADS", str(args.threads))

    import numba

    from stratforge.features import compute_states

    numba.set_num_threads(args.threads)
    started = time.perf_counter()
    bars = _synthetic(args.seed) if args.synthetic else _random_walk(args.rows, args.seed)
    print(f"bars: {len(bars):,} ({'synthetic MNQ' if args.synthetic else 'random walk'}), "
          f"made in {time.perf_counter() - started:.1f} s; numba threads: "
          f"{numba.get_num_threads()} of {os.cpu_count()} cores")

    started = time.perf_counter()
    states = compute_states(bars)
    first = time.perf_counter() - started
    print(f"compute_states first call ({'compiling' if args.compile else 'cached kernels'}): "
          f"{first:.2f} s")
    del states
    warm, cpu_used = [], []
    for _ in range(args.repeats):
        started, cpu_started = time.perf_counter(), time.process_time()
        states = compute_states(bars)
        warm.append(time.perf_counter() - started)
        cpu_used.append(time.process_time() - cpu_started)
        del states
    if warm:
        best = min(warm)
        print(f"compute_states warm: {best:.2f} s (runs: "
              f"{', '.join(f'{w:.2f}' for w in warm)}), {len(bars) / best / 1e6:.2f} M rows/s; "
              f"CPU time per call {min(cpu_used):.1f} s (all threads)")
    if args.vectors:
        _time_vectors(bars)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    print(f"peak resident memory: {peak:,.0f} MB; process CPU time: "
          f"{cpu.ru_utime + cpu.ru_stime:.1f} s")
    target = min(warm) if warm else first
    sys.exit(0 if target < 60 else 1)


def _time_vectors(bars) -> None:
    from stratforge.data.resample import resample_bars
    from stratforge.features import compute_states, feature_vectors
    from stratforge.sessions import CME_GLOBEX
    from stratforge.timeframes import parse_timeframe

    hierarchy = [parse_timeframe(t) for t in ("1h", "1m", "1s")]
    started = time.perf_counter()
    states = {tf: compute_states(bars if tf.seconds == 1 else
                                 resample_bars(bars, tf, CME_GLOBEX)) for tf in hierarchy}
    built = time.perf_counter() - started
    started = time.perf_counter()
    feature_vectors(states, hierarchy, session=CME_GLOBEX)
    print(f"states for 1h, 1m, 1s (with resampling): {built:.2f} s; feature_vectors: "
          f"{time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    main()
