"""The training step: optimise a design's exit parameters on its training span.

``n_sets`` parameter sets are drawn from a scrambled Sobol sequence over the spec's region
(``search.samplers.unit_sobol`` mapped and repaired by the region's ``ParameterSpace``),
seeded from the spec's fingerprint, and swept in chunks of ``CHUNK_SETS`` (each chunk ends
with a progress report, where a cancelled or stopping job is interrupted). The chosen set is
the one with the best per-trade Sharpe among the sets with at least
``selection_min_trades`` trades; when no set has that many, the best among the sets that
traded at all; ties go to the earlier set. The chosen set is then simulated once more to
report the full in-sample metrics (annualised daily Sharpe among them).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stratforge.instruments import get_instrument
from stratforge.ops.agent.backtesting import spec_costs, trade_metrics
from stratforge.ops.agent.signals import SpanSignals, span_signals
from stratforge.ops.agent.spec import INT_PARAMETERS, StrategySpec
from stratforge.progress import ProgressCallback, no_progress
from stratforge.search.samplers import unit_sobol
from stratforge.sim.backtest import sweep

CHUNK_SETS = 4096
SELECTIONS = {
    2: "best per-trade Sharpe among sets with enough trades",
    1: "no set reached selection_min_trades: best per-trade Sharpe among sets that traded",
    0: "no set traded",
}


def training_seed(fingerprint: str) -> int:
    """The sampling seed of a design: the first 52 bits of its fingerprint (the seed is
    recorded in the operation's metadata, and a JSON number above 2**53 loses its last digits
    in a browser)."""
    return int(fingerprint[:13], 16)


def _best_in(summary: pd.DataFrame, min_trades: int) -> tuple[int, float, int]:
    """(tier, per-trade Sharpe, set index) of the best row of one chunk."""
    trades = summary["trades"].to_numpy()
    sharpe = summary["sharpe_per_trade"].to_numpy(dtype=np.float64)
    tier = np.where(trades >= min_trades, 2, np.where(trades > 0, 1, 0))
    score = np.where(np.isfinite(sharpe), sharpe, -np.inf)
    index = summary.index.to_numpy()
    order = np.lexsort((index, -score, -tier))  # last key sorts first
    i = int(order[0])
    return int(tier[i]), float(score[i]), int(index[i])


def _plain(name: str, value: Any) -> float | int:
    return int(value) if name in INT_PARAMETERS else float(value)


def train_design(spec: StrategySpec, *, seed: int, home: Path | str | None = None,
                 progress: ProgressCallback = no_progress) -> dict[str, Any]:
    """Optimise the spec's parameters on its training span (see the module docstring).

    Returns the in-sample metrics of the chosen set (``backtesting.METRIC_KEYS``) with
    ``params``, ``sharpe_per_trade``, ``signals``, ``sets``, ``sets_with_enough_trades``,
    ``selection`` (which rule chose), ``seed`` and ``span``.
    """
    progress("signals", 0, 1, f"matching {spec.signal.template_id} on {spec.signal.timeframe}")
    signals = span_signals(spec, spec.training.start, spec.training.end, home=home)
    return {**optimise_exits(spec, signals, seed=seed, home=home, progress=progress),
            "span": [spec.training.start.isoformat(), spec.training.end.isoformat()]}


def optimise_exits(spec: StrategySpec, signals: SpanSignals, *, seed: int,
                   home: Path | str | None = None,
                   progress: ProgressCallback = no_progress) -> dict[str, Any]:
    """The sweep of ``train_design`` on given signals: the metrics of the chosen set with
    ``params``, ``sharpe_per_trade``, ``signals``, ``sets``, ``sets_with_enough_trades``,
    ``selection`` and ``seed``."""
    space = spec.region.space()
    n = spec.n_sets
    unit = unit_sobol(space.dimensions, n, seed)
    instrument = get_instrument(spec.symbol, home)
    costs = spec_costs(spec, instrument)
    best: tuple[int, float, int] | None = None
    best_row: dict[str, Any] = {}
    enough = 0
    progress("sweep", 0, n, f"{n} parameter sets x {len(signals.entries)} signals")
    for start in range(0, n, CHUNK_SETS):
        stop = min(n, start + CHUNK_SETS)
        table = space.repair(space.from_unit(unit[start:stop]))
        table.index = pd.RangeIndex(start, stop)
        summary = sweep(signals.bars, signals.entries, signals.sides, table,
                        instrument=instrument, costs=costs)
        enough += int((summary["trades"] >= spec.selection_min_trades).sum())
        tier, score, index = _best_in(summary, spec.selection_min_trades)
        if best is None or (tier, score, -index) > (best[0], best[1], -best[2]):
            best = (tier, score, index)
            best_row = {name: _plain(name, summary.at[index, name]) for name in space.names}
        progress("sweep", stop, n, f"{stop} of {n} sets")
    assert best is not None  # n >= 1
    _, metrics = trade_metrics(spec, signals, best_row, home=home)
    return {**metrics, "params": best_row,
            "sharpe_per_trade": best[1] if math.isfinite(best[1]) else None,
            "signals": len(signals.entries), "sets": n, "sets_with_enough_trades": enough,
            "selection": SELECTIONS[best[0]], "seed": seed}
