"""The tiers of a validated strategy and the rules that set them.

A strategy is chosen and ranked on in-sample evidence only (its combo's best in-sample set by
per-trade Sharpe); out-of-sample results only accept or reject it, and every acceptance is
deflated for the search behind it:

- 1 PRODUCTION: every CANDIDATE rule, plus out-of-sample trades, win rate, PnL and annualised
  Sharpe above their thresholds, a deflated Sharpe ratio (run-wide effective trials) of at
  least ``production_min_dsr`` on at least ``dsr_min_trades`` out-of-sample trades, and a PBO
  of the combo's selection below ``production_max_pbo``;
- 2 CANDIDATE: in-sample PnL and Sharpe above zero, at least ``candidate_min_trades``
  out-of-sample trades with PnL above ``candidate_min_pnl``, and out-of-sample trades whose
  mean is significantly above zero after the Benjamini-Hochberg step-up over every candidate
  tested out of sample (false-discovery rate ``candidate_fdr``; a candidate is tested when it
  passes the in-sample and trade-count rules, ``search.judgement.testable``);
- 3 UNPROVEN: at least ``unproven_min_trades`` out-of-sample trades;
- 4 TOXIC: the rest.

Rules: docs/research.md ("Validation and tiers").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from stratforge.errors import ConfigError

TIER_NAMES: dict[int, str] = {1: "PRODUCTION", 2: "CANDIDATE", 3: "UNPROVEN", 4: "TOXIC"}


@dataclass(frozen=True)
class TierRules:
    """Tier thresholds. PnL in account currency, Sharpe annualised from daily PnL, the DSR and
    the out-of-sample test on per-trade PnL. A strategy is in the best tier whose every rule
    it passes."""

    production_min_trades: int = 20
    production_min_win_rate: float = 0.45
    production_min_pnl: float = 0.0
    production_min_sharpe: float = 0.3
    production_min_dsr: float = 0.95
    dsr_min_trades: int = 30
    production_max_pbo: float = 0.5
    candidate_min_trades: int = 10
    candidate_min_pnl: float = 0.0
    candidate_min_is_pnl: float = 0.0
    candidate_min_is_sharpe: float = 0.0
    candidate_fdr: float = 0.05
    unproven_min_trades: int = 5

    def __post_init__(self) -> None:
        if not 0.0 < self.candidate_fdr < 1.0:
            raise ConfigError(f"candidate_fdr must lie in (0, 1), got {self.candidate_fdr}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> TierRules:
        """Rules with the given overrides; an unknown name is a ConfigError."""
        values = dict(values or {})
        unknown = [k for k in values if k not in cls.__dataclass_fields__]
        if unknown:
            raise ConfigError(f"unknown tier rule(s) {', '.join(unknown)}; known: "
                              f"{', '.join(cls.__dataclass_fields__)}")
        return cls(**values)


@dataclass(frozen=True)
class Evidence:
    """What the tier of one strategy is decided on."""

    is_pnl: float
    is_sharpe: float
    oos_trades: int
    oos_win_rate: float
    oos_pnl: float
    oos_sharpe: float
    dsr: float
    dsr_note: str          # why the DSR is not computed ("" when it is)
    pbo: float
    pbo_note: str          # why the PBO is not computed ("" when it is)
    oos_accepted: bool     # passed the deflated out-of-sample test
    oos_p_value: float


def _above(value: float, threshold: float) -> bool:
    return value is not None and math.isfinite(value) and value > threshold


def candidate_failures(e: Evidence, rules: TierRules) -> list[str]:
    """The CANDIDATE rules ``e`` fails (empty: it is at least a CANDIDATE)."""
    failed = []
    if not _above(e.is_pnl, rules.candidate_min_is_pnl):
        failed.append(f"in-sample PnL {e.is_pnl:.2f} <= {rules.candidate_min_is_pnl}")
    if not _above(e.is_sharpe, rules.candidate_min_is_sharpe):
        failed.append(f"in-sample Sharpe {e.is_sharpe:.3f} <= {rules.candidate_min_is_sharpe}")
    if e.oos_trades < rules.candidate_min_trades:
        failed.append(f"trades {e.oos_trades} < {rules.candidate_min_trades}")
    if not _above(e.oos_pnl, rules.candidate_min_pnl):
        failed.append(f"PnL {e.oos_pnl:.2f} <= {rules.candidate_min_pnl}")
    if not e.oos_accepted and math.isfinite(e.oos_p_value):
        failed.append(f"out-of-sample mean not significant after Benjamini-Hochberg "
                      f"(p {e.oos_p_value:.3g}, FDR {rules.candidate_fdr})")
    elif not e.oos_accepted and not failed:
        failed.append("out-of-sample mean not tested")
    return failed


def production_failures(e: Evidence, rules: TierRules) -> list[str]:
    """The PRODUCTION rules ``e`` fails beyond the CANDIDATE ones."""
    failed = []
    if e.oos_trades < rules.production_min_trades:
        failed.append(f"trades {e.oos_trades} < {rules.production_min_trades}")
    if not _above(e.oos_win_rate, rules.production_min_win_rate):
        failed.append(f"win rate {e.oos_win_rate:.3f} <= {rules.production_min_win_rate}")
    if not _above(e.oos_pnl, rules.production_min_pnl):
        failed.append(f"PnL {e.oos_pnl:.2f} <= {rules.production_min_pnl}")
    if not _above(e.oos_sharpe, rules.production_min_sharpe):
        failed.append(f"Sharpe {e.oos_sharpe:.3f} <= {rules.production_min_sharpe}")
    if e.dsr_note:
        failed.append(f"DSR not computed: {e.dsr_note}")
    elif not (math.isfinite(e.dsr) and e.dsr >= rules.production_min_dsr):
        failed.append(f"DSR {e.dsr:.3f} < {rules.production_min_dsr}")
    if e.pbo_note:
        failed.append(f"PBO not computed: {e.pbo_note}")
    elif not (math.isfinite(e.pbo) and e.pbo < rules.production_max_pbo):
        failed.append(f"PBO {e.pbo:.3f} >= {rules.production_max_pbo}")
    return failed


def assign_tier(e: Evidence, rules: TierRules) -> tuple[int, str]:
    """The tier (1-4) of ``e`` and why it is not in a better one."""
    candidate = candidate_failures(e, rules)
    production = production_failures(e, rules)
    # a rule both tiers state (trades, PnL) is reported once
    failed = candidate + [f for f in production if f not in candidate]
    if not failed:
        return 1, ""
    why = "; ".join(failed)
    if not candidate:
        return 2, why
    if e.oos_trades >= rules.unproven_min_trades:
        return 3, why
    return 4, why


def benjamini_hochberg(p_values: np.ndarray, fdr: float) -> np.ndarray:
    """Which hypotheses the Benjamini-Hochberg step-up rejects at false-discovery rate
    ``fdr``: with the K p-values sorted, p_(1) <= ... <= p_(K), reject the k smallest for the
    largest k with ``p_(k) <= k * fdr / K``. NaN p-values are never rejected but count in K.
    When every hypothesis is null this also bounds the chance of any rejection by ``fdr``."""
    p = np.asarray(p_values, dtype=np.float64)
    k_total = p.size
    if k_total == 0:
        return np.zeros(0, dtype=bool)
    filled = np.where(np.isfinite(p), p, np.inf)
    order = np.argsort(filled, kind="stable")
    passing = filled[order] <= fdr * np.arange(1, k_total + 1) / k_total
    reject = np.zeros(k_total, dtype=bool)
    if passing.any():
        last = int(np.flatnonzero(passing).max())
        reject[order[:last + 1]] = True
    return reject
