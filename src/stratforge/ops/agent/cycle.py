"""One research cycle as a resumable state machine, run by the ``agent_cycle`` job.

``idle -> designing -> training -> training_gate -> backtesting -> backtest_gate ->
assessing -> completed``; a design the training gate rejects goes from ``training_gate``
straight to ``assessing`` (unless gates are bypassed). A design of kind ``model`` trains an
evolution model in its training step and replays it in its backtest (``ops.agent.modeling``;
the backtest child gets the trained ``model_id``). Training and backtesting are child
operations (types ``training`` and ``backtesting``, parent = the cycle) queued for any
worker; the cycle polls the child's row every ``POLL_SECONDS`` with ``context.sleep``, which
raises when the cycle is cancelled or its worker stops.

Everything the cycle learns goes into its operation's metadata as it goes: ``phase`` and
``phases`` (the history, ``[{"phase", "at"}]``), ``spec``, ``fingerprint``, ``arm``,
``design``, ``experiment_id``, ``training_op_id``, ``training`` (the child's result),
``training_gate``, ``backtesting_op_id``, ``backtest``, ``backtest_gate``, ``assessment``
and ``verdict``. A job handed back to the queue (worker stopped or dead) runs again with the
same operation and continues from there: a stored spec is not redesigned, a stored child id
(or an existing live child of that type) is reused, never created twice, and a stored
child result is not recomputed. Each such restart is listed in ``resumes``.
"""

from __future__ import annotations

import logging
from typing import Any

from stratforge.config import resolve_home
from stratforge.errors import StratforgeError
from stratforge.ops.agent.assessment import assess
from stratforge.ops.agent.designer import get_designer
from stratforge.ops.agent.experiments import (
    abandon_experiments,
    claim_experiment,
    finish_experiment,
)
from stratforge.ops.agent.gates import GateResult, GateThresholds, backtest_gate, training_gate
from stratforge.ops.agent.spec import fingerprint, parse_spec
from stratforge.ops.agent.training import training_seed
from stratforge.ops.context import JobContext, OperationCancelledError, WorkerStoppingError
from stratforge.ops.db import utcnow
from stratforge.ops.operations import children, create_operation, get_operation
from stratforge.ops.records import iso

log = logging.getLogger("stratforge.agent")
CYCLE_TYPE = "agent_cycle"
PHASES = ("idle", "designing", "training", "training_gate", "backtesting", "backtest_gate",
          "assessing", "completed")
POLL_SECONDS = 0.2
CHILD_PRIORITY = 10
"""Queue priority of a cycle's children: a cycle waiting on its child goes first."""
_RESET = ("spec", "fingerprint", "arm", "design", "experiment_id", "training",
          "training_gate", "backtest", "backtest_gate", "assessment", "verdict")
_RESULT_KEY = {"training": "training", "backtesting": "backtest"}


class _Cycle:
    """The state machine over one cycle operation (see the module docstring)."""

    def __init__(self, context: JobContext) -> None:
        if context.operation is None:
            raise StratforgeError("an agent_cycle job needs its operation")
        self.context = context
        self.db = context.db
        self.id = context.operation.id
        self.params = context.parameters
        self.meta = dict(context.operation.metadata)
        self.thresholds = GateThresholds(**(self.params.get("gates") or {}))
        self.bypass = bool(self.params.get("bypass_gates", False))
        context.phases = PHASES[1:-1]

    # ----------------------------------------------------------------- bookkeeping
    def remember(self, **values: Any) -> None:
        self.context.remember(**values)
        assert self.context.operation is not None
        self.meta = dict(self.context.operation.metadata)

    def enter(self, phase: str) -> None:
        """Record ``phase`` unless the cycle is already there or past it (a resumed cycle
        passes its earlier phases again without recording them twice)."""
        current = self.meta.get("phase")
        if current in PHASES and PHASES.index(current) >= PHASES.index(phase):
            return
        phases = [*(self.meta.get("phases") or []), {"phase": phase, "at": iso(utcnow())}]
        self.remember(phase=phase, phases=phases)
        if phase in PHASES[1:-1]:
            self.context.progress(phase, 0, 1, phase.replace("_", " "))

    def start(self) -> None:
        phase = self.meta.get("phase")
        if phase in (None, "idle"):  # fresh (or a retry, which starts over)
            idle = [p for p in self.meta.get("phases") or [] if p.get("phase") == "idle"][:1]
            self.remember(**dict.fromkeys(_RESET), phase="idle",
                          phases=idle or [{"phase": "idle", "at": iso(utcnow())}])
            return
        resumes = [*(self.meta.get("resumes") or []),
                   {"at": iso(utcnow()), "phase": phase, "attempt": self.context.job.attempts}]
        self.remember(resumes=resumes)

    # ----------------------------------------------------------------- phases
    def design(self) -> dict[str, Any]:
        if not self.meta.get("spec"):
            self.enter("designing")
            from stratforge.ops.agent.inputs import prepare_design

            def progress(phase: str, done: int, total: int, message: str = "") -> None:
                self.context.progress("designing", done, total, f"{phase}: {message}")

            name = str(self.params.get("designer", "thompson"))
            context, choice = prepare_design(self.db, self.params, home=resolve_home(),
                                             progress=progress)
            made = get_designer(name).design(context)
            if made.fingerprint in context.tried or fingerprint(made.spec) != made.fingerprint:
                raise StratforgeError(f"designer {name!r} proposed design "
                                      f"{made.fingerprint[:16]}, which was tried already or "
                                      "does not match its spec; a designer must return an "
                                      "untried design")
            self.remember(spec=made.spec.model_dump(mode="json"), fingerprint=made.fingerprint,
                          arm=made.arm, design={"designer": name, "rationale": made.rationale,
                                                "kind": made.spec.kind,
                                                "library": choice and choice.digest,
                                                "library_source": choice and choice.source})
        if not self.meta.get("experiment_id"):
            record = claim_experiment(self.db, spec=self.meta["spec"],
                                      fingerprint=self.meta["fingerprint"],
                                      arm=self.meta["arm"], operation_id=self.id)
            self.remember(experiment_id=record)
        return self.meta["spec"]

    def child(self, op_type: str, parameters: dict[str, Any]) -> dict[str, Any]:
        """Run (or rejoin) the child of ``op_type`` and return its result summary."""
        result_key, id_key = _RESULT_KEY[op_type], f"{op_type}_op_id"
        if self.meta.get(result_key) is not None:
            return self.meta[result_key]
        self.enter(op_type)
        child_id = self.meta.get(id_key) or self._live_child(op_type)
        if child_id is None:
            child_id = create_operation(self.db, op_type, parameters, parent_id=self.id,
                                        priority=CHILD_PRIORITY).id
        if self.meta.get(id_key) != child_id:
            self.remember(**{id_key: child_id})
        result = self._wait(child_id, op_type)
        self.remember(**{result_key: result})
        return result

    def _live_child(self, op_type: str) -> str | None:
        live = [c for c in children(self.db, self.id)
                if c.type == op_type and c.status in ("pending", "running", "completed")]
        return live[-1].id if live else None

    def _wait(self, child_id: str, phase: str) -> dict[str, Any]:
        while True:
            child = get_operation(self.db, child_id)
            if child.status == "completed":
                return dict(child.result_summary or {})
            if child.status == "failed":
                raise StratforgeError(f"the {phase} step {child.id} failed: {child.error}")
            if child.status == "cancelled":
                own = self.context.refresh()
                if own is not None and own.status == "cancelled":
                    raise OperationCancelledError(f"operation {self.id} was cancelled")
                raise StratforgeError(f"the {phase} step {child.id} was cancelled on its own "
                                      f"({child.error}); the cycle stops")
            if child.status == "pending":
                message = (f"waiting for a worker to take {child.id} (a worker that runs "
                           "cycles needs concurrency 2 or more)")
            else:
                message = f"{child.id}: {child.progress_step} {child.progress_message}".strip()
            self.context.progress(phase, int(child.progress_percent), 100, message)
            self.context.sleep(POLL_SECONDS)

    def gate(self, name: str, metrics: dict[str, Any], kind: str) -> GateResult:
        self.enter(f"{name}_gate")
        if name == "training":
            result = training_gate(metrics, self.thresholds, kind=kind)
        else:
            result = backtest_gate(metrics, self.thresholds)
        self.remember(**{f"{name}_gate": {**result.to_json(), "bypassed": self.bypass}})
        return result

    # ----------------------------------------------------------------- the cycle
    def run(self) -> dict[str, Any]:
        self.start()
        spec_json = self.design()
        spec = parse_spec(spec_json, where="the cycle's stored spec")
        training = self.child("training", {"spec": spec_json,
                                           "seed": training_seed(self.meta["fingerprint"])})
        gates = [self.gate("training", training, spec.kind)]
        backtest = None
        if gates[0].passed or self.bypass:
            replay = {"model_id": training.get("model_id")} if spec.kind == "model" else {}
            backtest = self.child("backtesting", {"spec": spec_json,
                                                  "params": training.get("params") or {},
                                                  **replay})
            gates.append(self.gate("backtest", backtest, spec.kind))
        self.enter("assessing")
        assessment = assess(training, backtest, gates, enforced=not self.bypass,
                            thresholds=self.thresholds)
        reason = "; ".join(g.reason for g in gates if g.reason) if assessment.rejected else None
        finish_experiment(self.db, self.meta["experiment_id"],
                          status="rejected" if assessment.rejected else "completed",
                          verdict=assessment.verdict, rejection_reason=reason,
                          training_metrics=training, backtest_metrics=backtest,
                          assessment=assessment.to_json())
        self.remember(assessment=assessment.to_json(), verdict=assessment.verdict)
        self.enter("completed")
        return {"experiment_id": self.meta["experiment_id"],
                "fingerprint": self.meta["fingerprint"], "arm": spec.arm, "kind": spec.kind,
                "verdict": assessment.verdict, "rejected": assessment.rejected,
                "rejection_reason": reason, "training": training, "backtest": backtest,
                "gates": [g.to_json() for g in gates], "assessment": assessment.to_json()}

    def abandon(self, status: str) -> None:
        """Leave the experiment ``status`` and record the end in the phase history."""
        try:
            abandon_experiments(self.db, self.id, status)
            phases = [*(self.meta.get("phases") or []), {"phase": status, "at": iso(utcnow())}]
            self.context.remember(phase=status, phases=phases, ending=True)
        except Exception:  # the original error matters more than this bookkeeping
            log.exception("could not record the end (%s) of cycle %s", status, self.id)


def run_cycle(context: JobContext) -> dict[str, Any]:
    """Run (or resume) the cycle of ``context``; returns the cycle's result summary."""
    cycle = _Cycle(context)
    try:
        return cycle.run()
    except WorkerStoppingError:
        raise  # handed back to the queue: the next run resumes from the metadata
    except OperationCancelledError:
        cycle.abandon("cancelled")
        raise
    except Exception:
        cycle.abandon("failed")
        raise
