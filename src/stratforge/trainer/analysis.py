"""What the trainer learned: strongest states, breakdowns, progression and the honest verdict.

Every function reads the trainer's tables (``trades.parquet``, ``days.parquet``; columns in
docs/trainer.md) and, for :func:`strongest_states`, the Bayesian brain. A trade is a *win*
when its ``pnl`` is > 0, the same rule the trainer feeds the brain with. Nothing here writes
a file; :mod:`stratforge.trainer.report` turns these tables into ``training_report.html``.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd

from stratforge.search.brain import BayesianBrain

__all__ = [
    "BREAKDOWN_COLUMNS", "CONFIDENT_LEVEL", "HOUR_COLUMNS", "PERIOD_KEYS",
    "PROGRESSION_COLUMNS", "STATE_COLUMNS", "Z_BANDS", "breakdowns", "compare_periods",
    "confident_states", "hour_of_day", "learning_progression", "oos_distribution",
    "parameter_evolution", "strongest_states", "trade_durations", "z_band",
]

Z_BANDS: tuple[tuple[float, float], ...] = ((2.0, 2.5), (2.5, 3.0), (3.0, 4.0), (4.0, 6.0),
                                            (6.0, math.inf))
"""Bands of ``|z|`` at the signal bar, ``[lo, hi)``; labels ``2-2.5`` ... ``6+``."""
BELOW_BANDS = "<2"
"""The label of ``|z| < 2``."""
UNKNOWN = "(unknown)"
"""The group of a missing zone or z."""
STATE_COLUMNS = ["state", "samples", "wins", "posterior_mean", "lo", "hi", "avg_pnl",
                 "avg_duration_bars", "trades"]
BREAKDOWN_COLUMNS = ["group", "trades", "win_rate", "avg_pnl", "total_pnl", "avg_bars"]
PROGRESSION_COLUMNS = ["day", "states_learned", "high_confidence", "win_rate", "pnl",
                       "oos_pnl", "mean_efficiency"]
PERIOD_KEYS = ("days", "from", "to", "trades", "wins", "win_rate", "pnl", "oos_pnl",
               "mean_efficiency", "avg_sharpe")
HOUR_COLUMNS = ["hour", "trades", "wins", "win_rate", "avg_pnl", "total_pnl"]
CONFIDENT_LEVEL = 0.8
"""The posterior probability of a win a state must reach to be listed as confident."""
EDGE_T_STAT = 2.0
"""The t statistic out-of-sample daily PnL must exceed before an edge is claimed."""


def _label(lo: float, hi: float) -> str:
    return f"{lo:g}+" if math.isinf(hi) else f"{lo:g}-{hi:g}"


def z_band(z: float) -> str:
    """The band label of a signed z: by ``|z|``, ``<2`` below 2, ``(unknown)`` for NaN."""
    if z is None or not math.isfinite(float(z)):
        return UNKNOWN
    a = abs(float(z))
    for lo, hi in Z_BANDS:
        if lo <= a < hi:
            return _label(lo, hi)
    return BELOW_BANDS


def _num(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame.columns:
        return pd.Series(np.nan, index=frame.index, dtype="float64")
    return pd.to_numeric(frame[column], errors="coerce").astype("float64")


def _mean(values: pd.Series | np.ndarray) -> float:
    array = np.asarray(values, dtype=np.float64)
    array = array[np.isfinite(array)]
    return float(array.mean()) if array.size else math.nan


def strongest_states(brain: BayesianBrain, trades: pd.DataFrame, *, top: int = 10,
                     min_samples: int = 10) -> pd.DataFrame:
    """The ``top`` states by posterior mean win rate among those with >= ``min_samples``.

    Columns :data:`STATE_COLUMNS`: ``samples``/``wins`` are the brain's outcome counts,
    ``lo``/``hi`` its 90% equal-tailed credible interval; ``avg_pnl``,
    ``avg_duration_bars`` (mean ``bars_held``) and ``trades`` come from the state's rows of
    ``trades`` (NaN and 0 when it has none there). Ties: more samples first, then by name.
    """
    posts = brain.to_frame(level=0.9)
    posts["samples"] = posts["wins"] + posts["losses"]
    posts = posts[posts["samples"] >= min_samples]
    if trades is not None and len(trades) and "state" in trades.columns:
        per = pd.DataFrame({"state": trades["state"].astype(str), "pnl": _num(trades, "pnl"),
                            "bars": _num(trades, "bars_held")})
        stats = per.groupby("state", sort=True).agg(avg_pnl=("pnl", "mean"),
                                                    avg_duration_bars=("bars", "mean"),
                                                    trades=("pnl", "size"))
    else:
        stats = pd.DataFrame(columns=["avg_pnl", "avg_duration_bars", "trades"])
    out = pd.DataFrame({
        "state": posts["key"].astype(str).to_numpy(),
        "samples": posts["samples"].to_numpy(np.int64),
        "wins": posts["wins"].to_numpy(np.int64),
        "posterior_mean": posts["mean"].to_numpy(np.float64),
        "lo": posts["lo"].to_numpy(np.float64), "hi": posts["hi"].to_numpy(np.float64)})
    joined = stats.reindex(out["state"])
    out["avg_pnl"] = joined["avg_pnl"].to_numpy(np.float64)
    out["avg_duration_bars"] = joined["avg_duration_bars"].to_numpy(np.float64)
    out["trades"] = joined["trades"].fillna(0).to_numpy(np.int64)
    out = out.sort_values(["posterior_mean", "samples", "state"],
                          ascending=[False, False, True], kind="stable")
    return out.head(max(int(top), 0)).reset_index(drop=True)[STATE_COLUMNS]


def confident_states(brain: BayesianBrain, trades: pd.DataFrame, *,
                     level: float = CONFIDENT_LEVEL, min_samples: int = 1) -> pd.DataFrame:
    """The states whose posterior probability of a win (the Beta posterior's mean) is at
    least ``level``, most confident first: by the 90% credible interval's lower bound
    ``lo``, then more samples, then by name. Columns :data:`STATE_COLUMNS` (as
    :func:`strongest_states`); ``min_samples`` outcomes at least (default 1: the level
    itself asks for evidence, a state with one win has a posterior mean of 2/3 under the
    uniform prior)."""
    if not 0.0 < float(level) < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    every = strongest_states(brain, trades, top=len(brain.keys()), min_samples=min_samples)
    kept = every[every["posterior_mean"] >= float(level)]
    kept = kept.sort_values(["lo", "samples", "state"], ascending=[False, False, True],
                            kind="stable")
    return kept.reset_index(drop=True)[STATE_COLUMNS]


def hour_of_day(trades: pd.DataFrame, tz: str = "UTC") -> pd.DataFrame:
    """Trades by the hour of their entry in the time zone ``tz`` (the instrument's session
    zone): :data:`HOUR_COLUMNS`, one row per hour with trades, in hour order (``hour`` is
    0-23). A win is a trade with PnL > 0. Needs ``entry_time``; empty otherwise."""
    if trades is None or not len(trades) or "entry_time" not in trades.columns:
        return pd.DataFrame({c: pd.Series(dtype="int64" if c in ("hour", "trades", "wins")
                                          else "float64") for c in HOUR_COLUMNS})
    when = pd.to_datetime(trades["entry_time"], utc=True).dt.tz_convert(tz)
    pnl = _num(trades, "pnl")
    frame = pd.DataFrame({"hour": when.dt.hour.to_numpy(), "pnl": pnl.to_numpy(),
                          "win": (pnl > 0).astype("int64").to_numpy()})
    table = frame.groupby("hour", sort=True).agg(
        trades=("pnl", "size"), wins=("win", "sum"), avg_pnl=("pnl", "mean"),
        total_pnl=("pnl", "sum")).reset_index()
    table["win_rate"] = table["wins"] / table["trades"]
    for column in ("hour", "trades", "wins"):
        table[column] = table[column].astype(np.int64)
    return table[HOUR_COLUMNS]


def trade_durations(trades: pd.DataFrame) -> dict[str, Any]:
    """How long trades last: ``trades``, mean ``bars_held`` (``avg_bars``, and for wins and
    losses apart, ``avg_win_bars``/``avg_loss_bars``) and the mean wall-clock time from
    entry to exit in minutes (``avg_minutes``, from ``entry_time``/``exit_time``; NaN
    without them). Empty input gives NaN figures and 0 trades."""
    n = 0 if trades is None else len(trades)
    if not n:
        return {"trades": 0, "avg_bars": math.nan, "avg_win_bars": math.nan,
                "avg_loss_bars": math.nan, "avg_minutes": math.nan}
    bars, pnl = _num(trades, "bars_held"), _num(trades, "pnl")
    minutes = math.nan
    if {"entry_time", "exit_time"} <= set(trades.columns):
        span = (pd.to_datetime(trades["exit_time"], utc=True)
                - pd.to_datetime(trades["entry_time"], utc=True)).dt.total_seconds() / 60.0
        minutes = _mean(span)
    return {"trades": int(n), "avg_bars": _mean(bars), "avg_win_bars": _mean(bars[pnl > 0]),
            "avg_loss_bars": _mean(bars[~(pnl > 0)]), "avg_minutes": minutes}


def _groups(trades: pd.DataFrame, key: str) -> pd.Series:
    if key == "z_band":
        return _num(trades, "z").map(z_band).astype(str)
    if key not in trades.columns:
        return pd.Series(UNKNOWN, index=trades.index, dtype=object)
    values = trades[key].astype(object).where(trades[key].notna(), "").astype(str)
    return values.where(values != "", UNKNOWN)


def breakdowns(trades: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Trades grouped by ``zone``, ``z_band`` (of ``|z|``), exit ``reason`` and ``timeframe``.

    Each frame has :data:`BREAKDOWN_COLUMNS`, sorted by trades (most first), then group. An
    empty zone or a NaN z is grouped as ``(unknown)``; empty input gives empty frames.
    """
    out: dict[str, pd.DataFrame] = {}
    for key in ("zone", "z_band", "reason", "timeframe"):
        if trades is None or not len(trades):
            out[key] = pd.DataFrame({c: pd.Series(dtype=object if c == "group" else "float64")
                                     for c in BREAKDOWN_COLUMNS})
            continue
        pnl = _num(trades, "pnl")
        frame = pd.DataFrame({"group": _groups(trades, key), "pnl": pnl,
                              "win": (pnl > 0).astype("float64"),
                              "bars": _num(trades, "bars_held")})
        table = frame.groupby("group", sort=True).agg(
            trades=("pnl", "size"), win_rate=("win", "mean"), avg_pnl=("pnl", "mean"),
            total_pnl=("pnl", "sum"), avg_bars=("bars", "mean")).reset_index()
        table["trades"] = table["trades"].astype(np.int64)
        table = table.sort_values(["trades", "group"], ascending=[False, True], kind="stable")
        out[key] = table.reset_index(drop=True)[BREAKDOWN_COLUMNS]
    return out


def _ordered(days: pd.DataFrame) -> pd.DataFrame:
    if "day_index" in days.columns:
        days = days.sort_values("day_index", kind="stable")
    return days.reset_index(drop=True)


def learning_progression(days: pd.DataFrame, last: int = 10) -> pd.DataFrame:
    """The last ``last`` trained days: :data:`PROGRESSION_COLUMNS` (missing ones are NaN)."""
    tail = _ordered(days).tail(max(int(last), 0))
    return pd.DataFrame({c: (tail[c] if c in tail.columns else np.nan)
                         for c in PROGRESSION_COLUMNS}).reset_index(drop=True)


def _period(days: pd.DataFrame) -> dict[str, Any]:
    trades = int(_num(days, "trades").fillna(0).sum())
    wins = int(_num(days, "wins").fillna(0).sum())
    return {
        "days": len(days),
        "from": str(days["day"].iloc[0]) if len(days) else None,
        "to": str(days["day"].iloc[-1]) if len(days) else None,
        "trades": trades, "wins": wins, "win_rate": wins / trades if trades else math.nan,
        "pnl": float(_num(days, "pnl").fillna(0).sum()),
        "oos_pnl": float(_num(days, "oos_pnl").fillna(0).sum()),
        "mean_efficiency": _mean(_num(days, "mean_efficiency")),
        "avg_sharpe": _mean(_num(days, "sharpe")),
    }


def compare_periods(days: pd.DataFrame, n: int = 5) -> dict[str, Any]:
    """The first ``n`` days against the last ``n``: ``{"n", "first", "last"}``.

    Each period holds :data:`PERIOD_KEYS`: trades and wins summed, the pooled win rate
    (wins / trades), summed PnL and out-of-sample PnL, and the means of the days'
    ``mean_efficiency`` and ``sharpe`` (NaN days skipped). With fewer than ``2 n`` days
    the two periods overlap.
    """
    ordered = _ordered(days)
    size = max(int(n), 0)
    return {"n": size, "first": _period(ordered.head(size)),
            "last": _period(ordered.tail(size) if size else ordered.head(0))}


def oos_distribution(days: pd.DataFrame) -> dict[str, Any]:
    """The honest verdict on out-of-sample daily PnL (``oos_pnl`` of every day but the first).

    The first day has no previous parameters, so it is left out; so are the days the template
    library was trained on (``library_in_sample``, traded only with ``allow_library_days``),
    whose out-of-sample line is not out of sample for the templates. Returns ``n_days``,
    ``mean``, ``median``, ``std`` (ddof 1), ``t_stat`` (``mean / (std / sqrt(n))``),
    ``share_positive``, ``ci95`` (normal approximation ``mean +- 1.96 std / sqrt(n)``),
    ``edge_claimed`` (``t_stat > 2`` and ``mean > 0``) and a one-sentence ``verdict``.
    """
    later = _ordered(days).iloc[1:]
    if "library_in_sample" in later.columns:
        later = later[~later["library_in_sample"].fillna(False).astype(bool)]
    values = _num(later, "oos_pnl").to_numpy(np.float64)
    values = values[np.isfinite(values)]
    n = int(values.size)
    mean = float(values.mean()) if n else math.nan
    std = float(values.std(ddof=1)) if n > 1 else math.nan
    se = std / math.sqrt(n) if n > 1 else math.nan
    t_stat = mean / se if n > 1 and se > 0 else math.nan
    edge = bool(math.isfinite(t_stat) and t_stat > EDGE_T_STAT and mean > 0)
    figures = f"(mean {mean:,.2f} per day, t = {t_stat:.2f}, {n} days)"
    if n < 2:
        verdict = f"no edge: too few out-of-sample days to judge ({n})"
    elif edge:
        verdict = f"edge: out-of-sample daily PnL is positive beyond chance {figures}"
    elif math.isfinite(t_stat) and t_stat < -EDGE_T_STAT:
        verdict = f"no edge: out-of-sample daily PnL is negative {figures}"
    else:
        verdict = f"no edge: out-of-sample daily PnL is centred near zero {figures}"
    half = 1.96 * se if math.isfinite(se) else math.nan
    return {
        "n_days": n, "mean": mean, "median": float(np.median(values)) if n else math.nan,
        "std": std, "t_stat": t_stat,
        "share_positive": float((values > 0).mean()) if n else math.nan,
        "ci95": (mean - half, mean + half), "edge_claimed": edge, "verdict": verdict,
    }


def _params_of(text: Any) -> dict[str, Any]:
    if isinstance(text, dict):
        return text
    if not isinstance(text, str) or not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def parameter_evolution(days: pd.DataFrame) -> pd.DataFrame:
    """``day`` plus one column per key of the days' ``params`` JSON (first-seen order).

    A day without a parameter (or with unreadable ``params``) has NaN there.
    """
    ordered = _ordered(days)
    parsed = [_params_of(p) for p in (ordered["params"] if "params" in ordered.columns
                                      else [None] * len(ordered))]
    names = list(dict.fromkeys(k for p in parsed for k in p))
    out = pd.DataFrame({"day": ordered["day"].astype(str).to_numpy() if len(ordered)
                        else np.array([], dtype=object)})
    for name in names:
        out[str(name)] = [p.get(name, np.nan) for p in parsed]
    return out
