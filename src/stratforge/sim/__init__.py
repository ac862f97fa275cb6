"""The exit simulator: numba kernels for stops, targets, trails, timeouts and session flats,
plus the metrics and overfitting statistics that judge its results.

``simulate`` returns one row per trade; ``sweep`` returns one summary row per parameter set,
computed in parallel without materialising trades. The rules (the simulator contract) and
every assumption are written down in docs/simulator.md; metric definitions in docs/metrics.md.
"""

from stratforge.sim.backtest import SUMMARY_COLUMNS, TRADE_COLUMNS, simulate, sweep
from stratforge.sim.metrics import Metrics, compute_metrics, daily_pnl, sqn_band
from stratforge.sim.overfitting import (
    PBOResult,
    ReturnMoments,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    probabilistic_sharpe_ratio,
    probability_of_backtest_overfitting,
    return_moments,
)
from stratforge.sim.params import Costs, ExitParams

__all__ = [
    "SUMMARY_COLUMNS",
    "TRADE_COLUMNS",
    "Costs",
    "ExitParams",
    "Metrics",
    "PBOResult",
    "ReturnMoments",
    "compute_metrics",
    "daily_pnl",
    "deflated_sharpe_ratio",
    "expected_max_sharpe",
    "probabilistic_sharpe_ratio",
    "probability_of_backtest_overfitting",
    "return_moments",
    "simulate",
    "sqn_band",
    "sweep",
]
