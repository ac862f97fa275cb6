"""The evolution factory's job handlers: ``evolution_run`` (the loop) and
``evolution_simulation`` (one grid point of one model).

A run is an operation whose job prepares the data, trains each generation in its own process
and queues one child operation per grid point (``evolution_simulation``, parent = the run)
with priority ``round(parent's best validation SQN * 1000)`` (0 for generation 0), so any
worker on any machine sharing the database takes them, children of strong parents first. The
run holds one worker slot while it waits, so a single worker needs ``--concurrency 2``. Model
files live under the home folder: workers on several machines need a shared home.

A run's job handed back to the queue runs again with the same operation: stored models are
reused by fingerprint, a generation already recorded is not queued twice, and finished
simulations are never rerun (their fingerprints are in ``evolution_simulations``).
"""

from __future__ import annotations

from typing import Any

from stratforge.config import resolve_home
from stratforge.errors import StratforgeError
from stratforge.evolution.config import EvolutionConfig, GridPoint, make_evolution_config
from stratforge.evolution.loop import GenerationPlan, GenerationSummary, evolve, run_simulation
from stratforge.evolution.pipeline import ModelResult, prepare_data
from stratforge.ops.context import JobContext
from stratforge.ops.evolution_store import (
    OPERATIONS,
    RUN_TYPE,
    SIMULATION_TYPE,
    finish_generation,
    get_generation,
    insert_generation,
    known_simulations,
    lineage,
    record_model,
    record_promotion,
    record_simulation,
    simulation_results,
)
from stratforge.ops.handlers import register
from stratforge.ops.operations import create_operation

POLL_SECONDS = 0.25


class DatabaseBackend:
    """Simulations as queued child operations of the run (see the module docstring)."""

    def __init__(self, context: JobContext, config: EvolutionConfig) -> None:
        if context.operation is None:
            raise StratforgeError("an evolution_run job needs its operation")
        self.context = context
        self.db = context.db
        self.run_id = context.operation.id
        self.config = config

    def submit(self, plan: GenerationPlan) -> None:
        """Record the generation and queue its missing simulations, in one transaction fenced
        by the run's claim (a stalled worker whose job was handed on writes nothing)."""
        run = self.config.to_json()
        with self.context.write() as connection:
            if get_generation(connection, self.run_id, plan.generation) is not None:
                return  # a resumed run: queued before
            insert_generation(connection, {
                "run_operation_id": self.run_id, "generation": plan.generation,
                "model_fingerprint": plan.model, "parent_fingerprint": plan.parent,
                "features": plan.features, "reused": False, "priority": plan.priority,
                "jobs_total": len(plan.points), "simulations": plan.simulations})
            done = known_simulations(connection, plan.simulations)
            for point, fingerprint in zip(plan.points, plan.simulations, strict=True):
                if fingerprint in done:
                    continue
                create_operation(self.db, SIMULATION_TYPE, {
                    "run": run, "model": plan.model, "point": point.to_json(),
                    "simulation": fingerprint, "generation": plan.generation},
                    parent_id=self.run_id, priority=plan.priority, connection=connection)

    def wait(self, plan: GenerationPlan) -> list[dict[str, Any]]:
        """Poll until every simulation of the generation is recorded."""
        total = len(plan.simulations)
        while True:
            with self.db.read() as connection:
                done = len(known_simulations(connection, plan.simulations))
                failed = connection.execute(
                    OPERATIONS.select().where(OPERATIONS.c.parent_id == self.run_id,
                                              OPERATIONS.c.type == SIMULATION_TYPE,
                                              OPERATIONS.c.status.in_(("failed", "cancelled")))
                    .limit(1)).mappings().first()
            if failed is not None:
                raise StratforgeError(f"simulation {failed['id']} of generation "
                                      f"{plan.generation} ended {failed['status']}: "
                                      f"{failed['error']}")
            if done >= total:
                break
            self.context.progress("simulate", done, total,
                                  f"generation {plan.generation}: {done}/{total} simulations")
            self.context.sleep(POLL_SECONDS)
        results = simulation_results(self.db, plan.simulations)
        return [results[fp] for fp in plan.simulations]

    def generation_done(self, plan: GenerationPlan, summary: GenerationSummary) -> None:
        """Store the generation's results and record a promotion with its lineage (both
        idempotent; the claim is checked first, so a worker that lost it stops here)."""
        with self.context.write():
            pass
        finish_generation(self.db, self.run_id, plan.generation, {
            "best_sqn": summary.best_sqn, "best_profit_factor": summary.best_profit_factor,
            "best_validation_sqn": summary.best_validation_sqn, "best_result": summary.best,
            "top_results": summary.top_results, "promoted": summary.promoted,
            "failed_criteria": summary.failed_criteria, "reused": summary.reused})
        if summary.promoted and summary.best is not None:
            best = summary.best
            point = {k: best[k] for k in ("threshold", "z_cutoff", "regime")}
            metrics = {k: v for k, v in best.items() if k not in point and k != "simulation"}
            record_promotion(self.db, {
                "model_fingerprint": plan.model, "run_operation_id": self.run_id,
                "generation": plan.generation, "algorithm": self.config.algorithm,
                "features": plan.features, "point": point, "metrics": metrics,
                "lineage": [a["fingerprint"] for a in lineage(self.db, plan.model)]})

    def model_trained(self, model: ModelResult) -> None:
        """Record the model (first writer wins)."""
        record_model(self.db, model.meta, self.run_id)


@register(RUN_TYPE)
def evolution_run_job(context: JobContext) -> dict[str, Any]:
    """One evolution run (``evolution.loop.evolve``) with the operation's parameters."""
    config = make_evolution_config(**context.parameters)
    home = resolve_home()
    prepared = prepare_data(config, home, progress=context.progress)
    outcome = evolve(prepared, DatabaseBackend(context, config), home=home,
                     progress=context.progress)
    summary = outcome.to_json()
    context.remember(stop_reason=outcome.stop_reason)
    return summary


@register(SIMULATION_TYPE)
def evolution_simulation_job(context: JobContext) -> dict[str, Any]:
    """Simulate one grid point of a stored model; a recorded simulation is not rerun."""
    params = context.parameters
    fingerprint = str(params.get("simulation", ""))
    recorded = simulation_results(context.db, [fingerprint]).get(fingerprint)
    if recorded is None:
        config = make_evolution_config(**(params.get("run") or {}))
        point = GridPoint(**(params.get("point") or {}))
        context.progress("simulate", 0, 1, f"{point}")
        recorded = run_simulation(str(params.get("model", "")), point, config, resolve_home())
        if recorded["fingerprint"] != fingerprint:
            raise StratforgeError(f"simulation fingerprint mismatch: queued {fingerprint}, "
                                  f"computed {recorded['fingerprint']}")
        record_simulation(context.db, recorded, context.job.operation_id)
    test = recorded.get("test") or {}
    return {"simulation": fingerprint, "model": recorded.get("model"),
            "point": recorded.get("point"),
            **{k: test.get(k) for k in ("sqn", "profit_factor", "trades")}}
