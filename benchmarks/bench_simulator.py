"""Throughput of the exit simulator: ``sweep`` cells per second per core, ``simulate`` trades/s.

Workload (issue): 400,000 one-minute MNQ bars on the CME Globex calendar, signals on about 1%
of bars with random sides, 100 parameter sets of stop x target; a second run with trailing
stops (tight, wide, widen, activation) and max hold. Target: >= 50 million bar x set cells per
second per core for ``sweep``.

    python benchmarks/bench_simulator.py [--bars 400000] [--sets 100] [--threads N]
                                         [--repeat 5] [--seed 7]

A *cell* is one bar x one parameter set (n_bars * n_sets), whether or not a position was open
on that bar: the kernel jumps from each exit to the next signal, so it only visits bars inside
positions ("visited" below). Per core = cells / seconds / numba threads. Timings are the best
of ``--repeat`` runs after a warm-up call (numba compiled); the "sweep()" figure includes input
validation, session flags and entry planning, the "kernel" figure is the numba call alone.
"""

from __future__ import annotations

import argparse
import importlib
import time

import numba
import numpy as np
import pandas as pd

from stratforge.instruments import get_instrument
from stratforge.sim import Costs, ExitParams, simulate, sweep

SWEEP_MODULE = importlib.import_module("stratforge.sim.backtest")


def session_minutes(n: int, start: str = "2023-01-02 17:00") -> np.ndarray:
    """UTC ns of ``n`` one-minute bar starts inside CME Globex hours (17:00-16:00 Chicago,
    Sunday evening to Friday afternoon)."""
    stamps: list[np.ndarray] = []
    day = pd.Timestamp(start, tz="America/Chicago")
    total = 0
    while total < n:
        grid = pd.date_range(day, day + pd.Timedelta(hours=23), freq="1min", inclusive="left")
        if grid[-1].day_of_week < 5:  # the trade date (session end) is Monday to Friday
            stamps.append(grid.tz_convert("UTC").as_unit("ns").asi8)
            total += len(grid)
        day += pd.Timedelta(days=1)
    return np.concatenate(stamps)[:n]


def make_bars(n: int, seed: int) -> pd.DataFrame:
    """A tick-grid random walk with MNQ-like one-minute volatility (about 6 points)."""
    rng = np.random.default_rng(seed)
    tick = 0.25
    moves = np.rint(rng.normal(0, 24, n))
    close = 18_000 + np.cumsum(moves) * tick
    open_ = np.concatenate(([18_000.0], close[:-1]))
    high = np.maximum(open_, close) + np.floor(rng.exponential(8, n)) * tick
    low = np.minimum(open_, close) - np.floor(rng.exponential(8, n)) * tick
    return pd.DataFrame({
        "ts": pd.DatetimeIndex(session_minutes(n).view("datetime64[ns]"), tz="UTC"),
        "open": open_, "high": high, "low": low, "close": close,
        "volume": rng.integers(1, 100, n).astype(np.float64)})


def stop_target_table(sets: int) -> pd.DataFrame:
    side = int(np.ceil(np.sqrt(sets)))
    # 10 to 100 points (40 to 400 ticks): a few minutes to a few hours of MNQ movement
    grid = [(40.0 * (a + 1), 40.0 * (b + 1)) for a in range(side) for b in range(side)][:sets]
    return pd.DataFrame(grid, columns=["stop_ticks", "target_ticks"])


def trailing_table(sets: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    tight = rng.choice([40.0, 80.0, 120.0, 160.0, 200.0], sets)
    return pd.DataFrame({
        "stop_ticks": rng.choice([80.0, 160.0, 240.0, 320.0, 400.0], sets),
        "target_ticks": rng.choice([0.0, 400.0, 800.0], sets),
        "trail_tight_ticks": tight,
        "trail_wide_ticks": tight * 2,
        "trail_widen_points": rng.choice([0.0, 20.0, 40.0], sets),
        "trail_activation_ticks": rng.choice([0.0, 40.0, 80.0], sets),
        "max_hold_bars": rng.choice([30.0, 60.0, 120.0, 240.0, 480.0], sets),
    })


def best_of(repeat: int, call) -> tuple[float, object]:
    best = float("inf")
    result = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = call()
        best = min(best, time.perf_counter() - started)
    return best, result


def run_sweep(label: str, bars, entries, sides, table, instrument, costs, repeat) -> None:
    threads = numba.get_num_threads()
    cells = len(bars) * len(table)
    seconds, result = best_of(repeat, lambda: sweep(bars, entries, sides, table,
                                                    instrument=instrument, costs=costs))
    market = SWEEP_MODULE._market(bars, entries, sides, instrument, "close", 1, "ohlc")
    matrix = SWEEP_MODULE.param_matrix(table, costs).values
    kernel_seconds, _ = best_of(repeat, lambda: SWEEP_MODULE.kernels.sweep_kernel(
        *market.kernel_args(), matrix, market.tick, market.point_value))
    visited = float((result["trades"] * result["avg_bars_held"].fillna(0)).sum())
    print(f"sweep [{label}]: {len(table)} sets x {len(bars):,} bars = {cells / 1e6:.0f}M cells, "
          f"{threads} thread(s); {int(result['trades'].sum()):,} trades, "
          f"{visited / cells:.1%} of cells inside a position")
    for name, secs in (("sweep()", seconds), ("kernel ", kernel_seconds)):
        print(f"  {name} {secs * 1e3:8.1f} ms  {cells / secs / 1e6:8.1f}M cells/s  "
              f"{cells / secs / threads / 1e6:8.1f}M cells/s/core  "
              f"{visited / secs / threads / 1e6:6.1f}M visited bars/s/core")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=400_000)
    parser.add_argument("--sets", type=int, default=100)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.threads:
        numba.set_num_threads(args.threads)

    instrument = get_instrument("MNQ")
    bars = make_bars(args.bars, args.seed)
    rng = np.random.default_rng(args.seed + 1)
    entries = np.flatnonzero(rng.random(args.bars) < 0.01).astype(np.int64)
    sides = rng.choice(np.array([1, -1]), len(entries))
    costs = Costs(slippage_ticks=1, commission=0.62)
    print(f"{args.bars:,} one-minute bars, {len(entries):,} signals, numba "
          f"{numba.__version__}, {numba.get_num_threads()} thread(s)")

    tables = {"stop x target": stop_target_table(args.sets),
              "trailing + max hold": trailing_table(args.sets, args.seed)}
    for table in tables.values():  # warm-up: compile every kernel
        sweep(bars.iloc[:5000], entries[entries < 5000], sides[entries < 5000], table.iloc[:2],
              instrument=instrument, costs=costs)
    for label, table in tables.items():
        run_sweep(label, bars, entries, sides, table, instrument, costs, args.repeat)

    params = ExitParams(stop_ticks=160, target_ticks=240, trail_tight_ticks=80,
                        trail_wide_ticks=160, trail_widen_points=20, max_hold_bars=120)
    simulate(bars.iloc[:5000], entries[entries < 5000], sides[entries < 5000], params,
             instrument=instrument, costs=costs)
    seconds, trades = best_of(args.repeat, lambda: simulate(
        bars, entries, sides, params, instrument=instrument, costs=costs))
    print(f"simulate: {len(trades):,} trades in {seconds * 1e3:.1f} ms = "
          f"{len(trades) / seconds:,.0f} trades/s (one thread, frame included)")


if __name__ == "__main__":
    main()
