"""The search phases of a run: Monte Carlo sweep, ANOVA, Thompson refinement, validation."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stratforge.costs import COST_FIELDS
from stratforge.data.atomic import atomic_write_json, json_ready
from stratforge.discovery.library import TemplateLibrary
from stratforge.parallel import Executor
from stratforge.progress import ProgressCallback
from stratforge.research.optimize_phase import seed_centre
from stratforge.research.prepare import LIBRARY_DIR, matches_path, run_space
from stratforge.research.runs import RunFolder
from stratforge.search.anova import analyze, write_anova
from stratforge.search.brain import BayesianBrain
from stratforge.search.judgement import judge_run
from stratforge.search.refine import RefineSettings, thompson_refine
from stratforge.search.sweep import (
    BRAIN_FILE,
    SUMMARIES_FILE,
    PairJob,
    read_frame,
    run_sweep,
    summary_columns,
    write_frame,
)
from stratforge.search.tiers import TierRules
from stratforge.search.validation import (
    ValidationJob,
    ValidationSettings,
    validate_job,
    validation_frame,
)

SWEEP_DIR = "sweep"
REFINE_DIR = "refine"
VALIDATION_FILE = "validation.parquet"
OVERFITTING_FILE = "overfitting.json"
CURVES_FILE = "curves.parquet"
CURVE_STRATEGIES = 10


def _job(run: RunFolder, home: Path | str | None, train_end_ns: int, template_id: str,
         timeframe: str, **extra: Any) -> PairJob:
    c = run.config
    settings = {"n_sets": c.mc_iters, "end_ns": train_end_ns, **extra}
    market = run.info("data")["market"]
    costs = {k: v for k, v in market["cost_model"].items() if k in COST_FIELDS}
    space = tuple(tuple(row) for row in market["per_timeframe"][timeframe]["space_rows"])
    return PairJob(symbol=c.symbol, timeframe=timeframe, home=str(home_path(home)),
                   matches_path=str(matches_path(run, timeframe)), template_id=template_id,
                   sampler=c.sampler, seed=c.seed, space=space, costs=costs, fill=c.fill,
                   **settings)


def home_path(home: Path | str | None) -> Path:
    """The resolved home folder (jobs carry it as a string)."""
    from stratforge.config import resolve_home
    return resolve_home(home)


def _data_key(run: RunFolder) -> dict[str, Any]:
    """What the jobs' data is: the run's matches files (by content) and settings."""
    digests = {}
    for tf in run.config.run_timeframes:
        digests[tf] = hashlib.sha256(matches_path(run, tf).read_bytes()).hexdigest()
    return {"matches": digests, "settings": run.config.result_settings()}


def sweep_phase(run: RunFolder, home: Path | str | None, executor: Executor,
                resume: bool, progress: ProgressCallback) -> dict[str, Any]:
    """Every (template, timeframe) pair with ``mc_iters`` parameter sets, in sample; a
    ``seed_share`` of an optimised template's sets lie around its optimum."""
    train_end = run.info("data")["train_end_ns"]
    library = TemplateLibrary.load(run.path / LIBRARY_DIR)
    c = run.config
    jobs = []
    for tf in c.run_timeframes:
        space = run_space(run, tf)
        for t in library:
            centre = seed_centre(run, library, t.template_id, tf, space)
            seeded = {} if centre is None else {"centre": centre,
                                                "centre_share": c.seed_share,
                                                "centre_scale": c.seed_scale}
            jobs.append(_job(run, home, train_end, t.template_id, tf, **seeded))
    result = run_sweep(jobs, folder=run.path / SWEEP_DIR, executor=executor, resume=resume,
                       checkpoint_every=run.config.checkpoint_every,
                       extra_key=_data_key(run), progress=progress)
    return {"pairs": result.pairs, "backtests": result.backtests,
            "resumed_pairs": result.resumed_pairs}


def load_summaries(run: RunFolder) -> pd.DataFrame:
    """The sweep's summaries of the run."""
    return read_frame(run.path / SWEEP_DIR / SUMMARIES_FILE)


def anova_phase(run: RunFolder) -> dict[str, Any]:
    """ANOVA of the sweep summaries: ``anova.json`` and ``anova_report.txt``."""
    summaries = with_trail_regime(run, load_summaries(run)).rename(
        columns={"template_id": "template"})
    result = analyze(summaries, min_trades=run.config.anova_min_trades,
                     top_n=run.config.top_combos)
    write_anova(result, run.path)
    return {"rows": result.n_rows, "top_combos": len(result.top_combos)}


def with_trail_regime(run: RunFolder, summaries: pd.DataFrame) -> pd.DataFrame:
    """Summaries plus ``trail_widen_yardsticks``: the widen threshold in yardsticks of the
    row's timeframe (what the ANOVA's ``trail_regime`` factor buckets)."""
    if "trail_widen_points" not in summaries.columns:
        return summaries
    market = run.info("data")["market"]
    yardstick = {tf: block["yardstick_ticks"] * market["tick_size"]
                 for tf, block in market["per_timeframe"].items()}
    out = summaries.copy()
    out["trail_widen_yardsticks"] = (out["trail_widen_points"].to_numpy(dtype=np.float64)
                                     / out["timeframe"].map(yardstick).to_numpy(np.float64))
    return out


def top_combos(run: RunFolder) -> list[tuple[str, str]]:
    """The ANOVA's top combos (template, timeframe), best first."""
    payload = json.loads((run.path / "anova.json").read_text())
    return [(str(r["template"]), str(r["timeframe"])) for r in payload.get("top_combos", [])]


def refine_phase(run: RunFolder, home: Path | str | None, executor: Executor, resume: bool,
                 progress: ProgressCallback) -> dict[str, Any]:
    """Thompson refinement of the top combos, from the sweep's brain."""
    c = run.config
    combos = top_combos(run)
    train_end = run.info("data")["train_end_ns"]

    def make_job(template_id: str, timeframe: str, params: pd.DataFrame,
                 first_set_id: int) -> PairJob:
        table = {k: params[k].tolist() for k in params.columns}
        return _job(run, home, train_end, template_id, timeframe, params=table,
                    first_set_id=first_set_id, n_sets=0)

    settings = RefineSettings(budget=c.refine_budget, rounds=c.refine_rounds,
                              min_per_combo=c.refine_min, scale=c.mutation_scale,
                              proposer=c.proposer, min_trades=c.min_trades, seed=c.seed)
    spaces = {tf: run_space(run, tf) for tf in c.run_timeframes}
    brain = BayesianBrain.load(run.path / SWEEP_DIR / BRAIN_FILE)
    key = json.dumps(_data_key(run), sort_keys=True)
    if not combos or c.refine_budget == 0:
        return {"combos": 0, "trials": 0, "rounds": 0}
    result = thompson_refine(combos, load_summaries(run), brain, make_job=make_job,
                             spaces=spaces, settings=settings, folder=run.path / REFINE_DIR,
                             executor=executor, resume=resume, job_key=key, progress=progress)
    best = result.history[-1] if result.history else {}
    return {"combos": len(combos), "trials": len(result.trials),
            "rounds": len(result.history), "best_key": best.get("best_key"),
            "best_sharpe_per_trade": best.get("best_sharpe")}


def all_trials(run: RunFolder) -> pd.DataFrame:
    """Sweep summaries plus refinement trials (when the run has them)."""
    summaries = load_summaries(run)
    path = run.path / REFINE_DIR / "trials.parquet"
    if path.exists():
        trials = read_frame(path).drop(columns=["round"])
        summaries = pd.concat([summaries, trials], ignore_index=True)
    return summaries


def validation_phase(run: RunFolder, home: Path | str | None, executor: Executor,
                     progress: ProgressCallback) -> dict[str, Any]:
    """Validate every pair with enough in-sample trades (one job each, through the
    executor); write ``validation.parquet`` and the equity curves of the best strategies
    (``curves.parquet``)."""
    c = run.config
    trials = all_trials(run)
    names = tuple(summary_columns(trials))
    library = TemplateLibrary.load(run.path / LIBRARY_DIR)
    train_end = run.info("data")["train_end_ns"]
    settings = ValidationSettings(folds=c.folds, min_is_trades=c.min_is_trades,
                                  pbo_configs=c.pbo_configs, pbo_splits=c.pbo_splits,
                                  seed=c.seed, rules=TierRules.from_mapping(c.tiers))
    eligible = trials[trials["trades"] >= c.min_is_trades][["template_id", "timeframe"]]
    pairs = set(map(tuple, eligible.drop_duplicates().to_numpy().tolist()))
    groups = {key: rows.reset_index(drop=True)
              for key, rows in trials.groupby(["template_id", "timeframe"], sort=False)}
    jobs = [ValidationJob(_job(run, home, train_end, t.template_id, tf, end_ns=None),
                          t.direction, train_end, groups[(t.template_id, tf)], names, settings)
            for tf in c.run_timeframes for t in library if (t.template_id, tf) in pairs]
    results: list[Any] = [None] * len(jobs)
    for done, (index, result) in enumerate(executor.imap_unordered(validate_job, jobs), 1):
        results[index] = result
        progress("validation", done, len(jobs), f"{result.row['strategy_id']}: evidence "
                                                "gathered")
    extra = int(run.info("optimize").get("trials", 0))
    rows, overfitting = judge_run(trials, results, settings, extra_trials=extra)
    frame = validation_frame(rows)
    trades = {r.row["strategy_id"]: (r.is_trades, r.oos_trades) for r in results}
    write_frame(run.path / VALIDATION_FILE, frame)
    write_frame(run.path / CURVES_FILE, _curves(frame, trades))
    atomic_write_json(run.path / OVERFITTING_FILE, json_ready(overfitting))
    tiers = frame["tier_name"].value_counts().to_dict()
    return {"candidates": len(frame),
            "tiers": {name: int(tiers.get(name, 0)) for name in
                      ("PRODUCTION", "CANDIDATE", "UNPROVEN", "TOXIC")}}


def _curves(frame: pd.DataFrame, trades: dict[str, tuple[pd.DataFrame, pd.DataFrame]]
            ) -> pd.DataFrame:
    parts = []
    for strategy_id in frame["strategy_id"].head(CURVE_STRATEGIES):
        for segment, table in zip(("in_sample", "out_of_sample"), trades[strategy_id],
                                  strict=True):
            parts.append(pd.DataFrame({
                "strategy_id": pd.array([strategy_id] * len(table), dtype="str"),
                "segment": pd.array([segment] * len(table), dtype="str"),
                "exit_time": table["exit_time"].to_numpy(),
                "pnl": table["pnl"].to_numpy(dtype=np.float64)}))
    if not parts:
        return pd.DataFrame({"strategy_id": pd.array([], dtype="str"),
                             "segment": pd.array([], dtype="str"),
                             "exit_time": pd.DatetimeIndex([], tz="UTC"),
                             "pnl": np.empty(0)})
    out = pd.concat(parts, ignore_index=True)
    out["exit_time"] = pd.to_datetime(out["exit_time"], utc=True)
    return out
