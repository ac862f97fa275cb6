"""The assessment of a finished design: a verdict with strengths, weaknesses and suggestions,
derived from the metrics by the rules below (also in docs/agent.md, "Assessment").

``IS`` are the in-sample (training) metrics of the chosen parameter set, ``OOS`` the
out-of-sample (backtest) metrics; Sharpe is the annualised daily Sharpe. A design is
*rejected* when a gate failed and gates were enforced (not bypassed).

Verdict, first rule that applies:

1. ``poor``: rejected; or there is no out-of-sample result; or OOS has no trade; or OOS
   total PnL <= 0.
2. ``promising``: OOS Sharpe >= 1.0, OOS profit factor >= 1.2 and at least 10 OOS trades.
3. ``mediocre``: everything else (made money out of sample, without enough evidence).

Strengths: OOS Sharpe >= 1.0; OOS win rate >= 0.55; OOS profit factor >= 1.5; OOS max
drawdown <= 10 %; OOS Sharpe at least half the IS Sharpe (IS Sharpe > 0, OOS Sharpe > 0):
"holds up out of sample"; at least 100 IS trades.

Weaknesses: every failed gate rule (also when gates were bypassed); fewer than 10 OOS
trades; OOS Sharpe < 0; OOS Sharpe below half the IS Sharpe (IS Sharpe > 0): "decays out of
sample"; OOS max drawdown > 20 %; OOS profit factor < 1.

Suggestions, one per condition: too few IS trades -> match every bar (``match_bars: all``)
or a finer timeframe; IS Sharpe <= 0 -> another template or region; decay -> a narrower
region or a smaller search (``n_sets``), the gap smells of overfitting; OOS win rate below
the gate -> the ``tight`` region (closer targets win more often); OOS drawdown > 20 % ->
tighter stops (``tight``); promising -> confirm with walk-forward validation on more data
(``stratforge run``). With no suggestion triggered: "try the next arm".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from stratforge.ops.agent.gates import GateResult, GateThresholds, number

VERDICTS = ("promising", "mediocre", "poor")
PROMISING_SHARPE = 1.0
PROMISING_PROFIT_FACTOR = 1.2
MIN_OOS_TRADES = 10
STRONG_WIN_RATE = 0.55
STRONG_PROFIT_FACTOR = 1.5
LOW_DRAWDOWN_PCT = 10.0
HIGH_DRAWDOWN_PCT = 20.0
DECAY_RATIO = 0.5
MANY_IS_TRADES = 100


@dataclass(frozen=True)
class Assessment:
    """A verdict (one of ``VERDICTS``) and the sentences that explain it."""

    verdict: str
    strengths: list[str] = field(default_factory=list)
    weaknesses: list[str] = field(default_factory=list)
    suggestions: list[str] = field(default_factory=list)
    rejected: bool = False

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return {"verdict": self.verdict, "strengths": list(self.strengths),
                "weaknesses": list(self.weaknesses), "suggestions": list(self.suggestions),
                "rejected": self.rejected}


def _verdict(rejected: bool, oos: Mapping[str, Any] | None) -> str:
    trades, pnl = number(oos, "trades"), number(oos, "total_pnl")
    if rejected or oos is None or not trades > 0 or not pnl > 0:
        return "poor"
    if (number(oos, "sharpe") >= PROMISING_SHARPE
            and number(oos, "profit_factor") >= PROMISING_PROFIT_FACTOR
            and trades >= MIN_OOS_TRADES):
        return "promising"
    return "mediocre"


def _strengths(is_: Mapping[str, Any] | None, oos: Mapping[str, Any] | None) -> list[str]:
    out = []
    if oos is not None:
        sharpe = number(oos, "sharpe")
        if sharpe >= PROMISING_SHARPE:
            out.append(f"out-of-sample Sharpe {sharpe:.2f} >= {PROMISING_SHARPE:g}")
        if number(oos, "win_rate") >= STRONG_WIN_RATE:
            out.append(f"out-of-sample win rate {number(oos, 'win_rate'):.0%}")
        if number(oos, "profit_factor") >= STRONG_PROFIT_FACTOR:
            out.append(f"out-of-sample profit factor {number(oos, 'profit_factor'):.2f}")
        if number(oos, "trades") > 0 and number(oos, "max_drawdown_pct") <= LOW_DRAWDOWN_PCT:
            out.append(f"shallow out-of-sample drawdown "
                       f"({number(oos, 'max_drawdown_pct'):.1f}%)")
        is_sharpe = number(is_, "sharpe")
        if is_sharpe > 0 and sharpe > 0 and sharpe >= DECAY_RATIO * is_sharpe:
            out.append(f"holds up out of sample (Sharpe {is_sharpe:.2f} in, {sharpe:.2f} out)")
    if number(is_, "trades") >= MANY_IS_TRADES:
        out.append(f"large in-sample sample ({int(number(is_, 'trades'))} trades)")
    return out


def _weaknesses(is_: Mapping[str, Any] | None, oos: Mapping[str, Any] | None,
                gates: list[GateResult]) -> list[str]:
    out = [f"{g.gate} gate: {r}" for g in gates for r in g.reasons]
    if oos is None:
        out.append("not backtested out of sample")
        return out
    trades = number(oos, "trades")
    if not trades >= MIN_OOS_TRADES:
        out.append(f"few out-of-sample trades ({0 if math.isnan(trades) else int(trades)}): "
                   "the results are noise-prone")
    sharpe, is_sharpe = number(oos, "sharpe"), number(is_, "sharpe")
    if sharpe < 0:
        out.append(f"negative out-of-sample Sharpe ({sharpe:.2f})")
    if is_sharpe > 0 and not sharpe >= DECAY_RATIO * is_sharpe:
        out.append(f"decays out of sample (Sharpe {is_sharpe:.2f} in, "
                   f"{'undefined' if math.isnan(sharpe) else f'{sharpe:.2f}'} out)")
    if number(oos, "max_drawdown_pct") > HIGH_DRAWDOWN_PCT:
        out.append(f"deep out-of-sample drawdown ({number(oos, 'max_drawdown_pct'):.1f}%)")
    if number(oos, "profit_factor") < 1:
        out.append(f"out-of-sample profit factor {number(oos, 'profit_factor'):.2f} < 1")
    return out


def _suggestions(verdict: str, is_: Mapping[str, Any] | None, oos: Mapping[str, Any] | None,
                 thresholds: GateThresholds) -> list[str]:
    out = []
    if not number(is_, "trades") >= thresholds.min_training_trades:
        out.append("too few in-sample trades: match every bar (match_bars: all) or a finer "
                   "timeframe")
    is_sharpe = number(is_, "sharpe")
    if not is_sharpe > 0:
        out.append("no in-sample edge: try another template or parameter region")
    if oos is not None:
        sharpe = number(oos, "sharpe")
        if is_sharpe > 0 and not sharpe >= DECAY_RATIO * is_sharpe:
            out.append("the in/out-of-sample gap smells of overfitting: try a narrower "
                       "region or fewer parameter sets (n_sets)")
        if number(oos, "win_rate") < thresholds.min_backtest_win_rate:
            out.append("low win rate: the tight region (closer targets) wins more often")
        if number(oos, "max_drawdown_pct") > HIGH_DRAWDOWN_PCT:
            out.append("deep drawdown: tighter stops (region tight)")
    if verdict == "promising":
        out.append("confirm with walk-forward validation on more data (stratforge run)")
    return out or ["nothing stands out: try the next arm"]


def assess(training: Mapping[str, Any] | None, backtest: Mapping[str, Any] | None,
           gates: list[GateResult], *, enforced: bool, thresholds: GateThresholds
           ) -> Assessment:
    """Assess a design from its in-sample (``training``) and out-of-sample (``backtest``)
    metrics and its gate results, by the rules of the module docstring. ``enforced`` is
    False when the cycle bypassed the gates (failed rules are then weaknesses only)."""
    rejected = enforced and any(not g.passed for g in gates)
    verdict = _verdict(rejected, backtest)
    return Assessment(verdict, _strengths(training, backtest),
                      _weaknesses(training, backtest, gates),
                      _suggestions(verdict, training, backtest, thresholds), rejected)
