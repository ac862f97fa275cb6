"""The SQN priority orders the queue: a child of a strong parent is claimed before an older
job of a weak parent (both backends)."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import update

from stratforge.evolution.config import GridPoint, make_evolution_config
from stratforge.evolution.loop import GenerationPlan, priority_of
from stratforge.ops.context import ClaimLostError, JobContext
from stratforge.ops.evolution_jobs import DatabaseBackend
from stratforge.ops.evolution_store import RUN_TYPE, SIMULATION_TYPE, get_generation
from stratforge.ops.operations import create_operation, get_operation
from stratforge.ops.queue import JOBS, claim_next_job


def _hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _backend(database, name: str) -> DatabaseBackend:
    """The backend of a run whose job this worker really claimed (its writes are fenced by
    the claim)."""
    op = create_operation(database, RUN_TYPE, {"symbol": "MNQ"})
    job = claim_next_job(database, f"worker-{name}", types=[RUN_TYPE])
    assert job is not None and job.operation_id == op.id
    return DatabaseBackend(JobContext(database, job, op, f"worker-{name}"),
                           make_evolution_config())


def _plan(name: str, generation: int, priority: int, points: int = 3) -> GenerationPlan:
    grid = [GridPoint(float(t + 1), 0.0, "all") for t in range(points)]
    return GenerationPlan(generation, _hex(name), _hex(f"{name}-parent"), ["a", "b"], grid,
                          [_hex(f"{name}-{i}") for i in range(points)], priority)


def test_children_of_strong_parents_are_claimed_first(database):
    seed_run, weak_run, strong_run = (_backend(database, n) for n in ("seed", "weak", "strong"))
    seed_run.submit(_plan("seed", 0, priority_of(None)))        # generation 0: priority 0
    weak_run.submit(_plan("weak", 1, priority_of(0.4)))         # older, weak parent
    strong_run.submit(_plan("strong", 1, priority_of(3.2)))     # newer, strong parent
    assert priority_of(3.2) == 3200 and priority_of(0.4) == 400 and priority_of(-1.5) == -1500
    order = []
    while (job := claim_next_job(database, "w1", [SIMULATION_TYPE])) is not None:
        order.append(get_operation(database, job.operation_id).parent_id)
    runs = {seed_run.run_id: "seed", weak_run.run_id: "weak", strong_run.run_id: "strong"}
    assert [runs[r] for r in order] == ["strong"] * 3 + ["weak"] * 3 + ["seed"] * 3


def test_submitting_a_generation_twice_queues_it_once(database):
    run = _backend(database, "again")
    plan = _plan("again", 0, 0)
    run.submit(plan)
    run.submit(plan)  # a resumed run passes its generations again
    claimed = 0
    while claim_next_job(database, "w1", [SIMULATION_TYPE]) is not None:
        claimed += 1
    assert claimed == 3


def test_a_run_that_lost_its_claim_queues_nothing(database):
    # the reaper handed the run's job to another worker while this one stalled: its submit
    # and its generation record are fenced by the claim and write nothing
    run = _backend(database, "stale")
    with database.write() as connection:
        connection.execute(update(JOBS).where(JOBS.c.id == run.context.job.id).values(
            worker_id="worker-other", attempts=run.context.job.attempts + 1))
    with pytest.raises(ClaimLostError):
        run.submit(_plan("stale", 0, 5))
    assert claim_next_job(database, "w1", [SIMULATION_TYPE]) is None
    with database.read() as connection:
        assert get_generation(connection, run.run_id, 0) is None
