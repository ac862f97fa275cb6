"""``run_research``: the main job, phase by phase, into ``runs/<run_id>/``.

Phases (``PHASES``): data (the demo market when there is none), discovery (patterns on every
bar of the run's timeframes, clustered on the in-sample patterns), optimize (per-template
design of experiments and fission, :mod:`research.optimize_phase`), matching, the Monte Carlo
sweep, ANOVA, Thompson refinement, validation, and the playbook, summary and report. Each
finished phase is recorded in the run's ``state.json``; a resumed run skips finished phases
and continues the sweep and the refinement from their checkpoints, so it ends with the same
numbers as an uninterrupted run. Rules: docs/research.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stratforge.errors import ConfigError
from stratforge.names import check_run_id
from stratforge.parallel import make_executor
from stratforge.progress import ProgressCallback, no_progress
from stratforge.research import optimize_phase, prepare, search_phases
from stratforge.research.config import EXECUTION_FIELDS, ResearchConfig
from stratforge.research.outputs import write_playbook, write_summary
from stratforge.research.report import write_report
from stratforge.research.runs import PHASES, RunFolder

ONLY_PHASES: dict[str, tuple[str, ...]] = {
    "mc": ("data", "matching", "sweep"),
    "optimize": ("optimize",),
    "anova": ("anova",),
    "refine": ("refine",),
    "validate": ("validation", "report"),
}
"""What each ``--*-only`` flag runs (``mc`` reuses the newest template library)."""


@dataclass
class RunResult:
    """A finished (or partly run) research run."""

    run: RunFolder
    summary: dict[str, Any]
    phases_run: list[str]

    @property
    def path(self) -> Path:
        """The run folder."""
        return self.run.path


def _execution(config: ResearchConfig) -> dict[str, Any]:
    return {k: getattr(config, k) for k in EXECUTION_FIELDS}


def open_run(config: ResearchConfig, *, home: Path | str | None, resume: bool, only: str | None,
             run_id: str | None) -> RunFolder:
    """The run to work on: a new one, or (``resume`` / an ``only`` phase other than ``mc``)
    the given or newest existing one with the execution settings of ``config``."""
    if only is not None and only not in ONLY_PHASES:
        raise ConfigError(f"unknown phase {only!r}; choose one of {', '.join(ONLY_PHASES)}")
    if resume or (only is not None and only != "mc"):
        return RunFolder.open(run_id, home, _execution(config))
    return RunFolder.create(config, home, run_id)


def run_research(config: ResearchConfig, *, home: Path | str | None = None,
                 resume: bool = False, fresh: bool = False, only: str | None = None,
                 run_id: str | None = None,
                 progress: ProgressCallback = no_progress) -> RunResult:
    """Run (or resume, or rerun one phase of) a research run; returns its summary.

    ``fresh`` recomputes discovery from scratch (no discovery checkpoint). ``only`` is one
    of ``ONLY_PHASES``: ``mc`` starts a new run that reuses the newest template library and
    stops after the sweep; the others rerun that phase of an existing run from the artifacts
    of the phases before it, then rewrite the summary and the report.
    """
    if run_id is not None:
        check_run_id(run_id)  # before any work: the id names a folder under <home>/runs
    if not resume and only in (None, "mc"):
        config = prepare.choose_timeframes(config, home, progress)
    run = open_run(config, home=home, resume=resume, only=only, run_id=run_id)
    with run:  # holds the run folder's lock until the run is written
        return _run_phases(run, home, fresh, only, progress)


def _run_phases(run: RunFolder, home: Path | str | None, fresh: bool, only: str | None,
                progress: ProgressCallback) -> RunResult:
    wanted = ONLY_PHASES[only] if only else PHASES
    if only and only != "mc":
        missing = [p for p in PHASES[:PHASES.index(wanted[0])] if not run.done(p)
                   and p not in ("anova", "refine")]
        if missing:
            raise ConfigError(f"run {run.run_id} has not finished {', '.join(missing)}; "
                              f"resume it with `stratforge run --resume --run-id {run.run_id}`")
        run.forget(*wanted)
    c = run.config
    ran: list[str] = []
    with make_executor(c.executor, c.workers, c.ray_address) as executor:
        steps: dict[str, Callable[[], dict[str, Any]]] = {
            "data": lambda: prepare.ensure_data(run, home, progress),
            "discovery": lambda: prepare.discover(run, home, run.info("data")["train_end_ns"],
                                                  fresh, progress),
            "optimize": lambda: optimize_phase.optimize_phase(run, home, executor,
                                                              only != "optimize", progress),
            "matching": lambda: prepare.match(run, home, progress),
            "sweep": lambda: search_phases.sweep_phase(run, home, executor, True, progress),
            "anova": lambda: search_phases.anova_phase(run),
            "refine": lambda: search_phases.refine_phase(run, home, executor,
                                                         only != "refine", progress),
            "validation": lambda: search_phases.validation_phase(run, home, executor,
                                                                 progress),
            "report": lambda: _outputs(run, home),
        }
        if only == "mc" and not run.done("discovery"):
            source = prepare.latest_library(run, home)
            run.finish("discovery", {"seconds": 0.0, **prepare.reuse_library(run, source)})
        if only is None and not run.done("optimize") and run.done("matching"):
            # a run that matched before the phase existed: its library stays as matched
            run.finish("optimize", {"skipped": True, "trials": 0})
        for phase in wanted:
            if run.done(phase):
                continue
            started = time.perf_counter()
            progress(phase, 0, 1, "starting")
            info = steps[phase]()
            run.finish(phase, {"seconds": round(time.perf_counter() - started, 3), **info})
            ran.append(phase)
    summary = write_summary(run)
    if only and "report" not in wanted and run.done("validation"):
        write_report(run.path)
    return RunResult(run, summary, ran)


def _outputs(run: RunFolder, home: Path | str | None) -> dict[str, Any]:
    strategies = write_playbook(run, home)
    write_summary(run)
    write_report(run.path)
    return {"playbook_strategies": strategies}
