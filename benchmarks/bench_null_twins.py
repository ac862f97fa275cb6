"""Null twins on markets with a known truth: does a planted edge beat its twins, and do the
twins stay quiet?

Issue 20's targets: on planted markets the planted strategy beats the twins in at least 80% of
seeds while the twins reach PRODUCTION in at most 5% of twin runs; on the demo realistic market
the real run's tier counts lie within the spread of its twins' (nothing beats the twins).

    python benchmarks/bench_null_twins.py [--seeds 5] [--first-seed 1] [--twins 5] [--days 250]
        [--demo-twins 10] [--workers 2]

* **Planted**: per seed a ``planted`` MNQ market (1m bars, ``--days`` trade dates), then
  ``stratforge run --quick`` and ``audit_null`` with ``--twins`` twins (the ``sign`` method).
  The planted strategy is a strategy of the run that trades the planted shocks against the
  shock (at least 40% of its out-of-sample trades on a planted shock, 90% of those fading it:
  the check of tests/test_research_acceptance.py). Per seed: whether a planted strategy
  reached PRODUCTION, whether one beats the twins (its DSR above the 95th percentile of the
  twins' best DSR; with few twins that percentile is close to their maximum, which makes the
  test stricter), and how many twins reached PRODUCTION and CANDIDATE.
* **Demo**: the demo market (``realistic`` MNQ, 60 days of 1s bars, the demo seed: what
  ``stratforge run`` builds on first use), ``run --quick`` and
  ``--demo-twins`` twins; the real run's count per tier against the twins' range, and how
  many real strategies beat the twins (0 is right: the market has no edge). ``--demo-twins
  0`` skips it.

Prints one line per seed and the shares. A planted seed costs its run (about 1.5 minutes on 2
cores) and its twins (about 1.4 minutes each, two side by side).
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from bench_false_discovery import run_quick, trades_the_planted_edge


def planted_strategies(home: Path, run: Path) -> list[str]:
    """Strategy ids of the run (any tier, with a DSR) that trade the planted edge (see the
    module docstring)."""
    import pandas as pd

    from stratforge.research.outputs import VALIDATION_FILE

    frame = pd.read_parquet(run / VALIDATION_FILE)
    execution = {"cost_model": json.loads((run / "summary.json").read_text())["market"]
                 ["cost_model"]}
    found = []
    for row in frame[pd.to_numeric(frame["dsr"], errors="coerce").notna()].to_dict("records"):
        params = row["params"] if isinstance(row["params"], dict) else json.loads(row["params"])
        strategy = {"timeframe": row["timeframe"], "template_id": row["template_id"],
                    "params": params, "execution": execution}
        if trades_the_planted_edge(home, run, strategy):
            found.append(row["strategy_id"])
    return found


def audit(home: Path, run: Path, twins: int) -> dict:
    """``audit_null`` of ``run`` with ``twins`` twins; returns the block."""
    from stratforge.research.null_audit import audit_null

    return audit_null(run.name, twins=twins, home=home)


def planted_case(args: argparse.Namespace, root: Path) -> None:
    """Planted markets: real run, twins, the planted strategy against them."""
    from stratforge.data.demo import synthesize_into_store

    beats, reached, twin_production, twin_candidate, twin_runs = [], [], 0, 0, 0
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        started = time.perf_counter()
        home = root / f"planted{seed}"
        synthesize_into_store("MNQ", days=args.days, seed=seed, kind="planted",
                              resolution="1m", home=home)
        run = run_quick(home, "MNQ", args.workers)
        block = audit(home, run, args.twins)
        planted = set(planted_strategies(home, run))
        rows = [s for s in block["strategies"] if s["strategy_id"] in planted]
        production = any(s["tier_name"] == "PRODUCTION" for s in rows)
        beat = any(s["beats_the_twins"] for s in rows)
        best = max((s["dsr"] or 0.0 for s in rows), default=None)
        tiers = block["tiers"]
        twin_production += tiers["PRODUCTION"]["twins_with_any"]
        twin_candidate += tiers["CANDIDATE"]["twins_with_any"]
        twin_runs += block["twins"]
        beats.append(beat)
        reached.append(production)
        print(f"planted seed {seed}: planted strategies {len(rows)}, in PRODUCTION "
              f"{production}, best planted DSR {best if best is None else round(best, 3)} "
              f"vs twins' threshold {block['dsr_threshold']:.3f} -> beats the twins {beat}; "
              f"twins with PRODUCTION {tiers['PRODUCTION']['twins_with_any']}, with CANDIDATE "
              f"{tiers['CANDIDATE']['twins_with_any']} of {block['twins']} "
              f"[{time.perf_counter() - started:.0f} s]", flush=True)
        shutil.rmtree(home)
    if beats:  # --seeds 0 runs the demo case only
        print(f"\n{len(beats)} planted seeds: the planted strategy beats the twins in "
              f"{np.mean(beats):.0%} (target >= 80%), reaches PRODUCTION in "
              f"{np.mean(reached):.0%}; {twin_runs} twin runs: PRODUCTION in "
              f"{twin_production / twin_runs:.0%} (target <= 5%), CANDIDATE in "
              f"{twin_candidate / twin_runs:.0%}")


def demo_case(args: argparse.Namespace, root: Path) -> None:
    """The demo realistic market: the real run's tiers within its twins' spread."""
    from stratforge.data.demo import DEMO_KIND, DEMO_SEED, synthesize_into_store

    started = time.perf_counter()
    home = root / "demo"
    synthesize_into_store("MNQ", seed=DEMO_SEED, kind=DEMO_KIND, home=home)
    run = run_quick(home, "MNQ", args.workers)
    block = audit(home, run, args.demo_twins)
    print(f"\ndemo realistic MNQ market, {block['twins']} twins "
          f"[{time.perf_counter() - started:.0f} s]:")
    inside = True
    for name, tier in block["tiers"].items():
        low, high = min(tier["per_twin"]), max(tier["per_twin"])
        within = low <= tier["real"] <= high
        inside &= within
        print(f"  {name:<10} real {tier['real']:>3}, twins {low} to {high}: "
              f"{'within' if within else 'OUTSIDE'}")
    print(f"  real strategies that beat the twins: {block['beats_the_twins']} (threshold DSR "
          f"{block['dsr_threshold']:.3f}); every tier within the twins' spread: {inside}")


def main() -> None:
    """Parse the arguments and run both cases."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--twins", type=int, default=5)
    parser.add_argument("--days", type=int, default=250)
    parser.add_argument("--demo-twins", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-twins-"))
    started = time.perf_counter()
    try:
        planted_case(args, root)
        if args.demo_twins:
            demo_case(args, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
