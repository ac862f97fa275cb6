"""Per-template exit optimisation with a design-of-experiments schedule, and fission.

``optimize_templates(library, patterns, symbol=...)`` fills every template's ``params`` with
the best exit parameters found on a representative subset of its members, splits templates
whose members want clearly different exits into children (``T0001`` -> ``T0001.1``,
``T0001.2``, ...; the parent is replaced by its children, which are optimised in the same
run) when the split is confirmed on members that were not used to find it, and
checkpoints after every batch of templates so a rerun resumes where the last one
stopped and gives the same result. With a training end (the library's ``train_end``) every
member must lie in the training span and the simulations see only the bars that end by it.
The rules are written down in docs/discovery.md ("Optimisation and fission"); fission is in
:mod:`stratforge.discovery.fission`, what every template's optimisation shares in
:mod:`stratforge.discovery.optimize_context`, and the array work in
:mod:`stratforge.discovery.worker`.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from stratforge.config import resolve_home
from stratforge.data.atomic import atomic_write_json
from stratforge.discovery.doe import (
    EXIT_COLUMNS,
    phase_sizes,
    to_exit_params,
)
from stratforge.discovery.fission import (
    FISSION_ALPHA,
    FISSION_PROPOSALS,
    MAX_FISSION_DEPTH,
    SILHOUETTE_MIN,
    child_template,
    fission,
)
from stratforge.discovery.library import Template, TemplateLibrary
from stratforge.discovery.optimize_context import (
    OptimizeContext,
    derived_seed,
    even_positions,
    search_exits,
)
from stratforge.discovery.span import utc_time
from stratforge.discovery.worker import score_points
from stratforge.errors import ConfigError
from stratforge.instruments import Instrument, get_instrument
from stratforge.progress import ProgressCallback, no_progress
from stratforge.sim.fills import fill_offset
from stratforge.sim.params import Costs

CHECKPOINT_FILE = "checkpoint.json"
CHECKPOINT_FORMAT = "stratforge.optimization_checkpoint"
CHECKPOINT_VERSION = 3
REPORT_COLUMNS: tuple[str, ...] = (
    "template_id", "parent_id", "depth", "members", "members_used", "timeframes", "score",
    "mean_points", "trades", "win_rate", "sharpe_per_trade", "best_phase", *EXIT_COLUMNS,
    "fission_members", "split_feature", "discovery_gain", "silhouette", "k",
    "holdout_members", "holdout_gain", "holdout_p", "split", "children",
)


@dataclass(frozen=True)
class OptimizationResult:
    """What ``optimize_templates`` returns.

    Attributes:
        library: the library with ``params`` filled; split templates replaced by their
            children (in the parent's place), fission metadata under ``"optimization"``.
        report: one row per optimised template (split parents included), ``REPORT_COLUMNS``.
        splits: parent id -> child ids, for every template that split.
        fission_trials: candidate splits put to the held-out confirmation (kept or not);
            count them among the run's trials for deflation.
    """

    library: TemplateLibrary
    report: pd.DataFrame
    splits: dict[str, list[str]]
    fission_trials: int = 0


def _optimise(template: Template, members: pd.DataFrame, ctx: OptimizeContext) -> dict[str, Any]:
    """The template-level design of experiments on the representative subset."""
    s = ctx.settings
    subset = members.iloc[even_positions(len(members), s["members_per_template"])]
    best, phase = search_exits(subset, ctx.space(members),
                               derived_seed(s["random_state"], template.template_id, "template"),
                               template.direction, ctx)
    groups, n = ctx.groups(subset), len(subset)
    stats = score_points(ctx.points(best[None], groups, n, template.direction),
                         s["min_trades"])
    exits = to_exit_params(best[None], ctx.tick)[0]
    params = {name: float(v) for name, v in zip(EXIT_COLUMNS, exits, strict=True)}
    params["max_hold_bars"] = int(params["max_hold_bars"])
    return {"params": params, "score": float(stats.score[0]),
            "mean_points": float(stats.mean_points[0]), "trades": int(stats.trades[0]),
            "win_rate": float(stats.win_rate[0]), "sharpe": float(stats.sharpe_per_trade[0]),
            "phase": phase, "members_used": len(subset)}


def _process(template: Template, ctx: OptimizeContext) -> dict[str, Any]:
    """Optimise one template and run fission on it; the checkpoint record."""
    members = ctx.members(template)
    record = {"template_id": template.template_id, **_optimise(template, members, ctx),
              **fission(template, members, ctx)}
    conditions = record.pop("child_conditions", None) or [None] * len(record["children"])
    record["children"] = [{"template_id": f"{template.template_id}.{i}", "member_ids": g,
                           **({"conditions": c} if c is not None else {})}
                          for i, (g, c) in enumerate(zip(record["children"], conditions,
                                                         strict=True), start=1)]
    return record


@dataclass(frozen=True)
class WorkerInputs:
    """Where a worker process finds what ``optimize_templates`` was given: the saved library
    (for its scalers), the patterns frame as a Parquet file and the home of the bars."""

    library_dir: str
    patterns_path: str
    home: str | None = None


@dataclass(frozen=True)
class TemplateJob:
    """One template to optimise in a worker (a module-level function runs it)."""

    template: Template
    symbol: str
    inputs: WorkerInputs
    settings: str  # the JSON settings (no cost object): part of the worker cache key


_WORKER_CONTEXTS: dict[tuple[Any, ...], OptimizeContext] = {}


def _worker_context(job: TemplateJob) -> OptimizeContext:
    """The job's context, built once per process from files (the last one is kept)."""
    key = (job.inputs, job.symbol, job.settings)
    if key not in _WORKER_CONTEXTS:
        _WORKER_CONTEXTS.clear()
        settings = json.loads(job.settings)
        settings["costs_object"] = Costs(**settings["costs"])
        library = TemplateLibrary.load(job.inputs.library_dir)
        patterns = pd.read_parquet(job.inputs.patterns_path)
        spec = get_instrument(job.symbol, job.inputs.home)
        _WORKER_CONTEXTS[key] = OptimizeContext(library, patterns, job.symbol, job.inputs.home,
                                                spec, None, settings)
    return _WORKER_CONTEXTS[key]


def process_template_job(job: TemplateJob) -> dict[str, Any]:
    """Optimise one template and run fission on it in a worker: its checkpoint record."""
    return _process(job.template, _worker_context(job))


def _fingerprint(library: TemplateLibrary, patterns: pd.DataFrame,
                 settings: dict[str, Any]) -> str:
    """SHA-256 over the library's templates, the member patterns used and the settings."""
    digest = hashlib.sha256()
    clean = {k: v for k, v in settings.items() if k != "costs_object"}
    digest.update(json.dumps(clean, sort_keys=True).encode())
    for t in library.templates:
        digest.update(json.dumps([t.template_id, t.direction, t.timeframes, t.member_ids,
                                  t.centroid_scaled]).encode())
    cols = [c for c in ("pattern_id", "timeframe", "bar", "ts", "z", "sigma", "oracle_mfe",
                        "oracle_mae") if c in patterns.columns]
    digest.update(pd.util.hash_pandas_object(patterns[cols], index=False).to_numpy().tobytes())
    return digest.hexdigest()


def _load_checkpoint(path: Path, fingerprint: str) -> list[dict[str, Any]]:
    """Records of a matching checkpoint; none when absent, unreadable or for other inputs."""
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    if (not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT
            or state.get("version") != CHECKPOINT_VERSION
            or state.get("fingerprint") != fingerprint):
        return []
    return list(state.get("records", []))


def optimize_templates(library: TemplateLibrary, patterns: pd.DataFrame, *, symbol: str,
                       home: Path | str | None = None, members_per_template: int = 20,
                       iterations: int = 60, fission: bool = True, fission_members: int = 50,
                       fission_iterations: int = 20, max_fission_depth: int = MAX_FISSION_DEPTH,
                       min_silhouette: float = SILHOUETTE_MIN,
                       fission_alpha: float = FISSION_ALPHA,
                       fission_proposal: str = "features",
                       costs: Costs | None = None, fill: str = "close", min_trades: int = 5,
                       random_state: int = 0, checkpoint_dir: Path | str | None = None,
                       resume: bool = True, batch_size: int = 8,
                       bars: Mapping[str, pd.DataFrame] | None = None,
                       instrument: Instrument | None = None, train_end: Any = None,
                       executor: Any = None, worker_inputs: WorkerInputs | None = None,
                       progress: ProgressCallback = no_progress) -> OptimizationResult:
    """Optimise exit parameters per template and split templates by fission.

    Args:
        library: the template library; ``patterns``: the pattern finder's frame (needs
            ``NEEDED_COLUMNS``; uses ``sigma`` and the oracle columns when present).
        symbol, home: where the bars are (``load_bars(symbol, tf, home=home)``, once per
            timeframe) and the default checkpoint folder
            ``<home>/discovery/<SYMBOL>/optimization/``.
        members_per_template: size of the representative subset (evenly spaced in time).
        iterations: design-of-experiments evaluations per template (>= 6).
        fission, fission_members, fission_iterations, max_fission_depth, min_silhouette,
            fission_alpha: fission settings (a seeded half of the members, at most
            ``fission_members`` of them, each optimised alone with ``fission_iterations``
            evaluations; a candidate split needs a silhouette of ``min_silhouette`` and is
            kept only when it beats the parent on the other half at one-sided significance
            ``fission_alpha``; templates with ``max_fission_depth`` dots in their id are not
            split again).
        fission_proposal: ``features`` (default: the median cut of the one feature that
            best separates what the discovery members' own optima want) or ``exits``
            (KMeans on those optima, needing ``min_silhouette``); see docs/discovery.md.
        costs: the cost model (default: the instrument's own); ``fill``: entry fill mode;
            ``min_trades``: trades below which the objective shrinks (see the worker).
        random_state: seed of every random choice.
        checkpoint_dir, resume: checkpoint folder; ``resume=False`` starts afresh.
        batch_size: templates per checkpoint.
        bars: optional bars per timeframe (instead of loading them); ``instrument``: the
            instrument (default ``get_instrument(symbol, home)``).
        train_end: the training end (default: the library's ``metadata["train_end"]``; a
            later one than the library's is a ConfigError). The simulations see only the bars
            that end by it, and every member's bar must be one of them.
        executor, worker_inputs: a ``stratforge.parallel`` executor that optimises the
            templates of a batch side by side; its workers rebuild the inputs from
            ``worker_inputs`` (the saved ``library`` and ``patterns``, the bars of
            ``home``), so ``bars`` must be None. The records, the checkpoints and the result
            are the same as without an executor (a batch is accepted in queue order).
        progress: called ``("optimize", done, total, message)`` after every batch.

    Returns:
        An ``OptimizationResult``; rules in docs/discovery.md ("Optimisation and fission").
    """
    if batch_size < 1 or members_per_template < 1 or fission_members < 1:
        raise ConfigError("batch_size, members_per_template and fission_members must be >= 1")
    if fission_proposal not in FISSION_PROPOSALS:
        raise ConfigError(f"fission_proposal must be one of {', '.join(FISSION_PROPOSALS)}, "
                          f"got {fission_proposal!r}")
    if not 0 < fission_alpha < 1:
        raise ConfigError(f"fission_alpha must lie strictly between 0 and 1 (a one-sided "
                          f"significance level such as 0.01), got {fission_alpha!r}")
    phase_sizes(iterations)
    if fission:
        phase_sizes(fission_iterations)
    fill_offset(fill, 1)
    spec = instrument if instrument is not None else get_instrument(symbol, home)
    cost = costs if costs is not None else spec.costs
    end = _training_end(library, train_end)
    settings = {"symbol": symbol.upper(), "members_per_template": int(members_per_template),
                "iterations": int(iterations), "fission": bool(fission),
                "fission_members": int(fission_members),
                "fission_iterations": int(fission_iterations),
                "max_fission_depth": int(max_fission_depth), "costs": cost.to_dict(),
                "fill": fill, "min_trades": int(min_trades), "random_state": int(random_state),
                "min_silhouette": float(min_silhouette), "fission_alpha": float(fission_alpha),
                "fission_proposal": fission_proposal,
                "train_end": None if end is None else end.isoformat(), "costs_object": cost}
    ctx = OptimizeContext(library, patterns, symbol, home, spec, bars, settings)
    folder = Path(checkpoint_dir) if checkpoint_dir is not None else (
        resolve_home(home) / "discovery" / symbol.upper() / "optimization")
    fingerprint = _fingerprint(library, patterns, settings)
    saved = _load_checkpoint(folder / CHECKPOINT_FILE, fingerprint) if resume else []

    queue: deque[Template] = deque(library.templates)
    templates = {t.template_id: t for t in library.templates}
    records: list[dict[str, Any]] = []

    def accept(record: dict[str, Any]) -> None:
        parent = templates[record["template_id"]]
        records.append(record)
        for child in record["children"]:
            templates[child["template_id"]] = child_template(
                child["template_id"], parent, child["member_ids"], ctx,
                child.get("conditions"))
            queue.append(templates[child["template_id"]])

    for record in saved:
        if not queue or queue[0].template_id != record.get("template_id"):
            queue, records = deque(library.templates), []  # inconsistent: start afresh
            break
        queue.popleft()
        accept(record)
    progress("optimize", len(records), len(records) + len(queue),
             f"{len(records)} template(s) from the checkpoint")
    if executor is not None and (worker_inputs is None or bars is not None):
        raise ConfigError("optimize_templates: an executor needs worker_inputs (the saved "
                          "library and patterns) and the bars of home (bars=None)")
    text = json.dumps({k: v for k, v in settings.items() if k != "costs_object"},
                      sort_keys=True)
    while queue:
        batch = [queue.popleft() for _ in range(min(batch_size, len(queue)))]
        if executor is None:
            done = [_process(t, ctx) for t in batch]
        else:
            jobs = [TemplateJob(t, symbol, worker_inputs, text) for t in batch]
            done = [{}] * len(jobs)
            for index, record in executor.imap_unordered(process_template_job, jobs):
                done[index] = record
        for record in done:
            accept(record)
        atomic_write_json(folder / CHECKPOINT_FILE, {
            "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
            "fingerprint": fingerprint, "complete": not queue, "records": records})
        progress("optimize", len(records), len(records) + len(queue),
                 f"optimised {records[-1]['template_id']}")
    return _assemble(library, templates, records, settings)


def _training_end(library: TemplateLibrary, train_end: Any) -> pd.Timestamp | None:
    """The training end to simulate up to: ``train_end`` or the library's own; never later
    than the library's."""
    fitted = library.metadata.get("train_end")
    fitted_end = utc_time(fitted, "the library's train_end") if fitted else None
    if train_end is None:
        return fitted_end
    end = utc_time(train_end)
    if fitted_end is not None and end > fitted_end:
        raise ConfigError(f"optimize_templates: train_end {end.isoformat()} is after the "
                          f"library's training end {fitted_end.isoformat()}; the optimiser "
                          "may not see bars the templates were not trained on")
    return end


def _assemble(library: TemplateLibrary, templates: dict[str, Template],
              records: list[dict[str, Any]], settings: dict[str, Any]) -> OptimizationResult:
    """The final library (parents replaced by their children), the report and the splits."""
    by_id = {r["template_id"]: r for r in records}
    splits = {r["template_id"]: [c["template_id"] for c in r["children"]]
              for r in records if r["children"]}

    def resolve(template_id: str) -> list[Template]:
        if template_id in splits:
            return [t for child in splits[template_id] for t in resolve(child)]
        return [replace(templates[template_id], params=by_id[template_id]["params"])]

    final = [t for original in library.templates for t in resolve(original.template_id)]
    clean = {k: v for k, v in settings.items() if k != "costs_object"}
    trials = sum(bool(r["fission_trial"]) for r in records)
    metadata = {**library.metadata, "optimization": {**clean, "splits": splits,
                                                     "fission_trials": trials}}
    rows = []
    for r in records:
        t = templates[r["template_id"]]
        rows.append({
            "template_id": t.template_id, "parent_id": t.parent_id,
            "depth": t.template_id.count("."), "members": t.members,
            "members_used": r["members_used"], "timeframes": ",".join(t.timeframes),
            "score": r["score"], "mean_points": r["mean_points"], "trades": r["trades"],
            "win_rate": r["win_rate"], "sharpe_per_trade": r["sharpe"],
            "best_phase": r["phase"], **r["params"], "fission_members": r["fission_members"],
            "split_feature": r.get("split_feature", ""),
            "discovery_gain": r.get("discovery_gain", math.nan),
            "silhouette": r["silhouette"], "k": r["k"],
            "holdout_members": r["holdout_members"], "holdout_gain": r["holdout_gain"],
            "holdout_p": r["holdout_p"], "split": bool(r["children"]),
            "children": ",".join(splits.get(t.template_id, []))})
    report = pd.DataFrame(rows, columns=list(REPORT_COLUMNS))
    return OptimizationResult(TemplateLibrary(final, library.scalers, metadata), report, splits,
                              trials)
