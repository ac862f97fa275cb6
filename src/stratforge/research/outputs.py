"""``playbook.json`` (the Tier 1 strategies, with everything needed to trade them) and
``summary.json`` (headline numbers and phase timings) of a run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from stratforge.data.atomic import atomic_write_json, json_ready, read_json
from stratforge.discovery.library import TemplateLibrary
from stratforge.features.vectors import FEATURE_NAMES
from stratforge.research.prepare import LIBRARY_DIR
from stratforge.research.runs import PHASES, RunFolder
from stratforge.research.search_phases import OVERFITTING_FILE, VALIDATION_FILE
from stratforge.search.sweep import read_frame

PLAYBOOK_FILE = "playbook.json"
SUMMARY_FILE = "summary.json"
NULL_TWINS_FILE = "null_twins.json"
"""Written by ``stratforge audit null`` (research.null_audit); copied into the summary."""
BEST_STRATEGIES = 10
TIER_ORDER: tuple[str, ...] = ("PRODUCTION", "CANDIDATE", "UNPROVEN", "TOXIC")
MEASURED_RATES: dict[str, Any] = {
    "command": "python benchmarks/bench_false_discovery.py",
    "measured": "2026-12-05",
    "null_runs": 20, "null_any_production": 0.0, "null_any_candidate": 0.0,
    "planted_runs": 10, "planted_found": 0.9,
    "note": "10 null synthetic MNQ markets and 10 GARCH random walks of 60 days, 10 planted "
            "MNQ markets of 250 days, stratforge run --quick (--planted-runs 10); targets: "
            "null PRODUCTION <= 5%, CANDIDATE <= 10%, planted >= 80%",
}
"""The false-discovery rates and power of the default pipeline (``--quick`` sizes) as last
measured by ``benchmarks/bench_false_discovery.py``; docs/research.md has the history."""


_clean = json_ready


def _metrics(row: pd.Series, prefix: str) -> dict[str, Any]:
    return {"trades": int(row[f"{prefix}_trades"]), "win_rate": row[f"{prefix}_win_rate"],
            "pnl": row[f"{prefix}_pnl"], "sharpe": row[f"{prefix}_sharpe"],
            "sharpe_per_trade": row[f"{prefix}_sharpe_per_trade"]}


def _strategy(row: pd.Series) -> dict[str, Any]:
    return {"strategy_id": row["strategy_id"], "template_id": row["template_id"],
            "timeframe": row["timeframe"], "direction": int(row["direction"]),
            "tier": int(row["tier"]), "tier_name": row["tier_name"],
            "params": json.loads(row["params"]), "n_trials": int(row["n_trials"]),
            "in_sample": _metrics(row, "is"), "out_of_sample": _metrics(row, "oos"),
            "oos_test": {"p_value": row["oos_p_value"], "accepted": bool(row["oos_accepted"])},
            "dsr": row["dsr"], "dsr_note": row["dsr_note"], "pbo": row["pbo"],
            "pbo_note": row["pbo_note"], "reasons": row["reasons"],
            "walk_forward": {"folds": int(row["wf_folds"]),
                             "positive_folds": int(row["wf_positive_folds"]),
                             "oos_pnl": row["wf_oos_pnl"],
                             "efficiency": row["wf_efficiency"],
                             "fold_pnl": json.loads(row["wf_fold_pnl"]),
                             "fold_efficiency": json.loads(row["wf_fold_efficiency"]),
                             "fold_params": json.loads(row["wf_fold_params"])}}


def load_validation(run: RunFolder) -> pd.DataFrame | None:
    """The run's validation table, or None before validation."""
    path = run.path / VALIDATION_FILE
    return read_frame(path) if path.exists() else None


def load_overfitting(run: RunFolder) -> dict[str, Any] | None:
    """The run's overfitting block (trials raw and effective, the DSR threshold, the
    out-of-sample test, the run PBO) with the measured false-discovery rates of the default
    pipeline, or None before validation."""
    path = run.path / OVERFITTING_FILE
    if not path.exists():
        return None
    return {**read_json(path), "measured_rates": MEASURED_RATES}


def stated_parameters(params: dict[str, float], tick_size: float, yardstick_ticks: float
                      ) -> dict[str, dict[str, float]]:
    """Each parameter in every unit a trader reads: distances in ticks, price units and
    yardsticks (multiples of the timeframe's in-sample median true range), the hold in bars."""
    out: dict[str, dict[str, float]] = {}
    for name, value in params.items():
        v = float(value)
        if name == "max_hold_bars":
            out[name] = {"bars": v}
            continue
        ticks = v / tick_size if name == "trail_widen_points" else v
        out[name] = {"ticks": ticks, "price": ticks * tick_size,
                     "yardsticks": ticks / yardstick_ticks}
    return out


def write_playbook(run: RunFolder, home: Path | str | None) -> int:
    """Write ``playbook.json`` with every Tier 1 strategy; returns how many."""
    c = run.config
    market = run.info("data")["market"]
    frame = load_validation(run)
    library = TemplateLibrary.load(run.path / LIBRARY_DIR)
    strategies = []
    for _, row in (frame[frame["tier"] == 1] if frame is not None else pd.DataFrame()).iterrows():
        template = library.get(row["template_id"])
        entry = _strategy(row)
        entry.update({
            "symbol": c.symbol,
            "template": {"centroid_scaled": template.centroid_scaled,
                         "centroid_raw": template.centroid_raw, "members": template.members,
                         "feature_names": list(FEATURE_NAMES),
                         "scaler": library.scalers[row["timeframe"]].to_json(),
                         "hierarchy": library.metadata.get("hierarchy")},
            "matching": {"threshold": c.match_threshold, "bars": c.match_bars,
                         "rule": "distance to the scaled centroid below the threshold, z sign "
                                 "against the direction"},
            "parameters": stated_parameters(
                entry["params"], market["tick_size"],
                market["per_timeframe"][row["timeframe"]]["yardstick_ticks"]),
            "execution": {"fill": c.fill, "cost_model": market["cost_model"]},
        })
        strategies.append(entry)
    atomic_write_json(run.path / PLAYBOOK_FILE,
                      _clean({"run_id": run.run_id, "symbol": c.symbol,
                              "data": _data(run), "market": public_market(market),
                              "strategies": strategies}))
    return len(strategies)


def public_market(market: dict[str, Any]) -> dict[str, Any]:
    """The market block as summaries state it (without the jobs' internal space rows)."""
    frames = {tf: {k: v for k, v in block.items() if k != "space_rows"}
              for tf, block in market.get("per_timeframe", {}).items()}
    return {**{k: v for k, v in market.items() if k != "per_timeframe"},
            "per_timeframe": frames}


def _data(run: RunFolder) -> dict[str, Any]:
    info = run.info("data")
    return {k: info[k] for k in ("first", "last", "train_end", "bars", "demo_market",
                                 "synthetic")
            if k in info}


def write_summary(run: RunFolder) -> dict[str, Any]:
    """Write ``summary.json`` (run id, config, data span and split, per-phase figures and
    timings, the patterns per discovery level (``discovery_levels``), tier counts, best
    strategies, and the ``null_twins`` block when the run was audited on null twins) and
    return it."""
    frame = load_validation(run)
    phases = {p: {k: v for k, v in run.info(p).items() if k not in ("market", "levels")}
              for p in PHASES if run.done(p)}
    summary: dict[str, Any] = {
        "run_id": run.run_id, "symbol": run.config.symbol,
        "created": read_json(run.path / "config.json").get("created"),
        "config": run.config.model_dump(mode="json"), "data": _data(run),
        "market": public_market(run.info("data").get("market", {})) if run.done("data")
        else None, "phases": phases,
        "complete": all(run.done(p) for p in PHASES),
        "seconds": round(sum(float(p.get("seconds", 0.0)) for p in phases.values()), 3),
    }
    if run.done("discovery") and "levels" in run.info("discovery"):
        summary["discovery_levels"] = run.info("discovery")["levels"]
    overfitting = load_overfitting(run)
    if overfitting is not None:
        summary["overfitting"] = overfitting
    if frame is not None:
        counts = frame["tier_name"].value_counts().to_dict()
        summary["tiers"] = {name: int(counts.get(name, 0)) for name in TIER_ORDER}
        summary["best"] = [_strategy(row) for _, row in frame.head(BEST_STRATEGIES).iterrows()]
    if (run.path / NULL_TWINS_FILE).exists():
        summary["null_twins"] = read_json(run.path / NULL_TWINS_FILE)
    summary = _clean(summary)
    atomic_write_json(run.path / SUMMARY_FILE, summary)
    return summary


HEADLINE_TIERS = ("PRODUCTION", "CANDIDATE")


def null_headline(block: dict[str, Any]) -> str:
    """The block at a glance: 'on 10 null twins of your data: PRODUCTION in 0, CANDIDATE
    in 1' (how many twins reached each tier at least once)."""
    tiers = block.get("tiers") or {}
    reached = ", ".join(f"{name} in {int(tiers[name]['twins_with_any'])}"
                        for name in HEADLINE_TIERS if name in tiers)
    return f"on {block['twins']} null twins of your data: {reached}"
