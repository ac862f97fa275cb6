"""Does fission split only on evidence? Split rates on noise and on two planted behaviours.

Targets (issue 19): on random templates (members drawn at random from a null market) fission
keeps a split in at most 5% of templates; on a market with two planted behaviours that want
different exits (``TwoBehaviourRule``) the mixed template splits in at least 80% of seeds, and
its children do better than the parent alone (and reach a higher tier out of sample).

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

* **Tiers out of sample**: per seed the same market, the template = the events of the first
  half (the in-sample half of a run); fission and every exit are chosen on that half, then
  the tier rules (``search.tiers``) judge the second half: the parent alone (fission off) and
  its children (Benjamini-Hochberg over them), the DSR deflated by ``TIER_TRIALS`` effective
  trials, PBO left out (each strategy is one parameter set). Per seed: the best tier and DSR
  of each, and whether the children reach a higher tier than the parent alone.

Member features: ``abs_z`` (distance of the close from its 20-bar mean) and
``abs_velocity_sigma`` (the bar's move) in units of the trailing 60-bar standard deviation of
one-minute moves, ``sigma`` that deviation; the other twelve dimensions are independent noise.
The pattern finder is not run (it would take minutes): these two are the features that carry
a shock's size.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
import pandas as pd

from stratforge.data.synthetic import TwoBehaviourRule, generate_market
from stratforge.discovery.doe import EXIT_COLUMNS
from stratforge.discovery.library import FeatureScaler, Template, TemplateLibrary
from stratforge.discovery.optimize import optimize_templates
from stratforge.features.vectors import FEATURE_NAMES
from stratforge.instruments import get_instrument
from stratforge.search.tiers import Evidence

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


TIER_TRIALS = 60.0
"""Effective trials the out-of-sample DSR is deflated by in the tier comparison: what the
planted runs of ``benchmarks/bench_false_discovery.py`` estimate (55 to 68)."""


def evidence(bars: pd.DataFrame, rows: np.ndarray, sides: np.ndarray, params: dict,
             train_end: pd.Timestamp, costs) -> tuple[Evidence, float]:
    """The tier evidence of one strategy (its exit ``params`` on the events at ``rows``):
    in sample before ``train_end``, out of sample from it; and its out-of-sample p-value."""
    from stratforge.search.judgement import oos_p_value
    from stratforge.search.validation import exit_params, per_trade_sharpe
    from stratforge.sim import simulate
    from stratforge.sim.overfitting import deflated_sharpe_ratio, return_moments

    stamps = bars["ts"].iloc[rows]
    parts = {}
    for name, keep in (("is", (stamps < train_end).to_numpy()),
                       ("oos", (stamps >= train_end).to_numpy())):
        trades = simulate(bars, rows[keep], sides[keep], exit_params(params), instrument="MNQ",
                          costs=costs)
        parts[name] = trades
    pnl = parts["oos"]["pnl"].to_numpy()
    day = bars["ts"].iloc[parts["oos"]["entry_bar"].to_numpy()].dt.date.to_numpy()
    daily = pd.Series(pnl).groupby(day).sum()
    sharpe = (float(daily.mean() / daily.std() * np.sqrt(252))
              if len(daily) > 1 and daily.std() > 0 else float("nan"))
    dsr, note = float("nan"), "too few trades"
    if len(pnl) >= 30:
        moments = return_moments(pnl)
        moments = moments._replace(kurtosis=max(moments.kurtosis, 1.0 + moments.skew ** 2))
        dsr = float(deflated_sharpe_ratio(moments, n_trials=TIER_TRIALS,
                                          sharpe_variance=1.0 / len(pnl)))
        note = ""
    is_pnl = parts["is"]["pnl"].to_numpy()
    p_value = oos_p_value(pnl)
    return Evidence(is_pnl=float(is_pnl.sum()), is_sharpe=per_trade_sharpe(is_pnl),
                    oos_trades=len(pnl), oos_win_rate=float((pnl > 0).mean()) if len(pnl)
                    else float("nan"), oos_pnl=float(pnl.sum()), oos_sharpe=sharpe, dsr=dsr,
                    dsr_note=note, pbo=0.0, pbo_note="", oos_accepted=False,
                    oos_p_value=p_value), p_value


def tier_case(args: argparse.Namespace, tmp: str) -> None:
    """The mixed template alone against its children, out of sample, by the tier rules."""
    from stratforge.costs import Costs
    from stratforge.search.tiers import TIER_NAMES, TierRules, assign_tier, benjamini_hochberg

    started = time.perf_counter()
    rules, costs = TierRules(), Costs(commission=0.62, spread_ticks=1, slippage_ticks=1)
    rows_out = []
    for seed in range(args.seed, args.seed + args.seeds):
        market = generate_market(get_instrument("MNQ"), days=args.days, seed=seed,
                                 kind="planted", resolution="1m",
                                 planted_rule=TwoBehaviourRule())
        bars = market.bars
        events = pd.DataFrame(market.spec["planted"]["events"])
        stamps = pd.to_datetime(events["ts"], utc=True).dt.as_unit("ns").array.asi8
        rows = np.searchsorted(bars["ts"].dt.as_unit("ns").array.asi8, stamps)
        patterns = member_frame(bars, rows, np.random.default_rng(seed))
        sides = -np.sign(patterns["z"].to_numpy()).astype(np.int64)
        train_end = bars["ts"].iloc[len(bars) // 2]
        # the template is the in-sample events: what discovery would have clustered
        in_sample = np.flatnonzero((patterns["ts"] < train_end).to_numpy())
        library = library_of(patterns, [(in_sample, 0)])
        result = optimize_templates(library, patterns, symbol="MNQ", bars={"1m": bars},
                                    checkpoint_dir=f"{tmp}/tiers{seed}", random_state=seed,
                                    train_end=train_end, **SETTINGS)
        parent = result.report.set_index("template_id").loc["T0001"]
        runs = {"parent": [(parent[list(EXIT_COLUMNS)].to_dict(), np.ones(len(rows), bool))]}
        runs["children"] = [(result.library.get(c).params, result.library.get(c).admits(patterns))
                            for c in result.splits.get("T0001", [])]
        best = {}
        for name, strategies in runs.items():
            # a bar with z = 0 has no side to fade (as in matching)
            found = [evidence(bars, rows[keep & (sides != 0)], sides[keep & (sides != 0)],
                              params, train_end, costs) for params, keep in strategies]
            if not found:
                continue
            # each run tests its own strategies out of sample: Benjamini-Hochberg over them
            accepted = benjamini_hochberg(np.array([p for _, p in found]), rules.candidate_fdr)
            tiers = [assign_tier(replace(e, oos_accepted=bool(a)), rules)[0]
                     for (e, _), a in zip(found, accepted, strict=True)]
            best[name] = min(tiers)
            best[f"{name}_dsr"] = max((e.dsr for e, _ in found), default=float("nan"))
        rows_out.append({"seed": seed, "split": bool(parent["split"]),
                         "parent_tier": TIER_NAMES[best["parent"]],
                         "parent_dsr": best["parent_dsr"],
                         "children_tier": TIER_NAMES[best["children"]] if "children" in best
                         else "-", "children_dsr": best.get("children_dsr", float("nan")),
                         "higher": "children" in best and best["children"] < best["parent"]})
    table = pd.DataFrame(rows_out)
    print(f"\ntiers out of sample ({args.days} days, fission and exits on the first half, "
          f"tier rules on the second; DSR deflated by {TIER_TRIALS:g} trials; PBO not part of "
          f"the comparison: one parameter set per strategy):")
    with pd.option_context("display.width", 160, "display.precision", 3):
        print(table.to_string(index=False))
    split = table["split"]
    room = split & (table["parent_tier"] != "PRODUCTION")
    print(f"  splits: {int(split.sum())} of {len(table)}; of those, the best child's tier above "
          f"the parent's: {int(table['higher'][split].sum())}, the same: "
          f"{int((table['children_tier'] == table['parent_tier'])[split].sum())}; where the "
          f"parent alone is below PRODUCTION: children higher in {int(table['higher'][room].sum())}"
          f" of {int(room.sum())}  [{time.perf_counter() - started:.0f} s]")


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
        tier_case(args, tmp)


if __name__ == "__main__":
    main()
