"""The backtesting step: fixed exit parameters simulated on the spec's backtest span, and
the metrics summary both steps report."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from stratforge.instruments import Instrument, get_instrument
from stratforge.ops.agent.signals import SpanSignals, span_signals
from stratforge.ops.agent.spec import StrategySpec
from stratforge.progress import ProgressCallback, no_progress
from stratforge.sim.backtest import simulate
from stratforge.sim.metrics import compute_metrics
from stratforge.sim.params import Costs, ExitParams

METRIC_KEYS: tuple[str, ...] = (
    "trades", "wins", "losses", "win_rate", "total_pnl", "expectancy", "profit_factor",
    "sharpe", "sortino", "sqn", "max_drawdown", "max_drawdown_pct", "days", "exposure",
)
"""The ``compute_metrics`` fields a step reports (JSON-safe: NaN as None, inf as "inf")."""


def spec_costs(spec: StrategySpec, instrument: Instrument) -> Costs:
    """The spec's trading costs: ``instrument``'s cost model with the spec's overrides."""
    return spec.costs.resolve(instrument)


def exit_params(params: Mapping[str, Any]) -> ExitParams:
    """Exit parameters from a mapping (unknown keys are ignored, missing rules are off)."""
    return ExitParams(**{name: float(params[name]) for name in ExitParams.__dataclass_fields__
                         if name in params and params[name] is not None})


def trade_metrics(spec: StrategySpec, signals: SpanSignals, params: Mapping[str, Any], *,
                  home: Path | str | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Simulate ``params`` on the signals: the trades and the ``METRIC_KEYS`` summary."""
    instrument = get_instrument(spec.symbol, home)
    trades = simulate(signals.bars, signals.entries, signals.sides, exit_params(params),
                      instrument=instrument, costs=spec_costs(spec, instrument))
    metrics = compute_metrics(trades, instrument=instrument, capital=spec.capital,
                              bars=signals.bars).to_dict(json_safe=True)
    return trades, {key: metrics[key] for key in METRIC_KEYS}


def backtest_design(spec: StrategySpec, params: Mapping[str, Any], *,
                    home: Path | str | None = None,
                    progress: ProgressCallback = no_progress) -> dict[str, Any]:
    """Out-of-sample metrics of ``params`` on the backtest span, plus ``params``,
    ``signals`` (signal bars in the span) and ``span``."""
    progress("signals", 0, 2, f"matching {spec.signal.template_id} on {spec.signal.timeframe}")
    signals = span_signals(spec, spec.backtest.start, spec.backtest.end, home=home)
    progress("simulate", 1, 2, f"{len(signals.entries)} signals")
    _, metrics = trade_metrics(spec, signals, params, home=home)
    progress("simulate", 2, 2, f"{metrics['trades']} trades")
    return {**metrics, "params": dict(params), "signals": len(signals.entries),
            "span": [spec.backtest.start.isoformat(), spec.backtest.end.isoformat()]}
