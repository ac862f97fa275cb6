"""False discoveries and power of the research pipeline with its default settings.

Runs ``stratforge run --quick`` (default settings, quick sizes) on markets with a known truth
and prints how often it is fooled and how often it finds a real edge:

- null markets of two kinds, where anything found is a false discovery: the project's
  ``null`` synthetic MNQ market, and a random walk built here with an intraday volatility
  profile (a U shape over the CME session) and volatility clustering (GARCH(1,1)), on the
  tick grid;
- planted markets (the project's ``planted`` kind), where the planted shock-and-reversion
  edge should reach PRODUCTION: a run finds it when one of its PRODUCTION strategies enters at
  least 40% of its out-of-sample trades on planted shocks, at least 90% of them against the
  shock (the check of tests/test_research_acceptance.py). Planted markets are 250 trade dates
  by default (the acceptance test's length): the out-of-sample half then holds about 125
  days of planted events, enough for the planted strategies' out-of-sample t to clear what
  the run-wide deflation asks (about 4.1: DSR 0.95).

    python benchmarks/bench_false_discovery.py [--null-runs 10] [--walk-runs 10]
        [--planted-runs 5] [--days 60] [--planted-days 250] [--workers 2]

Prints one line per run, then the share of null runs with any PRODUCTION and with any
CANDIDATE, and the share of planted runs whose planted edge reached PRODUCTION. Issue 16's
targets: PRODUCTION in at most 5% of null runs, CANDIDATE in at most 10%, planted found in at
least 80%.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

WALK_INSTRUMENT = """\
RWALK:
  tick_size: 0.25
  point_value: 2.0
  currency: USD
  session: cme_globex
  costs: {commission: 0.62, spread_ticks: 1, slippage_ticks: 1}
"""


def random_walk_bars(days: int, seed: int) -> pd.DataFrame:
    """One-minute bars over ``days`` CME trade dates: a U-shaped intraday volatility profile
    and GARCH(1,1) volatility clustering, prices on the 0.25 tick grid, no edge at all."""
    from stratforge.sessions import CME_GLOBEX

    rng = np.random.default_rng(seed)
    calendar = CME_GLOBEX.trade_days(pd.Timestamp("2023-01-02").date(),
                                     pd.Timestamp("2024-12-31").date())
    open_ns = calendar.session_open[calendar.is_trading_day][:days]
    close_ns = calendar.session_close[calendar.is_trading_day][:days]
    stamps = np.concatenate([np.arange(o, c, 60 * 10**9, dtype=np.int64)
                             for o, c in zip(open_ns, close_ns, strict=True)])
    n = len(stamps)
    minute = (stamps - np.repeat(open_ns, [(c - o) // (60 * 10**9)
                                           for o, c in zip(open_ns, close_ns, strict=True)]))
    phase = minute / (23 * 3600 * 10**9)  # 0 at the open, 1 at the close
    profile = 0.6 + 1.6 * (phase - 0.5) ** 2 * 4  # U shape: busy open and close
    omega, alpha, beta = 0.05, 0.08, 0.9
    variance = np.empty(n)
    shocks = rng.standard_normal(n)
    v = omega / (1 - alpha - beta)
    for t in range(n):
        variance[t] = v
        v = omega + alpha * v * shocks[t] ** 2 + beta * v
    steps = np.round(12.0 * np.sqrt(variance) * profile * shocks)  # ticks: about 10 a minute
    close = 18_000.0 + np.cumsum(steps) * 0.25
    open_ = np.concatenate(([18_000.0], close[:-1]))
    wick = np.round(np.abs(rng.standard_normal((2, n))) * 6.0 * profile) * 0.25
    return pd.DataFrame({"ts": pd.to_datetime(stamps, utc=True), "open": open_,
                         "high": np.maximum(open_, close) + wick[0],
                         "low": np.minimum(open_, close) - wick[1], "close": close,
                         "volume": 1.0})


def run_quick(home: Path, symbol: str, workers: int) -> Path:
    """``stratforge run --quick --symbol SYMBOL`` in ``home``; returns the run folder."""
    from typer.testing import CliRunner

    from stratforge.cli.main import app

    result = CliRunner().invoke(app, ["--home", str(home), "run", "--quick", "--symbol",
                                      symbol, "--workers", str(workers)])
    if result.exit_code != 0:
        raise RuntimeError(result.output)
    return max((home / "runs").glob("run_*"))


def tiers(run: Path) -> dict[str, int]:
    """The run's tier counts."""
    return json.loads((run / "summary.json").read_text()).get("tiers", {})


def deflation(run: Path) -> str:
    """The run's trial counts, DSR benchmark, out-of-sample acceptances and run PBO."""
    block = json.loads((run / "summary.json").read_text()).get("overfitting") or {}
    if not block:
        return ""
    trials, pbo = block["trials"], block["run_pbo"]["value"]
    return (f"trials {trials['raw']} raw, {trials['eligible']} eligible, "
            f"{trials['effective']:.1f} effective; DSR benchmark t "
            f"{block['dsr']['threshold_t']:.2f}; "
            f"{block['oos_test']['accepted']}/{block['oos_test']['candidates_tested']} "
            f"significant out of sample; run PBO "
            f"{'-' if pbo is None else format(pbo, '.2f')}")


def trades_the_planted_edge(home: Path, run: Path, strategy: dict) -> bool:
    """True when ``strategy`` (a playbook entry, or the fields ``planted_share`` reads) enters
    at least 40% of its 20 or more out-of-sample trades on planted shocks, 90% of those
    against the shock."""
    from research_helpers import planted_share

    share, fade, trades = planted_share(home, run, strategy)
    return share >= 0.4 and fade >= 0.9 and trades >= 20


def found_planted(home: Path, run: Path) -> bool:
    """True when a PRODUCTION strategy trades the planted shocks against the shock."""
    playbook = json.loads((run / "playbook.json").read_text())
    return any(trades_the_planted_edge(home, run, s) for s in playbook["strategies"])


def main() -> None:
    """Run every market, print one line each and the shares."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--null-runs", type=int, default=10)
    parser.add_argument("--walk-runs", type=int, default=10)
    parser.add_argument("--planted-runs", type=int, default=5)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--planted-days", type=int, default=250)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    from stratforge.data.demo import synthesize_into_store

    root = Path(tempfile.mkdtemp(prefix="bench-fdr-"))
    nulls: list[dict[str, int]] = []
    planted: list[bool] = []
    started = time.perf_counter()
    try:
        for seed in range(1, args.null_runs + 1):
            home = root / f"null{seed}"
            synthesize_into_store("MNQ", days=args.days, seed=seed, kind="null", home=home)
            run = run_quick(home, "MNQ", args.workers)
            counts = tiers(run)
            nulls.append(counts)
            print(f"null MNQ seed {seed}: {counts}; {deflation(run)}", flush=True)
            shutil.rmtree(home)
        for seed in range(1, args.walk_runs + 1):
            home = root / f"walk{seed}"
            home.mkdir()
            (home / "instruments.yaml").write_text(WALK_INSTRUMENT)
            source = home / "walk.parquet"
            random_walk_bars(args.days, seed).to_parquet(source, index=False)
            from stratforge.data.ingest import ingest_files

            ingest_files([source], "RWALK", home=home)
            run = run_quick(home, "RWALK", args.workers)
            counts = tiers(run)
            nulls.append(counts)
            print(f"random walk seed {seed}: {counts}; {deflation(run)}", flush=True)
            shutil.rmtree(home)
        for seed in range(1, args.planted_runs + 1):
            home = root / f"planted{seed}"
            synthesize_into_store("MNQ", days=args.planted_days, seed=seed, kind="planted",
                                  resolution="1m", home=home)
            run = run_quick(home, "MNQ", args.workers)
            found = found_planted(home, run)
            planted.append(found)
            print(f"planted MNQ seed {seed}: {tiers(run)}, planted edge found: {found}; "
                  f"{deflation(run)}", flush=True)
            shutil.rmtree(home)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    any_production = np.mean([c.get("PRODUCTION", 0) > 0 for c in nulls]) if nulls else 0.0
    any_candidate = np.mean([c.get("CANDIDATE", 0) > 0 for c in nulls]) if nulls else 0.0
    print(f"\n{len(nulls)} null runs: any PRODUCTION {any_production:.0%} (target <= 5%), any "
          f"CANDIDATE {any_candidate:.0%} (target <= 10%), CANDIDATE strategies "
          f"{sum(c.get('CANDIDATE', 0) for c in nulls)} in all")
    if planted:
        print(f"{len(planted)} planted runs: planted edge reached PRODUCTION in "
              f"{np.mean(planted):.0%} (target >= 80%)")
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
