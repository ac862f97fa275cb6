"""Validation of candidate strategies: the evidence of one (template, timeframe) combo.

A candidate is one combo with its best in-sample parameter set (the pre-registered criterion:
highest per-trade Sharpe among the sets with at least ``min_is_trades`` in-sample trades). A
worker gathers its evidence (:func:`validate_candidate`):

- the set traded fixed on the in-sample bars and on the out-of-sample bars, which start flat;
- the in-sample daily PnL of a sample of the combo's eligible sets (the sets the choice could
  have picked) and the PBO (CSCV) of choosing among them, on in-sample days only;
- an anchored walk-forward over the out-of-sample bars: each fold's set is chosen from the
  combo's in-sample pool using only bars before the fold, then traded on the fold, with the
  walk-forward efficiency of the choice.

The run-wide judgement (effective trials, DSR, the out-of-sample test across candidates, run
PBO, tiers) is ``search.judgement``. Rules: docs/research.md ("Validation and tiers").
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
from stratforge.search.tiers import TierRules
from stratforge.sim.backtest import simulate, sweep
from stratforge.sim.metrics import compute_metrics, daily_pnl
from stratforge.sim.overfitting import probability_of_backtest_overfitting
from stratforge.sim.params import EXIT_PARAM_NAMES, Costs

VALIDATION_COLUMNS: tuple[str, ...] = (
    "strategy_id", "template_id", "timeframe", "direction", "params", "n_trials",
    "is_trades", "is_win_rate", "is_pnl", "is_sharpe", "is_sharpe_per_trade",
    "oos_trades", "oos_win_rate", "oos_pnl", "oos_sharpe", "oos_sharpe_per_trade",
    "oos_p_value", "oos_accepted", "dsr", "dsr_note", "pbo", "pbo_note",
    "wf_positive_folds", "wf_folds", "wf_oos_pnl", "wf_fold_pnl", "wf_fold_params",
    "wf_fold_efficiency", "wf_efficiency", "tier", "tier_name", "reasons",
)
"""Columns of ``validation.parquet``, one row per candidate."""
_FLOAT_COLUMNS = ("is_win_rate", "is_pnl", "is_sharpe", "is_sharpe_per_trade", "oos_win_rate",
                  "oos_pnl", "oos_sharpe", "oos_sharpe_per_trade", "oos_p_value", "dsr", "pbo",
                  "wf_oos_pnl", "wf_efficiency")
_TEXT_COLUMNS = ("strategy_id", "template_id", "timeframe", "params", "dsr_note", "pbo_note",
                 "wf_fold_pnl", "wf_fold_params", "wf_fold_efficiency", "tier_name", "reasons")


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
    """The evidence of one candidate, before the run-wide judgement (DSR, the out-of-sample
    test across candidates, tier): its partial validation row, its trades in and out of
    sample, its out-of-sample per-trade PnL, and the in-sample daily PnL of a sample of its
    combo's eligible parameter sets (the columns the run-wide effective trial count and PBO
    are measured on) with the number of eligible sets the sample stands for."""

    row: dict[str, Any]
    is_trades: pd.DataFrame
    oos_trades: pd.DataFrame
    oos_trade_pnl: np.ndarray
    is_daily: pd.DataFrame
    eligible_trials: int


def _segment(c: Candidate, lo: int, hi: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    keep = (c.entries >= lo) & (c.entries < hi)
    bars = c.bars.iloc[lo:hi].reset_index(drop=True)
    return bars, c.entries[keep] - lo, c.sides[keep]


def _run(c: Candidate, lo: int, hi: int, params: Mapping[str, float], instrument: Instrument,
         costs: Costs, fill: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    bars, entries, sides = _segment(c, lo, hi)
    trades = simulate(bars, entries, sides, exit_params(params), instrument=instrument,
                      costs=costs, fill=fill)
    return trades, bars


def per_trade_sharpe(pnl: np.ndarray) -> float:
    """Mean over standard deviation (ddof 1) of per-trade PnL; NaN for fewer than two trades
    or trades without dispersion."""
    if len(pnl) < 2 or not np.std(pnl, ddof=1) > 1e-12 * float(np.abs(pnl).max()):
        return math.nan
    return float(np.mean(pnl) / np.std(pnl, ddof=1))


def eligible_pool(c: Candidate, best: Mapping[str, float], limit: int, seed: int,
                  min_trades: int) -> pd.DataFrame:
    """The combo's selection universe, sampled: the best set first, then up to ``limit - 1``
    other distinct sets with at least ``min_trades`` in-sample trades (the sets the choice
    could have picked), drawn without replacement with a fixed seed."""
    names = list(c.param_names)
    table = c.trials[c.trials["trades"] >= min_trades][names].drop_duplicates()
    table = table.reset_index(drop=True)
    best_row = pd.DataFrame([{n: best[n] for n in names}])
    others = table[~np.isclose(table[names].to_numpy(np.float64),
                               best_row.to_numpy(np.float64)).all(axis=1)]
    rng = np.random.default_rng([seed, 7])
    take = rng.permutation(len(others))[:max(0, limit - 1)]
    return pd.concat([best_row, others.iloc[np.sort(take)]], ignore_index=True)


def count_eligible(trials: pd.DataFrame, names: Sequence[str], min_trades: int) -> int:
    """Distinct parameter sets of a combo with at least ``min_trades`` in-sample trades."""
    return len(trials[trials["trades"] >= min_trades][list(names)].drop_duplicates())


def in_sample_daily(c: Candidate, pool: pd.DataFrame, instrument: Instrument, costs: Costs,
                    fill: str) -> pd.DataFrame:
    """Daily PnL (rows: in-sample trade dates) of every set of ``pool`` (columns 0..m-1)."""
    columns = []
    for row in pool.to_dict("records"):
        trades, bars = _run(c, 0, c.n_train, row, instrument, costs, fill)
        columns.append(daily_pnl(trades, instrument=instrument, bars=bars))
    frame = pd.concat(columns, axis=1).fillna(0.0)
    frame.columns = range(len(columns))
    return frame


def combo_pbo(daily: pd.DataFrame, splits: int) -> tuple[float, str]:
    """PBO (CSCV, per-period Sharpe) of choosing the best of the columns of ``daily``, and
    why it is not computed when it is not."""
    if daily.shape[1] < 2:
        return math.nan, "only one parameter set with enough in-sample trades"
    if daily.shape[0] < splits:
        return math.nan, f"{daily.shape[0]} in-sample days < {splits} CSCV blocks"
    return float(probability_of_backtest_overfitting(daily.to_numpy(), splits).pbo), ""


@dataclass(frozen=True)
class Fold:
    """One walk-forward fold: the bars it trades, what was chosen before it and how it did."""

    lo: int
    hi: int
    params: dict[str, float]
    selection_pnl: float     # the chosen set's PnL on bars [0, lo), the window it was chosen on
    pnl: float               # its PnL on the fold's bars [lo, hi)

    @property
    def efficiency(self) -> float:
        """Walk-forward efficiency: PnL per bar in the fold over PnL per bar in the selection
        window; NaN when the selection window did not make money."""
        if not self.selection_pnl > 0 or self.hi <= self.lo:
            return math.nan
        return (self.pnl / (self.hi - self.lo)) / (self.selection_pnl / self.lo)


def walk_forward(c: Candidate, pool: pd.DataFrame, settings: ValidationSettings,
                 instrument: Instrument, costs: Costs, fill: str) -> list[Fold]:
    """Anchored walk-forward over the out-of-sample bars: they are cut into ``folds`` equal
    parts; for each, the pool's sets are simulated on every bar before the fold, the best by
    the in-sample criterion (per-trade Sharpe among sets with ``min_is_trades`` trades) is
    chosen and traded on the fold alone. A fold's choice sees no bar of the fold or after it;
    the pool itself came from in-sample trials only."""
    if settings.folds < 1 or len(c.bars) <= c.n_train:
        return []
    edges = np.linspace(c.n_train, len(c.bars), settings.folds + 1).astype(np.int64)
    names = list(c.param_names)
    folds = []
    for lo, hi in zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True):
        if hi <= lo:
            continue
        bars, entries, sides = _segment(c, 0, lo)
        summary = sweep(bars, entries, sides, pool, instrument=instrument, costs=costs,
                        fill=fill)
        chosen = _plain(best_params(summary, names, settings.min_is_trades))
        match = np.isclose(summary[names].to_numpy(np.float64),
                           np.array([chosen[n] for n in names])).all(axis=1)
        selection_pnl = float(summary.loc[match, "total_pnl"].iloc[0]) if match.any() else math.nan
        trades, _ = _run(c, lo, hi, chosen, instrument, costs, fill)
        folds.append(Fold(lo, hi, chosen, selection_pnl, float(trades["pnl"].sum())))
    return folds


def wf_efficiency(folds: Sequence[Fold]) -> float:
    """Walk-forward efficiency of all folds: out-of-sample PnL per bar over every fold, over
    the mean in-sample PnL per bar of the folds' choices; NaN without folds or when the
    choices did not make money in sample."""
    if not folds:
        return math.nan
    oos_rate = sum(f.pnl for f in folds) / sum(f.hi - f.lo for f in folds)
    is_rate = float(np.mean([f.selection_pnl / f.lo for f in folds]))
    return oos_rate / is_rate if is_rate > 0 else math.nan


def _plain(params: Mapping[str, float]) -> dict[str, float]:
    return {n: (int(v) if float(v).is_integer() else float(v)) for n, v in params.items()}


def _json_floats(values: Sequence[float]) -> str:
    return json.dumps([round(v, 6) if math.isfinite(v) else None for v in values])


def validate_candidate(c: Candidate, *, instrument: Instrument, settings: ValidationSettings,
                       costs: Costs | None = None, fill: str = "close") -> CandidateResult:
    """The evidence of one candidate: its best in-sample set (the pre-registered criterion:
    highest per-trade Sharpe among sets with ``min_is_trades`` in-sample trades), traded fixed
    in and out of sample; the in-sample daily PnL of a sample of the combo's eligible sets and
    the PBO of the combo's choice on it; and the walk-forward folds over the out-of-sample
    bars. Every run charges ``costs`` (default: the instrument's cost model). The DSR, the
    out-of-sample test and the tier need every candidate of the run: see
    ``search.judgement``."""
    costs = instrument.costs if costs is None else costs
    names = list(c.param_names)
    best = _plain(best_params(c.trials, names, settings.min_is_trades))
    is_trades, is_bars = _run(c, 0, c.n_train, best, instrument, costs, fill)
    oos_trades, oos_bars = _run(c, c.n_train, len(c.bars), best, instrument, costs, fill)
    is_m = compute_metrics(is_trades, instrument=instrument, bars=is_bars)
    oos_m = compute_metrics(oos_trades, instrument=instrument, bars=oos_bars)
    oos_pnl = oos_trades["pnl"].to_numpy(dtype=np.float64)
    pbo_pool = eligible_pool(c, best, settings.pbo_configs, settings.seed,
                             settings.min_is_trades)
    daily = in_sample_daily(c, pbo_pool, instrument, costs, fill)
    pbo, pbo_note = combo_pbo(daily, settings.pbo_splits)
    wf_pool = eligible_pool(c, best, settings.wf_configs, settings.seed, settings.min_is_trades)
    folds = walk_forward(c, wf_pool, settings, instrument, costs, fill)
    row = {
        "strategy_id": f"{c.template_id}_{c.timeframe}",
        "template_id": c.template_id, "timeframe": c.timeframe, "direction": int(c.direction),
        "params": json.dumps(best, sort_keys=True), "n_trials": len(c.trials),
        "is_trades": is_m.trades, "is_win_rate": is_m.win_rate, "is_pnl": is_m.total_pnl,
        "is_sharpe": is_m.sharpe,
        "is_sharpe_per_trade": per_trade_sharpe(is_trades["pnl"].to_numpy(np.float64)),
        "oos_trades": oos_m.trades, "oos_win_rate": oos_m.win_rate,
        "oos_pnl": oos_m.total_pnl, "oos_sharpe": oos_m.sharpe,
        "oos_sharpe_per_trade": per_trade_sharpe(oos_pnl),
        "pbo": pbo, "pbo_note": pbo_note,
        "wf_positive_folds": int(sum(f.pnl > 0 for f in folds)), "wf_folds": len(folds),
        "wf_oos_pnl": float(sum(f.pnl for f in folds)),
        "wf_fold_pnl": _json_floats([f.pnl for f in folds]),
        "wf_fold_params": json.dumps([f.params for f in folds], sort_keys=True),
        "wf_fold_efficiency": _json_floats([f.efficiency for f in folds]),
        "wf_efficiency": wf_efficiency(folds),
    }
    return CandidateResult(row, is_trades, oos_trades, oos_pnl, daily,
                           count_eligible(c.trials, names, settings.min_is_trades))


def validation_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Validation rows as a typed frame (``VALIDATION_COLUMNS``), sorted by tier, then by the
    pre-registered in-sample criterion (in-sample per-trade Sharpe, descending), then
    strategy id: nothing out of sample ranks a strategy inside its tier."""
    frame = pd.DataFrame(list(rows), columns=list(VALIDATION_COLUMNS))
    for name in ("n_trials", "is_trades", "oos_trades", "wf_positive_folds", "wf_folds"):
        frame[name] = frame[name].astype(np.int64)
    frame["direction"] = frame["direction"].astype(np.int8)
    frame["tier"] = frame["tier"].astype(np.int8)
    frame["oos_accepted"] = frame["oos_accepted"].astype(bool)
    for name in _TEXT_COLUMNS:
        frame[name] = frame[name].astype("str")
    for name in _FLOAT_COLUMNS:
        frame[name] = frame[name].astype(np.float64)
    order = np.lexsort((frame["strategy_id"].to_numpy(),
                        -frame["is_sharpe_per_trade"].fillna(-np.inf).to_numpy(),
                        frame["tier"].to_numpy()))
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


def validate_job(job: ValidationJob) -> CandidateResult:
    """Worker side of validation: load the pair's bars and matches and gather the evidence
    of the candidate (trades keep ``exit_time`` and ``pnl`` only)."""
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
    result.is_trades = result.is_trades[keep]
    result.oos_trades = result.oos_trades[keep]
    return result
