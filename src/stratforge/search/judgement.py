"""The run-wide judgement of validated candidates: multiple testing counted across the run.

Given the evidence of every candidate (``search.validation``) and every trial of the run
(sweep and refinement, all combos), :func:`judge_run`:

1. counts the trials: raw (every parameter set simulated), eligible (sets with at least
   ``min_is_trades`` in-sample trades: the ones a choice could pick) and effective (the
   eligible sets reduced for correlation: ``sim.effective_trials.sampled_effective_trials``
   over the in-sample daily PnL of each candidate's sample of eligible sets, each combo a
   stratum standing for its eligible sets);
2. takes the variance of the trials' Sharpe ratios that the DSR's null hypothesis implies:
   when no trial has skill, a trial of n trades has a per-trade Sharpe estimate of variance
   1 / n (``t = SR * sqrt(n)`` is standard normal at SR = 0, whatever the skewness and
   kurtosis, to first order), so on the tested track of n trades V = 1 / n. The observed
   variance of the eligible trials' t values is recorded beside it: on a null market it is
   about 1 (the null holds), and every real edge the search finds spreads it further, which
   would make the benchmark punish a search for finding edges;
3. computes each candidate's deflated Sharpe ratio: its out-of-sample per-trade PnL against
   the expected maximum Sharpe of that many effective trials with that variance; not computed
   below ``dsr_min_trades`` out-of-sample trades ("too few trades");
4. tests the out-of-sample mean (one-sided p-value from the probabilistic Sharpe ratio
   against 0) of every candidate that could become a CANDIDATE (``testable``: in-sample PnL
   and Sharpe above zero, enough out-of-sample trades) and accepts with the
   Benjamini-Hochberg step-up over all of them;
5. measures the run's PBO: CSCV over the union of the candidates' eligible samples (the run's
   selection universe) on in-sample days;
6. assigns the tiers (``search.tiers``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from stratforge.search.tiers import TIER_NAMES, Evidence, TierRules, assign_tier, benjamini_hochberg
from stratforge.search.validation import CandidateResult, ValidationSettings
from stratforge.sim.effective_trials import EffectiveTrials, sampled_effective_trials
from stratforge.sim.overfitting import (
    deflated_sharpe_ratio,
    expected_max_sharpe,
    probabilistic_sharpe_ratio,
    probability_of_backtest_overfitting,
    return_moments,
)

NULL_T_VARIANCE = 1.0
"""Variance of ``SR * sqrt(trades)`` of a trial without skill (Lo 2002; Mertens 2002 at SR 0)."""
MAX_RUN_PBO_CONFIGS = 2048
MAX_EFFECTIVE_COLUMNS = 4096
"""At most this many sampled return series go into the effective-trials estimate (a
correlation matrix of that many columns is 134 MB); above it each stratum keeps an even,
seeded share (at least two). The estimator weighs each stratum by its population, so a
thinner sample stays unbiased. Seed scale (425 candidates x 64 series) needed 27,200 columns:
a 5.9 GB matrix whose correlation crashed the process inside BLAS."""
"""Most configurations the run-level CSCV takes (an even sample over combos beyond it)."""


@dataclass(frozen=True)
class RunDeflation:
    """What every candidate of a run is deflated by."""

    trials: EffectiveTrials
    eligible_trials: int
    t_variance: float            # null variance of SR * sqrt(trades): 1
    observed_t_variance: float   # variance of the eligible trials' SR * sqrt(trades)
    threshold_t: float           # expected maximum of SR * sqrt(trades) over the trials
    candidates_tested: int

    @property
    def n_trials(self) -> float:
        """The trial count the DSR uses: the effective count (at least 1)."""
        return max(1.0, self.trials.effective)

    def sharpe_variance(self, n_trades: int) -> float:
        """The trials' per-trade Sharpe variance on a track of ``n_trades`` trades."""
        return self.t_variance / max(1, n_trades)


def oos_p_value(pnl: np.ndarray) -> float:
    """One-sided p-value that the mean of ``pnl`` is not above zero: 1 - PSR(SR, 0) with the
    trades' skewness and kurtosis; 1 for fewer than three trades or trades without
    dispersion."""
    if len(pnl) < 3:
        return 1.0
    try:
        m = return_moments(pnl)
    except ValueError:
        return 1.0
    kurtosis = max(m.kurtosis, 1.0 + m.skew * m.skew)
    return 1.0 - probabilistic_sharpe_ratio(m.sharpe, m.n_obs, m.skew, kurtosis, 0.0)


def testable(row: dict[str, Any], rules: TierRules) -> bool:
    """Whether a candidate enters the out-of-sample test: in-sample PnL and Sharpe above the
    CANDIDATE thresholds (pre-registered, in-sample) and at least ``candidate_min_trades``
    out-of-sample trades (how many trades there are says nothing about their sign: a filter
    independent of the test under the null keeps its p-values valid). A candidate that fails
    these can never be a CANDIDATE, so testing it would only dilute the others."""
    return (_above(row["is_pnl"], rules.candidate_min_is_pnl)
            and _above(row["is_sharpe"], rules.candidate_min_is_sharpe)
            and int(row["oos_trades"]) >= rules.candidate_min_trades)


def _above(value: float, threshold: float) -> bool:
    return value is not None and math.isfinite(value) and value > threshold


def oos_dsr(pnl: np.ndarray, deflation: RunDeflation, min_trades: int) -> tuple[float, str]:
    """The DSR of out-of-sample per-trade PnL ``pnl`` and why it is not computed when not."""
    if len(pnl) < min_trades:
        return math.nan, f"too few trades ({len(pnl)} < {min_trades})"
    try:
        moments = return_moments(pnl)
    except ValueError:
        return math.nan, "the trades have no dispersion"
    moments = moments._replace(kurtosis=max(moments.kurtosis, 1.0 + moments.skew ** 2))
    return float(deflated_sharpe_ratio(
        moments, n_trials=deflation.n_trials,
        sharpe_variance=deflation.sharpe_variance(len(pnl)))), ""


def capped_columns(strata: np.ndarray, cap: int, seed: int) -> np.ndarray:
    """Positions (sorted) of at most about ``cap`` columns, each stratum keeping an even
    seeded share of its columns (at least two, or all it has); all when they fit."""
    labels = np.asarray(strata)
    if len(labels) <= cap:
        return np.arange(len(labels))
    groups = np.unique(labels)
    share = max(2, cap // len(groups))
    rng = np.random.default_rng([seed, 17])
    keep = [np.sort(rng.choice(ix, min(share, len(ix)), replace=False))
            for ix in (np.flatnonzero(labels == g) for g in groups)]
    return np.sort(np.concatenate(keep))


def run_deflation(trials: pd.DataFrame, results: Sequence[CandidateResult],
                  settings: ValidationSettings, extra_trials: int = 0) -> RunDeflation:
    """The run's raw, eligible and effective trial counts and the Sharpe variance.

    ``extra_trials`` (the optimize phase's evaluations, which keep no daily returns) are
    added to the raw count and to the dropped ones; the effective count is estimated from
    the sampled sweep and refinement trials as before."""
    trades = trials["trades"].to_numpy(dtype=np.float64)
    eligible = trades >= settings.min_is_trades
    t_stats = (trials["sharpe_per_trade"].to_numpy(dtype=np.float64) * np.sqrt(trades))[eligible]
    t_stats = t_stats[np.isfinite(t_stats)]
    variance = float(np.var(t_stats, ddof=1)) if len(t_stats) > 1 else 0.0
    matrix, strata, population = _stacked_samples(results)
    raw = len(trials) + int(extra_trials)
    if matrix.shape[1]:
        columns = capped_columns(strata, MAX_EFFECTIVE_COLUMNS, settings.seed)
        estimate = sampled_effective_trials(matrix.to_numpy()[:, columns], strata[columns],
                                            population)
        estimate = EffectiveTrials(raw, estimate.used, estimate.effective,
                                   raw - estimate.used, estimate.method)
    else:
        estimate = EffectiveTrials(raw, 0, 0.0, raw)
    n_eff = max(1.0, estimate.effective)
    tested = sum(testable(r.row, settings.rules) for r in results)
    return RunDeflation(estimate, int(eligible.sum()), NULL_T_VARIANCE, variance,
                        expected_max_sharpe(n_eff, NULL_T_VARIANCE), tested)


def _stacked_samples(results: Sequence[CandidateResult]
                     ) -> tuple[pd.DataFrame, np.ndarray, dict[int, int]]:
    parts, strata, population = [], [], {}
    for index, result in enumerate(results):
        if result.is_daily.shape[1] == 0:
            continue
        parts.append(result.is_daily.set_axis(
            [f"{index}:{c}" for c in result.is_daily.columns], axis=1))
        strata.extend([index] * result.is_daily.shape[1])
        population[index] = max(result.eligible_trials, result.is_daily.shape[1])
    if not parts:
        return pd.DataFrame(), np.empty(0, dtype=np.int64), {}
    matrix = pd.concat(parts, axis=1).sort_index().fillna(0.0)
    return matrix, np.asarray(strata, dtype=np.int64), population


def run_pbo(results: Sequence[CandidateResult], splits: int, seed: int) -> tuple[float, str, int]:
    """PBO of the run's choice among every candidate's eligible sample (CSCV on in-sample
    days): the value, why it is not computed when not, and the configurations used."""
    matrix, _strata, _ = _stacked_samples(results)
    if matrix.shape[1] > MAX_RUN_PBO_CONFIGS:
        rng = np.random.default_rng([seed, 11])
        keep = np.sort(rng.choice(matrix.shape[1], MAX_RUN_PBO_CONFIGS, replace=False))
        matrix = matrix.iloc[:, keep]
    if matrix.shape[1] < 2:
        return math.nan, "fewer than two eligible parameter sets in the run", matrix.shape[1]
    if matrix.shape[0] < splits:
        return (math.nan, f"{matrix.shape[0]} in-sample days < {splits} CSCV blocks",
                matrix.shape[1])
    result = probability_of_backtest_overfitting(matrix.to_numpy(), splits)
    return float(result.pbo), "", matrix.shape[1]


def judge_run(trials: pd.DataFrame, results: Sequence[CandidateResult],
              settings: ValidationSettings, extra_trials: int = 0
              ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every candidate's finished validation row (DSR, out-of-sample test, tier) and the
    run's overfitting block (trials raw and effective, DSR threshold, run PBO, rules);
    ``extra_trials``: the optimize phase's count, added to the raw trials."""
    rules: TierRules = settings.rules
    deflation = run_deflation(trials, results, settings, extra_trials)
    tested = np.array([testable(r.row, rules) for r in results], dtype=bool)
    p_values = np.array([oos_p_value(r.oos_trade_pnl) if t else math.nan
                         for r, t in zip(results, tested, strict=True)], dtype=np.float64)
    accepted = benjamini_hochberg(p_values[tested], rules.candidate_fdr)
    accepted = np.isin(np.arange(len(results)), np.flatnonzero(tested)[accepted])
    rows = []
    for result, p, ok in zip(results, p_values, accepted, strict=True):
        row = dict(result.row)
        dsr, dsr_note = oos_dsr(result.oos_trade_pnl, deflation, rules.dsr_min_trades)
        evidence = Evidence(
            is_pnl=row["is_pnl"], is_sharpe=row["is_sharpe"], oos_trades=row["oos_trades"],
            oos_win_rate=row["oos_win_rate"], oos_pnl=row["oos_pnl"],
            oos_sharpe=row["oos_sharpe"], dsr=dsr, dsr_note=dsr_note, pbo=row["pbo"],
            pbo_note=row["pbo_note"], oos_accepted=bool(ok), oos_p_value=float(p))
        tier, reasons = assign_tier(evidence, rules)
        row.update({"oos_p_value": float(p), "oos_accepted": bool(ok), "dsr": dsr,
                    "dsr_note": dsr_note, "tier": tier, "tier_name": TIER_NAMES[tier],
                    "reasons": reasons})
        rows.append(row)
    pbo, pbo_note, pbo_configs = run_pbo(results, settings.pbo_splits, settings.seed)
    block = {
        "trials": {**deflation.trials.to_json(), "eligible": deflation.eligible_trials,
                   "optimize": int(extra_trials),
                   "min_is_trades": settings.min_is_trades},
        "t_variance": deflation.t_variance,
        "observed_t_variance": deflation.observed_t_variance,
        "dsr": {"n_trials": deflation.n_trials, "threshold_t": deflation.threshold_t,
                "min_dsr": rules.production_min_dsr, "min_trades": rules.dsr_min_trades},
        "oos_test": {"candidates_tested": deflation.candidates_tested,
                     "candidates": len(results),
                     "method": "Benjamini-Hochberg over one-sided PSR p-values",
                     "fdr": rules.candidate_fdr, "accepted": int(accepted.sum())},
        "run_pbo": {"value": pbo, "note": pbo_note, "configs": pbo_configs,
                    "splits": settings.pbo_splits},
    }
    return rows, block
