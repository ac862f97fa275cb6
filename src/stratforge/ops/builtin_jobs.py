"""The built-in job types (see ``ops.handlers`` for the list and the handler contract)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from stratforge.config import get_settings, resolve_home
from stratforge.costs import WHERE_COSTS_ARE_SET, check_cost
from stratforge.data.atomic import json_ready
from stratforge.data.load import load_bars
from stratforge.errors import ConfigError, DataError
from stratforge.features.cache import load_states
from stratforge.features.signals import SIGNAL_KINDS, state_signals
from stratforge.instruments import get_instrument
from stratforge.ops.context import JobContext
from stratforge.ops.events import emit
from stratforge.ops.handlers import register
from stratforge.ops.training_runs import training_folder_of
from stratforge.research.config import make_config
from stratforge.research.null_audit import audit_null, null_result
from stratforge.research.pipeline import run_research
from stratforge.research.runs import PHASES, new_run_id
from stratforge.search.samplers import sample_sobol
from stratforge.search.space import default_space, measure_yardstick
from stratforge.sim.backtest import simulate, sweep
from stratforge.sim.metrics import compute_metrics
from stratforge.sim.params import Costs, ExitParams
from stratforge.trainer.config import make_train_config
from stratforge.trainer.loop import STATE_FILE, train
from stratforge.trainer.summary import finish_training


@register("noop")
def noop_job(context: JobContext) -> dict[str, Any] | None:
    """Does nothing (the queue's own cost is what is measured)."""
    return None


@register("echo")
def echo_job(context: JobContext) -> dict[str, Any]:
    """Records one ``job_ran`` event (job id, attempt, worker): exactly-once checks count
    them (written through ``context.write()``, so only the claim that holds the job writes
it). ``payload.seconds`` waits first (cancellable)."""
    seconds = float(context.parameters.get("seconds", 0.0))
    if seconds > 0:
        context.sleep(seconds)
    with context.write() as connection:
        emit(connection, "job_ran", context.job.operation_id,
             {"job_id": context.job.id, "attempt": context.job.attempts,
              "worker_id": context.worker_id, "payload": context.job.payload})
    return {"job_id": context.job.id}


@register("sleep")
def sleep_job(context: JobContext) -> dict[str, Any]:
    """Waits ``seconds`` (default 1) in tenths, reporting progress; cancellable."""
    seconds = float(context.parameters.get("seconds", 1.0))
    steps = max(1, math.ceil(seconds * 10))
    for step in range(steps):
        context.progress("sleep", step, steps, f"{step / 10:.1f} of {seconds:g} s")
        context.sleep(seconds / steps)
    context.progress("sleep", steps, steps, "done")
    return {"slept_seconds": seconds}


@register("research_run")
def research_job(context: JobContext) -> dict[str, Any]:
    """``stratforge run`` with the parameters as research settings; the run id is kept in
    the metadata, so a job handed back to the queue resumes its run. ``null_twins`` (N)
    then runs the configuration on N null twins of the run's data (``research.null_audit``;
    done twins are kept when the job is resumed) and adds its block to the result."""
    params = dict(context.parameters)
    quick = bool(params.pop("quick", False))
    null_twins = params.pop("null_twins", None)
    if null_twins is not None and (isinstance(null_twins, bool) or not isinstance(
            null_twins, int) or null_twins < 1):
        raise ConfigError(f"null_twins must be a whole number of at least 1, got {null_twins!r}")
    if params.get("executor") == "ray" and not params.get("ray_address"):
        # the cluster is the worker's configuration, never the request's (docs/api.md)
        params["ray_address"] = get_settings().ray_address
    config = make_config(quick=quick, **params)
    run_id = (context.operation.metadata.get("run_id") if context.operation else None)
    resume = run_id is not None
    if run_id is None:
        run_id = new_run_id()
        context.remember(run_id=run_id)
    context.phases = PHASES
    result = run_research(config, resume=resume, run_id=run_id, progress=context.progress)
    summary = result.summary
    out = {"run_id": run_id, "path": str(result.path), "tiers": summary.get("tiers"),
           "best": (summary.get("best") or [])[:3], "complete": summary.get("complete")}
    if null_twins:
        block = audit_null(run_id, twins=null_twins, progress=context.progress)
        out["null_twins"] = null_result(block)
    return out


@register("training_run")
def training_job(context: JobContext) -> dict[str, Any]:
    """The day-by-day trainer into ``<home>/training/<operation id>/`` (or the folder its
    metadata names: a retried CLI run continues in its own); a job handed back to the queue
    resumes after the last finished day."""
    config = make_train_config(**context.parameters)
    folder = (training_folder_of(context.operation, resolve_home()) if context.operation
              else resolve_home() / "training" / f"job_{context.job.id}")
    result = train(config, resume=(folder / STATE_FILE).exists(), progress=context.progress,
                   folder=folder)
    log, report = finish_training(result, config)
    return {"folder": str(folder), "report": str(report), **log["summary"]}


def _signals(params: dict[str, Any]) -> tuple[Any, Any, Any, Any]:
    symbol = str(params.get("symbol", "MNQ")).upper()
    timeframe = str(params.get("timeframe", "5m"))
    kind = str(params.get("signal", "roche"))
    if kind not in SIGNAL_KINDS:
        raise ConfigError(f"signal must be one of {', '.join(SIGNAL_KINDS)}, got {kind!r}")
    full = load_bars(symbol, timeframe)
    stamps = full["ts"]
    keep = np.ones(len(full), dtype=bool)
    if params.get("start"):
        keep &= (stamps >= pd.Timestamp(params["start"], tz="UTC")).to_numpy()
    if params.get("end"):
        keep &= (stamps < pd.Timestamp(params["end"], tz="UTC")).to_numpy()
    if not keep.any():
        raise DataError(f"no {timeframe} bars for {symbol} in the requested span; build the "
                        f"ATLAS with `stratforge data atlas --symbol {symbol}`")
    bars = full[keep].reset_index(drop=True)
    window = load_states(symbol, timeframe)[keep].reset_index(drop=True)
    entries, sides = state_signals(window, kind)
    return symbol, bars, entries, sides


COST_OVERRIDES = ("commission", "spread_ticks", "slippage_ticks", "fee_bps")
"""Job parameters that override the instrument's cost model (absent or null keeps it)."""


def _costs(params: dict[str, Any], symbol: str) -> Costs:
    """The instrument's cost model with the job's overrides; the old ``cost_points`` is
    refused with a pointer to where costs are set."""
    if "cost_points" in params:
        raise ConfigError(f"job parameter cost_points no longer exists: {WHERE_COSTS_ARE_SET}"
                          f"; as job parameters: {', '.join(COST_OVERRIDES)}")
    values = {}
    for name in COST_OVERRIDES:
        value = params.get(name)
        values[name] = None if value is None else check_cost(name, value, "job parameters")
    return get_instrument(symbol).costs.with_overrides(**values)


@register("simulation")
def simulation_job(context: JobContext) -> dict[str, Any]:
    """One set of exit rules (``params``) on a state signal over a span: the stats table."""
    params = context.parameters
    symbol, bars, entries, sides = _signals(params)
    context.progress("simulate", 0, 1, f"{len(entries)} signals")
    exit_params = ExitParams(**{k: float(v) for k, v in (params.get("params") or {}).items()})
    trades = simulate(bars, entries, sides, exit_params, instrument=symbol,
                      costs=_costs(params, symbol))
    metrics = compute_metrics(trades, instrument=get_instrument(symbol), bars=bars)
    return {"signals": len(entries), "metrics": metrics.to_dict(json_safe=True)}


@register("sweep")
def sweep_job(context: JobContext) -> dict[str, Any]:
    """``n`` Sobol-sampled exit parameter sets on a state signal: the best ``top`` summaries
    by per-trade Sharpe among sets with ``min_trades``. The space is the timeframe's default
    space in volatility units, its yardstick (median true range in ticks) measured on the
    span's bars (the sweep is in-sample); every set pays the instrument's cost model with the
    job's overrides, never a sampled cost."""
    params = context.parameters
    symbol, bars, entries, sides = _signals(params)
    timeframe = str(params.get("timeframe", "5m"))
    instrument = get_instrument(symbol)
    yardstick = measure_yardstick(bars, float(instrument.tick_size))
    space = default_space(timeframe, yardstick_ticks=yardstick,
                          tick_size=float(instrument.tick_size))
    table = sample_sobol(space, int(params.get("n", 256)),
                         random_state=int(params.get("seed", 7)))
    costs = _costs(params, symbol)
    context.progress("sweep", 0, 1, f"{len(table)} sets x {len(entries)} signals")
    summary = sweep(bars, entries, sides, table, instrument=instrument, costs=costs)
    joined = table.reset_index(drop=True).join(summary.reset_index(drop=True),
                                               rsuffix="_summary")
    enough = joined[joined["trades"] >= int(params.get("min_trades", 10))]
    best = enough.sort_values("sharpe_per_trade", ascending=False).head(
        int(params.get("top", 5)))
    return {"sets": len(table), "signals": len(entries), "yardstick_ticks": yardstick,
            "costs": costs.to_dict(), "best": json_records(best)}


def json_records(frame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts (``data.atomic.json_ready``)."""
    return json_ready(frame.to_dict("records"))
