"""The two deterministic gates a design must pass.

- Training gate, on the in-sample metrics of the chosen parameter set: at least
  ``min_training_trades`` trades (default 30) and a Sharpe ratio strictly above
  ``min_training_sharpe`` (default 0).
- Training gate of a model design (``kind="model"``), on the validation metrics of the
  trained model (``ops.agent.modeling``): at least ``min_training_trades`` validation trades,
  directional accuracy at least ``min_directional_accuracy`` (0.5) and validation SQN
  strictly above ``min_validation_sqn`` (0).
- Backtest gate, on the out-of-sample metrics: win rate at least ``min_backtest_win_rate``
  (0.45), max drawdown at most ``max_backtest_drawdown_pct`` percent of peak equity (40) and
  Sharpe at least ``min_backtest_sharpe`` (-0.5).

A metric that is missing or undefined (NaN, None: no trades, fewer than two trading days)
fails its rule. Sharpe is the annualised daily Sharpe of ``sim.metrics.compute_metrics``.
Thresholds come from ``AgentSettings`` (environment ``STRATFORGE_AGENT_*``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class GateThresholds(BaseModel):
    """The thresholds of both gates (defaults as in the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_training_trades: int = Field(30, ge=0)
    min_training_sharpe: float = 0.0
    min_directional_accuracy: float = Field(0.5, ge=0.0, le=1.0)
    min_validation_sqn: float = 0.0
    min_backtest_win_rate: float = Field(0.45, ge=0.0, le=1.0)
    max_backtest_drawdown_pct: float = Field(40.0, ge=0.0)
    min_backtest_sharpe: float = -0.5


@dataclass(frozen=True)
class GateResult:
    """The outcome of one gate: ``passed``, and one sentence per failed rule."""

    gate: str
    passed: bool
    reasons: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """``{"gate", "passed", "reasons"}``."""
        return {"gate": self.gate, "passed": self.passed, "reasons": list(self.reasons)}

    @property
    def reason(self) -> str | None:
        """The failed rules joined into one rejection reason (None when passed)."""
        return None if self.passed else f"{self.gate} gate: " + "; ".join(self.reasons)


def number(metrics: Mapping[str, Any] | None, key: str) -> float:
    """``metrics[key]`` as a float: None or missing is NaN, ``"inf"``/``"-inf"`` (how JSON
    stores infinities) are infinities."""
    value = (metrics or {}).get(key)
    if value is None:
        return math.nan
    if isinstance(value, str):
        return {"inf": math.inf, "-inf": -math.inf}.get(value, math.nan)
    return float(value)


def _fmt(value: float) -> str:
    return "undefined" if math.isnan(value) else f"{value:.4g}"


def training_gate(metrics: Mapping[str, Any] | None, thresholds: GateThresholds, *,
                  kind: str = "template") -> GateResult:
    """Judge in-sample metrics (``trades``, ``sharpe``) by the training gate; for
    ``kind="model"`` the validation metrics (``trades``, ``directional_accuracy``,
    ``validation_sqn``)."""
    reasons = []
    trades = number(metrics, "trades")
    if not trades >= thresholds.min_training_trades:
        where = "validation" if kind == "model" else "in-sample"
        reasons.append(f"{where} trades {_fmt(trades)} < {thresholds.min_training_trades}")
    if kind == "model":
        accuracy = number(metrics, "directional_accuracy")
        if not accuracy >= thresholds.min_directional_accuracy:
            reasons.append(f"validation directional accuracy {_fmt(accuracy)} < "
                           f"{thresholds.min_directional_accuracy:g}")
        sqn = number(metrics, "validation_sqn")
        if not sqn > thresholds.min_validation_sqn:
            reasons.append(f"validation SQN {_fmt(sqn)} is not above "
                           f"{thresholds.min_validation_sqn:g}")
        return GateResult("training", not reasons, tuple(reasons))
    sharpe = number(metrics, "sharpe")
    if not sharpe > thresholds.min_training_sharpe:
        reasons.append(f"in-sample Sharpe {_fmt(sharpe)} is not above "
                       f"{thresholds.min_training_sharpe:g}")
    return GateResult("training", not reasons, tuple(reasons))


def backtest_gate(metrics: Mapping[str, Any] | None, thresholds: GateThresholds) -> GateResult:
    """Judge out-of-sample metrics (``win_rate``, ``max_drawdown_pct``, ``sharpe``) by the
    backtest gate."""
    reasons = []
    win_rate = number(metrics, "win_rate")
    if not win_rate >= thresholds.min_backtest_win_rate:
        reasons.append(f"out-of-sample win rate {_fmt(win_rate)} < "
                       f"{thresholds.min_backtest_win_rate:g}")
    drawdown = number(metrics, "max_drawdown_pct")
    if not drawdown <= thresholds.max_backtest_drawdown_pct:
        reasons.append(f"out-of-sample max drawdown {_fmt(drawdown)}% > "
                       f"{thresholds.max_backtest_drawdown_pct:g}%")
    sharpe = number(metrics, "sharpe")
    if not sharpe >= thresholds.min_backtest_sharpe:
        reasons.append(f"out-of-sample Sharpe {_fmt(sharpe)} < "
                       f"{thresholds.min_backtest_sharpe:g}")
    return GateResult("backtest", not reasons, tuple(reasons))
