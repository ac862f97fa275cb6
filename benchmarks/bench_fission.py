"""Does fission split only on evidence? Split rates on noise and on two planted behaviours.

Targets (issue 19): on random templates (members drawn at random from a null market) fission
keeps a split in at most 5% of templates; on a market with two planted behaviours that want
different exits (``TwoBehaviourRule``) the mixed template splits in at least 80% of seeds, and
its children do better than the parent alone.

    python benchmarks/bench_fission.py [--days 60] [--templates 100] [--members 60]
                                       [--seeds 10] [--seed 0]

* **Null**: one ``null`` MNQ market (1m bars, ``--days``); ``--templates`` templates of
  ``--members`` bars drawn at random (two-sided: each faded), fission to depth 1; the share
  of templates that split, and of those that put a candidate split to the held-out test.
* **Two behaviours**: per seed a ``planted`` MNQ market with ``planted_rule=
  TwoBehaviourRule()``; the template is every event (two-sided: each shock faded), fast
  and slow mixed. Per seed: split or not, the held-out gain of the children's exits over the
  parent's (mean points per held-out member) and its p-value, the purity of the children
  (share of each child's members of its main behaviour), and the children's score and
  per-trade Sharpe (member-weighted, each child optimised on its own members) against the
  parent's.

Member features: ``abs_z`` (distance of the close from its 20-bar mean) and
``abs_velocity_sigma`` (the bar's move) in units of the trailing 60-bar standard deviation of
one-minute moves, ``sigma`` that deviation; the other twelve dimensions are independent noise.
The pattern finder is not run (it would take minutes): these two are the features that carry
a shock's size.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from stratforge.data.synthetic import TwoBehaviourRule, generate_market
from stratforge.discovery.library import FeatureScaler, Template, TemplateLibrary
from stratforge.discovery.optimize import optimize_templates
from stratforge.features.vectors import FEATURE_NAMES
from stratforge.instruments import get_instrument

SETTINGS = {"max_fission_depth": 1, "iterations": 60, "fission_iterations": 20,
            "resume": False, "batch_size": 1000}


def member_frame(bars: pd.DataFrame, rows: np.ndarray, rng: np.random.Generator
                 ) -> pd.DataFrame:
    """A patterns frame for bars ``rows`` (see the module docstring for the features)."""
    close = bars["close"]
    move = close.diff()
    sigma = move.rolling(60, min_periods=20).std().bfill().to_numpy()
    z = ((close - close.rolling(20, min_periods=1).mean()).to_numpy() / sigma)[rows]
    frame = pd.DataFrame({"pattern_id": [f"1m:{r}" for r in rows], "timeframe": "1m",
                          "bar": rows, "ts": bars["ts"].iloc[rows].to_numpy(), "z": z,
                          "sigma": sigma[rows]})
    for name in FEATURE_NAMES:
        frame[name] = rng.normal(0.0, 1.0, len(rows))
    frame["abs_z"] = np.abs(z)
    frame["abs_velocity_sigma"] = np.abs(move.to_numpy()[rows]) / sigma[rows]
    return frame


def library_of(patterns: pd.DataFrame, groups: list[tuple[np.ndarray, int]]) -> TemplateLibrary:
    """One template per (row positions, direction), scaler fitted on every pattern."""
    raw = patterns.loc[:, list(FEATURE_NAMES)].to_numpy()
    scaler = FeatureScaler.fit(raw)
    templates = []
    for i, (rows, direction) in enumerate(groups, start=1):
        templates.append(Template(
            template_id=f"T{i:04d}", timeframes=["1m"], members=len(rows),
            member_ids=sorted(patterns["pattern_id"].iloc[rows].tolist()),
            centroid_scaled=scaler.transform(raw[rows]).mean(axis=0).tolist(),
            centroid_raw=raw[rows].mean(axis=0).tolist(), direction=direction))
    return TemplateLibrary(templates, {"1m": scaler}, {"source": "bench_fission"})


def null_case(args: argparse.Namespace, tmp: str) -> None:
    """Random templates on a null market."""
    started = time.perf_counter()
    market = generate_market(get_instrument("MNQ"), days=args.days, seed=args.seed,
                             kind="null", resolution="1m")
    bars = market.bars
    rng = np.random.default_rng(args.seed)
    n = args.templates * args.members
    rows = np.sort(rng.choice(np.arange(100, len(bars) - 200), n, replace=False))
    patterns = member_frame(bars, rows, rng)
    order = rng.permutation(n).reshape(args.templates, args.members)
    groups = [(np.sort(o), 0) for o in order]  # two-sided, as clustering makes them
    result = optimize_templates(library_of(patterns, groups), patterns, symbol="MNQ",
                                bars={"1m": bars}, checkpoint_dir=f"{tmp}/null",
                                random_state=args.seed, **SETTINGS)
    parents = result.report[result.report["depth"] == 0]
    kept = int(parents["split"].sum())
    print(f"null market: {args.templates} random templates of {args.members} members "
          f"({len(bars):,} 1m bars, {args.days} days)")
    print(f"  candidate splits put to the held-out test (fission trials): "
          f"{result.fission_trials} ({result.fission_trials / args.templates:.0%})")
    print(f"  splits kept: {kept} of {args.templates} = {kept / args.templates:.1%} "
          f"(target <= 5%)  [{time.perf_counter() - started:.0f} s]")


def planted_case(args: argparse.Namespace, tmp: str) -> None:
    """The mixed template of a two-behaviour planted market, over seeds."""
    started = time.perf_counter()
    rule = TwoBehaviourRule()
    rows_out = []
    for seed in range(args.seed, args.seed + args.seeds):
        market = generate_market(get_instrument("MNQ"), days=args.days, seed=seed,
                                 kind="planted", resolution="1m", planted_rule=rule)
        bars = market.bars
        events = pd.DataFrame(market.spec["planted"]["events"])
        stamps = pd.to_datetime(events["ts"], utc=True).dt.as_unit("ns").array.asi8
        rows = np.searchsorted(bars["ts"].dt.as_unit("ns").array.asi8, stamps)
        patterns = member_frame(bars, rows, np.random.default_rng(seed))
        behaviour = dict(zip(patterns["pattern_id"], events["behaviour"], strict=True))
        library = library_of(patterns, [(np.arange(len(rows)), 0)])
        result = optimize_templates(library, patterns, symbol="MNQ", bars={"1m": bars},
                                    checkpoint_dir=f"{tmp}/planted{seed}", random_state=seed,
                                    **SETTINGS)
        report = result.report.set_index("template_id")
        parent = report.loc["T0001"]
        children = report[report["parent_id"] == "T0001"]
        purity = [max(pd.Series([behaviour[m] for m in result.library.get(c).member_ids])
                      .value_counts(normalize=True)) for c in children.index]
        weights = children["members"] / children["members"].sum()
        rows_out.append({
            "seed": seed, "members": int(parent["members"]),
            "fast": sum(b == "fast" for b in behaviour.values()), "split": bool(parent["split"]),
            "feature": parent["split_feature"] or "-",
            "k": int(parent["k"]), "holdout_gain": parent["holdout_gain"],
            "holdout_p": parent["holdout_p"],
            "purity": min(purity) if purity else np.nan,
            "parent_score": parent["score"],
            "children_score": float((weights * children["score"]).sum())
            if len(children) else np.nan,
            "parent_sharpe": parent["sharpe_per_trade"],
            "children_sharpe": float((weights * children["sharpe_per_trade"]).sum())
            if len(children) else np.nan})
    table = pd.DataFrame(rows_out)
    print(f"\ntwo-behaviour planted market ({args.days} days, TwoBehaviourRule defaults), "
          f"mixed template = every event, faded on either side:")
    with pd.option_context("display.width", 160, "display.precision", 3):
        print(table.to_string(index=False))
    split = table["split"]
    better = (table["children_score"] > table["parent_score"])[split]
    print(f"  splits: {int(split.sum())} of {len(table)} seeds = {split.mean():.0%} "
          f"(target >= 80%)")
    print(f"  split seeds whose children score above the parent: {int(better.sum())} of "
          f"{int(split.sum())}; mean held-out gain {table['holdout_gain'][split].mean():.2f} "
          f"points per member  [{time.perf_counter() - started:.0f} s]")


def main() -> None:
    """Parse the arguments and run both cases."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--templates", type=int, default=100)
    parser.add_argument("--members", type=int, default=60)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        null_case(args, tmp)
        planted_case(args, tmp)


if __name__ == "__main__":
    main()
