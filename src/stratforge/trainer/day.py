"""One trading day of the trainer: gate the day's candidates with the brain, try K parameter
sets on the day, keep the best, and trade yesterday's parameters out of sample."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from stratforge.discovery.doe import (
    EXIT_COLUMNS,
    VECTOR_NAMES,
    DesignSchedule,
    ParameterSpace,
    to_exit_params,
)
from stratforge.errors import ConfigError
from stratforge.search.brain import BayesianBrain, brain_key
from stratforge.search.space import measure_yardstick
from stratforge.sim.backtest import simulate, sweep
from stratforge.trainer.config import TrainConfig

COMPOSITE_OFFSET = 1000.0
"""Iterations with enough trades score ``offset + Sharpe``; the others ``tanh(PnL / scale)``,
so any iteration with enough trades ranks above every one without (Sharpe first, else PnL)."""


@dataclass
class Gate:
    """The day's fired entries: bar positions within the day, sides, states and matches."""

    entries: np.ndarray
    sides: np.ndarray
    states: list[str]
    rows: pd.DataFrame
    candidates: int


def gate_entries(matches: pd.DataFrame, brain: BayesianBrain, config: TrainConfig,
                 rng: np.random.Generator, lo: int) -> Gate:
    """Ask the brain about every candidate of the day, in bar order then library order; a bar
    takes its first firing template. Unseen and rarely seen states are explored by Thompson
    sampling (``should_fire(explore=True)``), so an empty brain trades."""
    candidates = len(matches)
    taken: dict[int, int] = {}
    for row, (position, template_id) in enumerate(zip(matches["position"].to_numpy(),
                                                      matches["template_id"], strict=True)):
        if int(position) in taken:
            continue
        key = brain_key(str(template_id), config.timeframe)
        if brain.should_fire(key, min_probability=config.min_probability,
                             min_confidence=config.min_confidence,
                             min_samples=config.min_samples, rng=rng):
            taken[int(position)] = row
    rows = matches.iloc[list(taken.values())].reset_index(drop=True)
    return Gate(rows["position"].to_numpy(np.int64) - lo, rows["side"].to_numpy(np.int64),
                [brain_key(str(t), config.timeframe) for t in rows["template_id"]], rows,
                candidates)


def day_yardstick(bars: pd.DataFrame, day_start: np.ndarray, day: int, tick_size: float,
                  lookback_days: int) -> float:
    """The volatility yardstick of trade day ``day`` in ticks: the median true range
    (``search.space.measure_yardstick``) of the bars of the ``lookback_days`` trade days
    before it, never of the day itself or later. Day 0 has no past: a ConfigError."""
    if day < 1:
        raise ConfigError("the first trade day has no earlier bars to measure its yardstick "
                          "on; training starts on the second day")
    lo = int(day_start[max(0, day - lookback_days)])
    hi = int(day_start[day])
    return measure_yardstick(bars.iloc[lo:hi], tick_size)


def day_space(yardstick_ticks: float, hold_bars: int, target_scale: float,
              trail_scale: float) -> ParameterSpace:
    """The design space of the day in volatility units: the template optimiser's space
    (``ParameterSpace.from_scale``) with the yardstick (median true range in ticks of the
    past days' bars) as its scale, and the regret bias applied to the target and trail
    bounds and baselines."""
    base = ParameterSpace.from_scale(yardstick_ticks, hold_bars)
    scale = np.ones(len(VECTOR_NAMES))
    scale[VECTOR_NAMES.index("target_ticks")] = target_scale
    scale[VECTOR_NAMES.index("trail_tight_ticks")] = trail_scale
    scale[VECTOR_NAMES.index("trail_wide_ticks")] = trail_scale
    lower = np.maximum(1.0, np.round(base.lower * scale))
    upper = np.maximum(lower, np.round(base.upper * scale))
    stop, target = VECTOR_NAMES.index("stop_ticks"), VECTOR_NAMES.index("target_ticks")
    upper[target] = max(upper[target], upper[stop] + 1)
    return ParameterSpace(lower, upper, base.baselines * scale)


def composite_scores(summary: pd.DataFrame, min_trades: int, pnl_scale: float) -> np.ndarray:
    """Sharpe per trade (offset) where an iteration has ``min_trades``, else squashed PnL."""
    trades = summary["trades"].to_numpy()
    sharpe = summary["sharpe_per_trade"].to_numpy(np.float64)
    pnl = summary["total_pnl"].to_numpy(np.float64)
    enough = (trades >= min_trades) & np.isfinite(sharpe)
    squashed = np.tanh(pnl / max(pnl_scale, 1e-9))
    return np.where(enough, COMPOSITE_OFFSET + np.nan_to_num(sharpe), np.where(
        trades > 0, squashed, -math.inf))


def params_frame(vectors: np.ndarray, tick: float) -> pd.DataFrame:
    """Simulator exit parameters of design vectors."""
    return pd.DataFrame(to_exit_params(vectors, tick), columns=list(EXIT_COLUMNS))


@dataclass
class DayResult:
    """The chosen iteration of the day, its trades and the out-of-sample run."""

    params: dict[str, float]
    trades: pd.DataFrame
    iterations: int
    best_score: float
    oos_trades: pd.DataFrame


def run_day(bars: pd.DataFrame, gate: Gate, space: ParameterSpace, config: TrainConfig, *,
            instrument, day_index: int, previous: dict[str, float] | None,
            yardstick_ticks: float) -> DayResult:
    """K iterations of the design schedule on the day's bars; the best one's trades; and the
    day traded with ``previous`` (yesterday's chosen parameters) for the honest figure.
    Every simulated trade pays the run's cost model (``config.costs_for(instrument)``).
    Iterations without ``min_trades`` rank by PnL squashed on the scale of one yardstick
    (``yardstick_ticks`` ticks) of one trade's PnL, in currency."""
    costs = config.costs_for(instrument)
    tick = float(instrument.tick_size)
    empty = simulate(bars, np.empty(0, np.int64), np.empty(0, np.int64), None,
                     instrument=instrument, costs=costs)
    oos = empty
    if previous is not None and len(gate.entries):
        oos = simulate(bars, gate.entries, gate.sides, previous, instrument=instrument,
                       costs=costs)
    if not len(gate.entries):
        params = dict(previous) if previous else {}
        return DayResult(params, empty, 0, -math.inf, oos)
    schedule = DesignSchedule(space, config.iterations,
                              random_state=[config.seed, day_index])
    pnl_scale = (float(yardstick_ticks) * tick * float(instrument.point_value)
                 * costs.quantity)
    while not schedule.done:
        vectors = schedule.next_batch()
        summary = sweep(bars, gate.entries, gate.sides, params_frame(vectors, tick),
                        instrument=instrument, costs=costs)
        schedule.tell(vectors, composite_scores(summary, config.min_trades, pnl_scale))
    vector, score, _phase = schedule.best()
    params = params_frame(vector.reshape(1, -1), tick).iloc[0].to_dict()
    trades = simulate(bars, gate.entries, gate.sides, params, instrument=instrument,
                      costs=costs)
    return DayResult({k: float(v) for k, v in params.items()}, trades, config.iterations,
                     float(score), oos)
