"""Walk-forward validation of candidate strategies, and the tiers.

A candidate is one (template, timeframe) combo with its best in-sample parameter set (the
highest per-trade Sharpe among the sets with enough in-sample trades). It is re-simulated
with those parameters, fixed, on the out-of-sample bars, which start flat; then judged:

- the deflated Sharpe ratio (DSR) of its out-of-sample per-trade PnL, counting every
  parameter set tried for the combo (sweep and refinement) as a trial, with the variance of
  their in-sample per-trade Sharpe ratios;
- the probability of backtest overfitting (PBO, CSCV) of choosing the best of the combo's
  parameter sets, on their daily PnL over the whole span (computed for candidates that pass
  every other Tier 1 rule);
- a rolling walk-forward: the span cut into ``folds + 1`` equal parts by bars; fold i picks
  the best set on parts ``0..i-1`` (anchored) and trades it on part i.

Tiers (:func:`assign_tier`): 1 PRODUCTION, 2 CANDIDATE, 3 UNPROVEN, 4 TOXIC, with the
thresholds of :class:`TierRules`. Rules: docs/research.md ("Validation and tiers").
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from stratforge.errors import ConfigError
from stratforge.instruments import Instrument, get_instrument
from stratforge.search.refine import best_params
from stratforge.search.sweep import PairJob, load_pair_bars, pair_entries
from stratforge.sim.backtest import simulate, sweep
from stratforge.sim.metrics import compute_metrics, daily_pnl
from stratforge.sim.overfitting import deflated_sharpe_ratio, probability_of_backtest_overfitting
from stratforge.sim.params import EXIT_PARAM_NAMES, Costs

TIER_NAMES: dict[int, str] = {1: "PRODUCTION", 2: "CANDIDATE", 3: "UNPROVEN", 4: "TOXIC"}
VALIDATION_COLUMNS: tuple[str, ...] = (
    "strategy_id", "template_id", "timeframe", "direction", "params", "n_trials",
    "is_trades", "is_win_rate", "is_pnl", "is_sharpe", "is_sharpe_per_trade",
    "oos_trades", "oos_win_rate", "oos_pnl", "oos_sharpe", "oos_sharpe_per_trade",
    "dsr", "pbo", "wf_positive_folds", "wf_folds", "wf_oos_pnl", "wf_fold_pnl",
    "tier", "tier_name", "reasons",
)
"""Columns of ``validation.parquet``, one row per candidate."""
_FLOAT_COLUMNS = ("is_win_rate", "is_pnl", "is_sharpe", "is_sharpe_per_trade", "oos_win_rate",
                  "oos_pnl", "oos_sharpe", "oos_sharpe_per_trade", "dsr", "pbo", "wf_oos_pnl")


@dataclass(frozen=True)
class TierRules:
    """Tier thresholds (out-of-sample figures; PnL in account currency, Sharpe annualised
    from daily PnL). A strategy is in the best tier whose every rule it passes."""

    production_min_trades: int = 20
    production_min_win_rate: float = 0.45
    production_min_pnl: float = 0.0
    production_min_sharpe: float = 0.3
    production_min_dsr: float = 0.95
    dsr_min_trades: int = 30
    production_max_pbo: float = 0.5
    candidate_min_trades: int = 10
    candidate_min_pnl: float = 0.0
    unproven_min_trades: int = 5

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
class ValidationSettings:
    """How candidates are chosen and judged."""

    folds: int = 4
    min_is_trades: int = 10
    pbo_configs: int = 64
    pbo_splits: int = 10
    wf_configs: int = 256
    seed: int = 0
    rules: TierRules = field(default_factory=TierRules)

    def __post_init__(self) -> None:
        if self.folds < 0 or self.min_is_trades < 1 or self.pbo_configs < 2 \
                or self.wf_configs < 1:
            raise ConfigError("validation needs folds >= 0, min_is_trades >= 1, "
                              "pbo_configs >= 2 and wf_configs >= 1")


def _passes(value: float, threshold: float, above: bool = True) -> bool:
    if value is None or not math.isfinite(value):
        return False
    return value > threshold if above else value < threshold


def production_failures(trades: int, win_rate: float, pnl: float, sharpe: float, dsr: float,
                        pbo: float, rules: TierRules) -> list[str]:
    """The Tier 1 rules a strategy fails (empty: it is PRODUCTION)."""
    failed = []
    if trades < rules.production_min_trades:
        failed.append(f"trades {trades} < {rules.production_min_trades}")
    if not _passes(win_rate, rules.production_min_win_rate):
        failed.append(f"win rate {win_rate:.3f} <= {rules.production_min_win_rate}")
    if not _passes(pnl, rules.production_min_pnl):
        failed.append(f"PnL {pnl:.2f} <= {rules.production_min_pnl}")
    if not _passes(sharpe, rules.production_min_sharpe):
        failed.append(f"Sharpe {sharpe:.3f} <= {rules.production_min_sharpe}")
    if trades < rules.dsr_min_trades:
        failed.append(f"DSR not computed: too few trades ({trades} < {rules.dsr_min_trades})")
    elif dsr is None or not math.isfinite(dsr):
        failed.append("DSR not computed: the trades have no dispersion")
    elif dsr < rules.production_min_dsr:
        failed.append(f"DSR {dsr:.3f} < {rules.production_min_dsr}")
    if not _passes(pbo, rules.production_max_pbo, above=False):
        failed.append("PBO not computed" if pbo is None or not math.isfinite(pbo)
                      else f"PBO {pbo:.3f} >= {rules.production_max_pbo}")
    return failed


def assign_tier(trades: int, win_rate: float, pnl: float, sharpe: float, dsr: float,
                pbo: float, rules: TierRules) -> tuple[int, str]:
    """The tier (1-4) of an out-of-sample result and why it is not in a better one."""
    failed = production_failures(trades, win_rate, pnl, sharpe, dsr, pbo, rules)
    if not failed:
        return 1, ""
    why = "; ".join(failed)
    if trades >= rules.candidate_min_trades and _passes(pnl, rules.candidate_min_pnl):
        return 2, why
    if trades >= rules.unproven_min_trades:
        return 3, why
    return 4, why


def exit_params(params: Mapping[str, float]) -> dict[str, float]:
    """The exit parameters of one parameter set (other columns dropped)."""
    return {k: float(v) for k, v in params.items() if k in EXIT_PARAM_NAMES}


@dataclass
class Candidate:
    """One combo to validate: its bars over the whole span, its signals, its trials."""

    template_id: str
    timeframe: str
    direction: int
    bars: pd.DataFrame
    entries: np.ndarray
    sides: np.ndarray
    n_train: int
    trials: pd.DataFrame
    param_names: Sequence[str]


@dataclass
class CandidateResult:
    """The validation row of a candidate and its trades in and out of sample."""

    row: dict[str, Any]
    is_trades: pd.DataFrame
    oos_trades: pd.DataFrame


def _segment(c: Candidate, lo: int, hi: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    keep = (c.entries >= lo) & (c.entries < hi)
    bars = c.bars.iloc[lo:hi].reset_index(drop=True)
    return bars, c.entries[keep] - lo, c.sides[keep]


def _run(c: Candidate, lo: int, hi: int, params: Mapping[str, float], instrument: Instrument,
         costs: Costs, fill: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    bars, entries, sides = _segment(c, lo, hi)
    trades = simulate(bars, entries, sides, exit_params(params), instrument=instrument,
                      costs=costs,
                      fill=fill)
    return trades, bars


def _per_trade_sharpe(pnl: np.ndarray) -> float:
    if len(pnl) < 2 or not np.std(pnl, ddof=1) > 0:
        return math.nan
    return float(np.mean(pnl) / np.std(pnl, ddof=1))


def deflated_oos_sharpe(pnl: np.ndarray, trial_sharpes: np.ndarray, trial_trades: np.ndarray,
                        min_trades: int, min_trial_trades: int) -> float:
    """The deflated Sharpe ratio of out-of-sample trade PnL ``pnl`` against the trials that
    chose it: NaN below ``min_trades`` trades (too few to judge) or for trades without
    dispersion; the variance of the trials' per-trade Sharpe ratios is taken over the trials
    with at least ``min_trial_trades`` trades (a set of 2 trades has a meaningless Sharpe
    ratio that would inflate it); the trial count is every trial."""
    # equal trades (up to rounding: the same exit on every trade) have no Sharpe ratio
    if len(pnl) < max(3, min_trades) or \
            not np.std(pnl, ddof=1) > 1e-12 * float(np.abs(pnl).max()):
        return math.nan
    enough = np.isfinite(trial_sharpes) & (trial_trades >= min_trial_trades)
    finite = trial_sharpes[enough]
    variance = float(np.var(finite, ddof=1)) if len(finite) > 1 else 0.0
    return float(deflated_sharpe_ratio(pnl, n_trials=max(1, len(trial_sharpes)),
                                       sharpe_variance=variance))


def _config_sample(c: Candidate, best: Mapping[str, float], limit: int, seed: int
                   ) -> pd.DataFrame:
    """The best set first, then up to ``limit - 1`` other trials drawn without replacement."""
    names = list(c.param_names)
    table = c.trials[names].drop_duplicates().reset_index(drop=True)
    best_row = pd.DataFrame([{n: best[n] for n in names}])
    others = table[~(table[names].to_numpy() == best_row.to_numpy()).all(axis=1)]
    rng = np.random.default_rng([seed, 7])
    take = rng.permutation(len(others))[:max(0, limit - 1)]
    return pd.concat([best_row, others.iloc[np.sort(take)]], ignore_index=True)


def _pbo(c: Candidate, best: Mapping[str, float], settings: ValidationSettings,
         instrument: Instrument, costs: Costs, fill: str) -> float:
    configs = _config_sample(c, best, settings.pbo_configs, settings.seed)
    if len(configs) < 2:
        return math.nan
    columns = []
    for row in configs.to_dict("records"):
        trades, bars = _run(c, 0, len(c.bars), row, instrument, costs, fill)
        columns.append(daily_pnl(trades, instrument=instrument, bars=bars))
    matrix = pd.concat(columns, axis=1).fillna(0.0).to_numpy()
    if matrix.shape[0] < settings.pbo_splits:
        return math.nan
    return float(probability_of_backtest_overfitting(matrix, settings.pbo_splits).pbo)


def _walk_forward(c: Candidate, best: Mapping[str, float], settings: ValidationSettings,
                  instrument: Instrument, costs: Costs, fill: str) -> list[float]:
    if settings.folds < 1:
        return []
    edges = np.linspace(0, len(c.bars), settings.folds + 2).astype(np.int64)
    configs = _config_sample(c, best, settings.wf_configs, settings.seed)
    names = list(c.param_names)
    fold_pnl = []
    for i in range(1, settings.folds + 1):
        bars, entries, sides = _segment(c, 0, int(edges[i]))
        summary = sweep(bars, entries, sides, configs, instrument=instrument, costs=costs,
                        fill=fill)
        chosen = best_params(summary, names, settings.min_is_trades)
        trades, _ = _run(c, int(edges[i]), int(edges[i + 1]), chosen, instrument, costs, fill)
        fold_pnl.append(float(trades["pnl"].sum()))
    return fold_pnl


def validate_candidate(c: Candidate, *, instrument: Instrument, settings: ValidationSettings,
                       costs: Costs | None = None, fill: str = "close") -> CandidateResult:
    """Validate one candidate: in-sample and out-of-sample runs with the best in-sample set,
    DSR, PBO (when every other Tier 1 rule passes), walk-forward folds and the tier. Every
    run charges ``costs`` (default: the instrument's cost model)."""
    costs = instrument.costs if costs is None else costs
    names = list(c.param_names)
    best = best_params(c.trials, names, settings.min_is_trades)
    best = {n: (int(v) if float(v).is_integer() else float(v)) for n, v in best.items()}
    is_trades, is_bars = _run(c, 0, c.n_train, best, instrument, costs, fill)
    oos_trades, oos_bars = _run(c, c.n_train, len(c.bars), best, instrument, costs, fill)
    is_m = compute_metrics(is_trades, instrument=instrument, bars=is_bars)
    oos_m = compute_metrics(oos_trades, instrument=instrument, bars=oos_bars)
    oos_pnl = oos_trades["pnl"].to_numpy(dtype=np.float64)
    dsr = deflated_oos_sharpe(oos_pnl, c.trials["sharpe_per_trade"].to_numpy(dtype=np.float64),
                              c.trials["trades"].to_numpy(dtype=np.float64),
                              settings.rules.dsr_min_trades, settings.min_is_trades)
    rules = settings.rules
    pbo = math.nan
    others = production_failures(oos_m.trades, oos_m.win_rate, oos_m.total_pnl, oos_m.sharpe,
                                 dsr, 0.0, rules)
    if not others:
        pbo = _pbo(c, best, settings, instrument, costs, fill)
    folds = _walk_forward(c, best, settings, instrument, costs, fill)
    tier, reasons = assign_tier(oos_m.trades, oos_m.win_rate, oos_m.total_pnl, oos_m.sharpe,
                                dsr, pbo, rules)
    row = {
        "strategy_id": f"{c.template_id}_{c.timeframe}",
        "template_id": c.template_id, "timeframe": c.timeframe, "direction": int(c.direction),
        "params": json.dumps(best, sort_keys=True), "n_trials": len(c.trials),
        "is_trades": is_m.trades, "is_win_rate": is_m.win_rate, "is_pnl": is_m.total_pnl,
        "is_sharpe": is_m.sharpe,
        "is_sharpe_per_trade": _per_trade_sharpe(is_trades["pnl"].to_numpy(np.float64)),
        "oos_trades": oos_m.trades, "oos_win_rate": oos_m.win_rate,
        "oos_pnl": oos_m.total_pnl, "oos_sharpe": oos_m.sharpe,
        "oos_sharpe_per_trade": _per_trade_sharpe(oos_pnl),
        "dsr": dsr, "pbo": pbo,
        "wf_positive_folds": int(sum(p > 0 for p in folds)), "wf_folds": len(folds),
        "wf_oos_pnl": float(sum(folds)), "wf_fold_pnl": json.dumps([round(p, 6) for p in folds]),
        "tier": tier, "tier_name": TIER_NAMES[tier], "reasons": reasons,
    }
    return CandidateResult(row, is_trades, oos_trades)


def validation_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Validation rows as a typed frame (``VALIDATION_COLUMNS``), sorted by tier, then
    out-of-sample PnL (descending), then strategy id."""
    frame = pd.DataFrame(list(rows), columns=list(VALIDATION_COLUMNS))
    for name in ("n_trials", "is_trades", "oos_trades", "wf_positive_folds", "wf_folds"):
        frame[name] = frame[name].astype(np.int64)
    frame["direction"] = frame["direction"].astype(np.int8)
    frame["tier"] = frame["tier"].astype(np.int8)
    for name in ("strategy_id", "template_id", "timeframe", "params", "wf_fold_pnl",
                 "tier_name", "reasons"):
        frame[name] = frame[name].astype("str")
    for name in _FLOAT_COLUMNS:
        frame[name] = frame[name].astype(np.float64)
    order = np.lexsort((frame["strategy_id"].to_numpy(), -frame["oos_pnl"].fillna(-np.inf)
                        .to_numpy(), frame["tier"].to_numpy()))
    return frame.iloc[order].reset_index(drop=True)


@dataclass(frozen=True)
class ValidationJob:
    """One candidate to validate in a worker, by reference: the pair's job (bars span
    open at both ends) plus its trials, the in-sample end and the settings."""

    pair: PairJob
    direction: int
    train_end_ns: int
    trials: pd.DataFrame
    param_names: tuple[str, ...]
    settings: ValidationSettings


def validate_job(job: ValidationJob) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
    """Worker side of validation: load the pair's bars and matches, validate, and return the
    row and the in- and out-of-sample trades (``exit_time`` and ``pnl`` only)."""
    pair = job.pair
    bars = load_pair_bars(pair)
    entries, sides = pair_entries(pair, bars)
    n_train = int(np.searchsorted(bars["ts"].array.asi8, job.train_end_ns, side="left"))
    candidate = Candidate(pair.template_id, pair.timeframe, job.direction, bars, entries,
                          sides, n_train, job.trials, job.param_names)
    result = validate_candidate(candidate, instrument=get_instrument(pair.symbol, pair.home),
                                settings=job.settings, costs=Costs(**pair.costs),
                                fill=pair.fill)
    keep = ["exit_time", "pnl"]
    return result.row, result.is_trades[keep], result.oos_trades[keep]
