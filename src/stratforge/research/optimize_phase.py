"""The optimize phase of a run, after discovery and before matching.

Every template of the discovered library (the largest ``optimize_templates`` of them when
that is set) gets the design-of-experiments optimisation and fission of
:func:`stratforge.discovery.optimize.optimize_templates` on its in-sample members, through
the run's executor, with a checkpoint per batch in ``optimize/``. Split parents are replaced
by their children (``parent_id`` names the parent), and the resulting library replaces the
run's ``library/``; the discovered one is kept in ``optimize/input_library/`` so a rerun
(``--optimize-only``) starts from it. The optima seed the sweep (:func:`seed_centre`).
Rules: docs/research.md ("Optimize phase").
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from stratforge.config import resolve_home
from stratforge.costs import COST_FIELDS
from stratforge.discovery.library import TemplateLibrary
from stratforge.discovery.optimize import WorkerInputs, optimize_templates
from stratforge.errors import ConfigError
from stratforge.parallel import Executor
from stratforge.progress import ProgressCallback
from stratforge.research.runs import RunFolder
from stratforge.search.space import ParameterSpace
from stratforge.search.sweep import write_frame
from stratforge.sim.params import Costs
from stratforge.timeframes import parse_timeframe

OPTIMIZE_DIR = "optimize"
INPUT_LIBRARY = "input_library"
PATTERNS_FILE = "patterns.parquet"
REPORT_FILE = "report.parquet"
LIBRARY_DIR = "library"  # the run's library (research.prepare.LIBRARY_DIR)
DISTANCES = ("stop_ticks", "target_ticks", "trail_tight_ticks", "trail_wide_ticks",
             "trail_activation_ticks", "trail_widen_points")
"""Parameters measured in price distance: moved between timeframes by the yardstick ratio."""


def patterns_path(run: RunFolder) -> Path:
    """The in-sample patterns the run's templates were clustered from (written by
    discovery)."""
    return run.path / PATTERNS_FILE


def _input_library(run: RunFolder) -> Path:
    """The discovered library, copied once into ``optimize/input_library/``."""
    source = run.path / OPTIMIZE_DIR / INPUT_LIBRARY
    if not (source / "library.json").exists():
        staging = source.with_name(INPUT_LIBRARY + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(source, ignore_errors=True)
        TemplateLibrary.load(run.path / LIBRARY_DIR).save(staging)
        staging.rename(source)
    return source


def main_timeframe(member_timeframes: pd.Series) -> str:
    """The timeframe most of a template's members come from (ties: the first by name), the
    one whose bars the optimiser's space is scaled to."""
    counts = member_timeframes.astype(str).value_counts()
    return min(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0]


def optimize_phase(run: RunFolder, home: Path | str | None, executor: Executor,
                   resume: bool, progress: ProgressCallback) -> dict[str, Any]:
    """Optimise and split the run's templates; returns the phase figures (``trials``: the
    design-of-experiments evaluations plus the fission trials, counted in the deflation)."""
    c = run.config
    source = _input_library(run)
    library = TemplateLibrary.load(source)
    if not c.optimize:
        library.save(run.path / LIBRARY_DIR)
        return {"skipped": True, "templates": len(library), "trials": 0}
    if not patterns_path(run).exists():
        raise ConfigError(f"run {run.run_id} has no {PATTERNS_FILE} (its discovery predates "
                          "the optimize phase); start a new run")
    chosen = library.templates[:c.optimize_templates or len(library)]
    subset = TemplateLibrary(chosen, library.scalers, library.metadata)
    patterns = pd.read_parquet(patterns_path(run))
    model = run.info("data")["market"]["cost_model"]
    costs = Costs(**{k: v for k, v in model.items() if k in COST_FIELDS})
    home = resolve_home(home)  # workers do not see the parent's --home
    inputs = WorkerInputs(str(source), str(patterns_path(run)), str(home))
    result = optimize_templates(
        subset, patterns, symbol=c.symbol, home=home, members_per_template=c.optimize_members,
        iterations=c.optimize_iterations, fission=c.fission, fission_alpha=c.fission_alpha,
        costs=costs, fill=c.fill,
        random_state=c.seed, checkpoint_dir=run.path / OPTIMIZE_DIR, resume=resume,
        batch_size=c.checkpoint_every, executor=executor, worker_inputs=inputs,
        progress=progress)
    by_id = patterns.set_index(patterns["pattern_id"].astype(str))["timeframe"]
    optimised = list(result.library.templates)
    optima = {t.template_id: main_timeframe(by_id.loc[t.member_ids]) for t in optimised}
    meta = {**result.library.metadata}
    meta["optimization"] = {**meta.get("optimization", {}), "timeframes": optima}
    final = TemplateLibrary(optimised + list(library.templates[len(chosen):]),
                            library.scalers, meta)
    final.save(run.path / LIBRARY_DIR)
    write_frame(run.path / OPTIMIZE_DIR / REPORT_FILE, result.report)
    evaluations = len(result.report) * c.optimize_iterations
    return {"templates_in": len(library), "optimised": len(chosen), "templates": len(final),
            "splits": dict(result.splits),
            "doe_evaluations": evaluations, "fission_trials": result.fission_trials,
            "trials": evaluations + result.fission_trials}


def seed_centre(run: RunFolder, library: TemplateLibrary, template_id: str, timeframe: str,
                space: ParameterSpace) -> dict[str, float] | None:
    """The template's optimum in the units of ``timeframe``'s space, or None (not optimised).

    The optimum was found on the template's main timeframe ``M``; a price distance moves
    to ``timeframe`` in yardsticks (``value / yardstick(M) * yardstick(timeframe)``), the
    holding time keeps its duration (``bars * seconds(M) / seconds(timeframe)``). A
    parameter of the space that the optimum lacks takes the middle of its range."""
    template = library.get(template_id)
    frames = library.metadata.get("optimization", {}).get("timeframes", {})
    if not template.params or template_id not in frames:
        return None
    main = frames[template_id]
    per_tf = run.info("data")["market"]["per_timeframe"]
    ratio = 1.0
    if main in per_tf and timeframe in per_tf:
        ratio = per_tf[timeframe]["yardstick_ticks"] / per_tf[main]["yardstick_ticks"]
    hold = parse_timeframe(main).seconds / parse_timeframe(timeframe).seconds
    centre = {}
    for p in space.parameters:
        value = template.params.get(p.name)
        if value is None or not math.isfinite(float(value)):
            centre[p.name] = (p.low + p.high) / 2.0
        elif p.name in DISTANCES:
            centre[p.name] = float(value) * ratio
        elif p.name == "max_hold_bars":
            centre[p.name] = float(value) * hold
        else:
            centre[p.name] = float(value)
    return centre
