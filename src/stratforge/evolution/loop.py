"""The evolution loop: train, queue simulations, prune, retrain, until a stop reason.

Generation 0 trains the seed model on every candidate feature. Each later generation prunes
its parent's features by the parent's permutation importance, fingerprints the subset, trains
it (or reuses the stored model) while the parent's simulations run, then waits for them and
submits its own grid with priority = the parent's best validation SQN (0 for generation 0),
so children of strong parents are simulated first when many runs share the queue.

A generation's best grid point is chosen on the validation span (highest SQN among points
with at least ``MIN_SELECT_TRADES`` validation trades); its test-span (out-of-sample)
metrics are the generation's ``best_sqn`` / ``best_profit_factor`` and what the promotion
criteria judge. Backends decide where simulations run: in this process
(``LocalBackend``) or as queued jobs (the ops layer's backend).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from stratforge.config import resolve_home
from stratforge.evolution.config import EvolutionConfig, GridPoint
from stratforge.evolution.fingerprint import simulation_fingerprint
from stratforge.evolution.modelstore import load_meta, load_signals
from stratforge.evolution.pipeline import ModelResult, PreparedData, train_model
from stratforge.evolution.pruning import (
    STOP_MAX_GENERATIONS,
    STOP_TRAINING_ERROR,
    prune_features,
)
from stratforge.evolution.simcache import cached_simulation, store_simulation
from stratforge.evolution.simulation import execution_settings, simulate_point
from stratforge.instruments import get_instrument
from stratforge.progress import ProgressCallback, no_progress

MIN_SELECT_TRADES = 10
TOP_RESULTS = 5
PRIORITY_SCALE = 1000
"""Queue priorities are integers: priority = round(SQN * PRIORITY_SCALE)."""


@dataclass
class GenerationPlan:
    """What a backend needs to simulate one generation."""

    generation: int
    model: str
    parent: str | None
    features: list[str]
    points: list[GridPoint]
    simulations: list[str]   # simulation fingerprints, one per point
    priority: int


@dataclass
class GenerationSummary:
    """A finished generation: its model, job counts and best results."""

    generation: int
    model: str
    parent: str | None
    features: list[str]
    reused: bool
    jobs_total: int
    best: dict[str, Any] | None
    top_results: list[dict[str, Any]]
    promoted: bool = False
    failed_criteria: list[str] = field(default_factory=list)

    @property
    def best_sqn(self) -> float | None:
        """Out-of-sample SQN of the validation-chosen grid point."""
        return (self.best or {}).get("sqn")

    @property
    def best_profit_factor(self) -> float | None:
        """Out-of-sample profit factor of the validation-chosen grid point."""
        return (self.best or {}).get("profit_factor")

    @property
    def best_validation_sqn(self) -> float | None:
        """Validation SQN of the chosen grid point (what priorities are made of)."""
        return (self.best or {}).get("validation_sqn")


class Backend(Protocol):
    """Where simulations run."""

    def submit(self, plan: GenerationPlan) -> None:
        """Start (or rejoin) the simulations of a generation."""

    def wait(self, plan: GenerationPlan) -> list[dict[str, Any]]:
        """Block until the generation's simulations are done; their results in plan order."""

    def generation_done(self, plan: GenerationPlan, summary: GenerationSummary) -> None:
        """Record a finished generation."""

    def model_trained(self, model: ModelResult) -> None:
        """Record a model (trained or reused)."""


def priority_of(sqn: float | None) -> int:
    """The integer queue priority of a best SQN (0 when unknown)."""
    if sqn is None or not math.isfinite(sqn):
        return 0
    return round(max(-1e6, min(1e6, sqn)) * PRIORITY_SCALE)


@lru_cache(maxsize=4)
def _model_inputs(model: str, home: str) -> tuple[dict[str, np.ndarray], float, float]:
    """A stored model's signal arrays (read-only), prediction scale and centre, read once per
    process for all its grid points: a model folder never changes once renamed into place."""
    meta = load_meta(model, home)
    signals = load_signals(model, home)
    for values in signals.values():
        values.flags.writeable = False
    return (signals, float(meta["prediction_scale"]),
            float(meta.get("prediction_centre", 0.0)))


def run_simulation(model: str, point: GridPoint, config: EvolutionConfig,
                   home: Path | str | None = None) -> dict[str, Any]:
    """One grid point of a stored model (from the simulation cache when done before)."""
    instrument = get_instrument(config.symbol, home)
    fingerprint = simulation_fingerprint(model, point.to_json(),
                                         execution_settings(config, instrument))
    cached = cached_simulation(model, fingerprint, home)
    if cached is not None:
        return {**cached, "cached": True}
    signals, scale, centre = _model_inputs(model, str(resolve_home(home)))
    result = simulate_point(signals, scale, point, config, instrument,
                            prediction_centre=centre)
    result = {"fingerprint": fingerprint, "model": model, **result}
    store_simulation(model, fingerprint, result, home)
    return {**result, "cached": False}


def flat_result(result: dict[str, Any]) -> dict[str, Any]:
    """A grid point with its test metrics and ``validation_*`` metrics in one dict."""
    test = result.get("test") or {}
    validation = result.get("validation") or {}
    keys = ("sqn", "profit_factor", "trades", "weekly_consistency", "total_pnl", "win_rate",
            "buy_hold_pnl", "beats_buy_and_hold", "max_drawdown")
    return {**result["point"], **{k: test.get(k) for k in keys},
            **{f"validation_{k}": validation.get(k) for k in
               ("sqn", "profit_factor", "trades", "total_pnl")},
            "simulation": result.get("fingerprint")}


def summarise(plan: GenerationPlan, results: list[dict[str, Any]], config: EvolutionConfig,
              reused: bool) -> GenerationSummary:
    """Best and top grid points (chosen on validation) and the promotion verdict."""
    flat = [flat_result(r) for r in results]

    def key(row: dict[str, Any]) -> float:
        sqn = row.get("validation_sqn")
        return sqn if sqn is not None and math.isfinite(sqn) else -math.inf

    eligible = [r for r in flat if (r.get("validation_trades") or 0) >= MIN_SELECT_TRADES]
    ranked = sorted(eligible, key=lambda r: (-key(r), r["threshold"], r["z_cutoff"],
                                             r["regime"]))
    best = ranked[0] if ranked else None
    summary = GenerationSummary(plan.generation, plan.model, plan.parent, plan.features,
                                reused, len(plan.points), best, ranked[:TOP_RESULTS])
    if best is not None:
        chosen = next(r for r in results if r.get("fingerprint") == best["simulation"])
        summary.failed_criteria = config.promotion.check(chosen["test"])
        summary.promoted = not summary.failed_criteria
    else:
        summary.failed_criteria = [f"no grid point has {MIN_SELECT_TRADES} validation trades"]
    return summary


@dataclass
class EvolutionOutcome:
    """A finished run: its generations (in order) and why it stopped."""

    generations: list[GenerationSummary]
    stop_reason: str
    stop_detail: str = ""

    def to_json(self) -> dict[str, Any]:
        """The headline numbers of the run."""
        best = [g for g in self.generations if g.best_sqn is not None]
        top = max(best, key=lambda g: g.best_sqn) if best else None
        return {"generations": len(self.generations), "stop_reason": self.stop_reason,
                "stop_detail": self.stop_detail,
                "best_sqn": top.best_sqn if top else None,
                "best_profit_factor": top.best_profit_factor if top else None,
                "best_model": top.model if top else None,
                "promoted": [g.model for g in self.generations if g.promoted]}


def _plan(generation: int, model: ModelResult, parent: str | None, config: EvolutionConfig,
          priority: int, home: Path | str | None) -> GenerationPlan:
    points = config.grid
    execution = execution_settings(config, get_instrument(config.symbol, home))
    sims = [simulation_fingerprint(model.fingerprint, p.to_json(), execution) for p in points]
    return GenerationPlan(generation, model.fingerprint, parent, list(model.meta["features"]),
                          points, sims, priority)


def evolve(prepared: PreparedData, backend: Backend, *, home: Path | str | None = None,
           progress: ProgressCallback = no_progress,
           start_features: list[str] | None = None) -> EvolutionOutcome:
    """Run the loop of the module docstring over ``prepared`` data."""
    config = prepared.config
    features = sorted(start_features or prepared.feature_names)
    summaries: list[GenerationSummary] = []
    pending: tuple[GenerationPlan, bool] | None = None
    parent: str | None = None
    stop, detail = STOP_MAX_GENERATIONS, ""
    total = config.max_generations
    for generation in range(total):
        progress("train", generation, total, f"generation {generation}: training on "
                                             f"{len(features)} features")
        try:
            model = train_model(prepared, features, home=home, parent=parent,
                                generation=generation)
        except Exception as exc:  # recorded as the run's stop reason
            stop, detail = STOP_TRAINING_ERROR, f"generation {generation}: {exc}"
            break
        backend.model_trained(model)
        priority = 0
        if pending is not None:
            summaries.append(_finish(pending, backend, config, progress))
            priority = priority_of(summaries[-1].best_validation_sqn)
            pending = None
        plan = _plan(generation, model, parent, config, priority, home)
        backend.submit(plan)
        pending = (plan, model.reused)
        if generation == total - 1:
            break
        pruned = prune_features(model.meta["importance"], prune_fraction=config.prune_fraction,
                                min_features=config.min_features)
        if pruned.stop_reason is not None:
            stop = pruned.stop_reason
            detail = f"after generation {generation} ({len(features)} features)"
            break
        features, parent = pruned.kept, model.fingerprint
    if pending is not None:
        summaries.append(_finish(pending, backend, config, progress))
    return EvolutionOutcome(summaries, stop, detail)


def _finish(pending: tuple[GenerationPlan, bool], backend: Backend, config: EvolutionConfig,
            progress: ProgressCallback) -> GenerationSummary:
    plan, reused = pending
    progress("simulate", plan.generation, config.max_generations,
             f"generation {plan.generation}: waiting for {len(plan.points)} simulations")
    summary = summarise(plan, backend.wait(plan), config, reused)
    backend.generation_done(plan, summary)
    return summary


class LocalBackend:
    """Runs every simulation in this process, at submit time, in grid order."""

    def __init__(self, config: EvolutionConfig, home: Path | str | None = None,
                 progress: ProgressCallback = no_progress) -> None:
        self.config = config
        self.home = home
        self.progress = progress
        self.results: dict[int, list[dict[str, Any]]] = {}
        self.models: list[ModelResult] = []
        self.generations: list[GenerationSummary] = []

    def submit(self, plan: GenerationPlan) -> None:
        """Simulate every grid point now."""
        out = []
        for done, point in enumerate(plan.points):
            self.progress("simulate", done, len(plan.points),
                          f"generation {plan.generation}: {point}")
            out.append(run_simulation(plan.model, point, self.config, self.home))
        self.results[plan.generation] = out

    def wait(self, plan: GenerationPlan) -> list[dict[str, Any]]:
        """The results simulated at submit."""
        return self.results[plan.generation]

    def generation_done(self, plan: GenerationPlan, summary: GenerationSummary) -> None:
        """Keep the summary."""
        self.generations.append(summary)

    def model_trained(self, model: ModelResult) -> None:
        """Keep the model."""
        self.models.append(model)
