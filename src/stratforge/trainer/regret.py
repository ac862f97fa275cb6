"""End-of-day regret analysis: where did each exit leave money on the table?

After a day the trainer looks at every trade through the next two higher timeframes of its own
timeframe (``higher_timeframes``: 1m -> 5m, 15m) and measures how far price went its way.
Rules (worked example in docs/trainer_regret.md), for a trade and a higher timeframe H of
nominal duration dH, with ``side`` +1 long / -1 short:

- window: the H bars whose start lies in [start of the H bar containing the entry time,
  exit_time + after_bars * dH). The bar containing the entry is the last bar starting at or
  before it when the entry lies within that bar's nominal duration; an entry in a gap of the
  H bars starts the window at the next bar.
- peak: the favourable extreme of the window (long: max ``high``, short: min ``low``); the peak
  bar is its first occurrence, ``peak_time`` that bar's start.
- ``potential_points = max(0, (peak - entry_price) * side)``;
  ``actual_points = (exit_price - entry_price) * side``;
  ``left_on_table_points = max(0, potential - actual)``;
  ``given_back_points = max(0, (in_trade_peak - exit_price) * side)``, the in-trade peak being
  the favourable extreme of the window bars starting at or before the exit time (NaN if none);
  ``efficiency = actual / potential`` when potential > 0, else NaN.
- ``classification``, first rule that holds: ``no_data`` (empty window: every field NaN),
  ``no_move`` (potential 0), ``optimal`` (efficiency >= optimal_efficiency), ``early`` (the peak
  bar starts after the exit time), ``late``.
- ``continued``: the favourable extreme of the window bars starting after the exit time is
  strictly beyond the exit price in the trade's direction.

``day_regret`` aggregates one day into a ``DayRegret`` (shares, points, findings and a target /
trail adjustment); ``next_bias`` folds that adjustment into the running ``RegretBias``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from stratforge.timeframes import parse_timeframe

REGRET_COLUMNS: tuple[str, ...] = (
    "trade", "higher_tf", "entry_time", "exit_time", "side", "reason", "peak_price", "peak_time",
    "potential_points", "actual_points", "left_on_table_points", "given_back_points",
    "efficiency", "classification", "continued",
)
"""Columns of ``trade_regret``'s frame: ``trade`` is the row position in the input trades,
``higher_tf`` the timeframe looked through; the rest follow the module's rules."""

CLASSIFICATIONS: tuple[str, ...] = ("optimal", "early", "late", "no_move", "no_data")

_TRADE_INPUT = ("entry_time", "exit_time", "side", "entry_price", "exit_price", "reason")
_DAY_INPUT = ("trade", "higher_tf", "classification", "efficiency", "continued",
              "left_on_table_points", "given_back_points")
_FLOATS = ("peak_price", "potential_points", "actual_points", "left_on_table_points",
           "given_back_points", "efficiency")
_NAT = np.iinfo(np.int64).min


def higher_timeframes(timeframe: str, available: Sequence[str], count: int = 2) -> list[str]:
    """The ``count`` next coarser timeframes than ``timeframe`` among ``available``, finest first.

    ``higher_timeframes("1m", ["1m", "5m", "15m", "1h"]) == ["5m", "15m"]``; timeframes not in
    ``available`` are skipped and the coarsest available one gets ``[]``.
    """
    base = parse_timeframe(timeframe)
    coarser = {tf.seconds: tf for tf in map(parse_timeframe, map(str, available))
               if tf.seconds > base.seconds}
    return [coarser[s].name for s in sorted(coarser)][:max(count, 0)]


def _utc_ns(column: pd.Series, name: str) -> np.ndarray:
    if not isinstance(column.dtype, pd.DatetimeTZDtype):
        raise ValueError(f"column {name} must hold time-zone aware timestamps "
                         f"(datetime64[ns, UTC]), got {column.dtype}")
    return np.asarray(column.dt.tz_convert("UTC").dt.as_unit("ns").array.asi8, dtype=np.int64)


def _trade_arrays(trades: pd.DataFrame) -> tuple[np.ndarray, ...]:
    """entry_ns, exit_ns, side, entry_price, exit_price of the trades, checked."""
    missing = [c for c in _TRADE_INPUT if c not in trades.columns]
    if missing:
        raise ValueError(f"trades frame lacks column(s) {', '.join(missing)}; regret needs "
                         f"{', '.join(_TRADE_INPUT)} (the simulator's trades contract)")
    entry_ns, exit_ns = _utc_ns(trades["entry_time"], "entry_time"), _utc_ns(
        trades["exit_time"], "exit_time")
    side = trades["side"].to_numpy(dtype=np.int64)
    prices = trades[["entry_price", "exit_price"]].to_numpy(dtype=np.float64)
    if not np.isin(side, (-1, 1)).all():
        raise ValueError("trades column side must hold +1 (long) or -1 (short) only")
    if (exit_ns < entry_ns).any():
        raise ValueError("a trade exits before it enters (exit_time < entry_time)")
    if not np.isfinite(prices).all():
        raise ValueError("trades hold NaN or infinite entry_price or exit_price")
    return entry_ns, exit_ns, side, prices[:, 0], prices[:, 1]


def _bar_arrays(bars: pd.DataFrame, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    missing = [c for c in ("ts", "high", "low") if c not in bars.columns]
    if missing:
        raise ValueError(f"{name} bars lack column(s) {', '.join(missing)}")
    ts = _utc_ns(bars["ts"], f"ts of the {name} bars")
    if ts.size > 1 and not (np.diff(ts) > 0).all():
        raise ValueError(f"{name} bars: ts must be strictly increasing")
    return ts, bars["high"].to_numpy(np.float64), bars["low"].to_numpy(np.float64)


def _window_bounds(ts: np.ndarray, entry_ns: np.ndarray, exit_ns: np.ndarray, d_ns: int,
                   after_bars: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per trade: first window bar, first bar starting after the exit, end of the window."""
    last = np.searchsorted(ts, entry_ns, side="right") - 1
    if ts.size == 0:
        return last + 1, last + 1, last + 1
    inside = (last >= 0) & (entry_ns < ts[np.maximum(last, 0)] + d_ns)
    lo = np.where(inside, last, last + 1)
    split = np.searchsorted(ts, exit_ns, side="right")
    hi = np.searchsorted(ts, exit_ns + after_bars * d_ns, side="left")
    return lo, split, hi


def _favourable(high: np.ndarray, low: np.ndarray, side: np.ndarray, lo: np.ndarray,
                hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per trade: the favourable extreme over bars [lo, hi) and its first position (-1: none)."""
    price = np.full(side.size, np.nan)
    position = np.full(side.size, -1, dtype=np.int64)
    for t in np.flatnonzero(hi > lo):
        values = high[lo[t]:hi[t]] if side[t] > 0 else low[lo[t]:hi[t]]
        k = int(np.argmax(values) if side[t] > 0 else np.argmin(values))
        price[t], position[t] = values[k], lo[t] + k
    return price, position


def _one_timeframe(trades: pd.DataFrame, arrays: tuple[np.ndarray, ...], name: str,
                   bars: pd.DataFrame, after_bars: int, optimal_efficiency: float) -> pd.DataFrame:
    """The regret rows of every trade through one higher timeframe, in trade order."""
    entry_ns, exit_ns, side, entry, exit_ = arrays
    ts, high, low = _bar_arrays(bars, name)
    lo, split, hi = _window_bounds(ts, entry_ns, exit_ns, parse_timeframe(name).nanoseconds,
                                   after_bars)
    peak, position = _favourable(high, low, side, lo, hi)
    in_trade, _ = _favourable(high, low, side, lo, np.minimum(split, hi))
    after, _ = _favourable(high, low, side, np.maximum(split, lo), hi)
    no_data = position < 0
    peak_ns = np.where(no_data, _NAT, ts[np.maximum(position, 0)] if ts.size else _NAT)
    potential = np.maximum(0.0, (peak - entry) * side)
    actual = np.where(no_data, np.nan, (exit_ - entry) * side)
    efficiency = np.divide(actual, potential, out=np.full(side.size, np.nan),
                           where=potential > 0)
    with np.errstate(invalid="ignore"):
        optimal = efficiency >= optimal_efficiency
    classification = np.select(
        [no_data, potential == 0, optimal, peak_ns > exit_ns],
        ["no_data", "no_move", "optimal", "early"], default="late").astype(object)
    times = {c: trades[c].dt.tz_convert("UTC").dt.as_unit("ns").to_numpy()
             for c in ("entry_time", "exit_time")}
    return pd.DataFrame({
        "trade": np.arange(side.size, dtype=np.int64),
        "higher_tf": parse_timeframe(name).name,
        **times,
        "side": side.astype(np.int8),
        "reason": trades["reason"].to_numpy(dtype=object),
        "peak_price": peak,
        "peak_time": pd.DatetimeIndex(peak_ns.view("datetime64[ns]"), tz="UTC"),
        "potential_points": potential,
        "actual_points": actual,
        "left_on_table_points": np.maximum(0.0, potential - actual),
        "given_back_points": np.maximum(0.0, (in_trade - exit_) * side),
        "efficiency": efficiency,
        "classification": classification,
        "continued": (after - exit_) * side > 0,
    }, columns=list(REGRET_COLUMNS))


def _empty_regret() -> pd.DataFrame:
    dtypes: dict[str, Any] = dict.fromkeys(REGRET_COLUMNS, object)
    dtypes.update(dict.fromkeys(_FLOATS, np.float64), trade=np.int64, side=np.int8,
                  continued=bool)
    dtypes.update(dict.fromkeys(("entry_time", "exit_time", "peak_time"), "datetime64[ns, UTC]"))
    return pd.DataFrame({c: pd.Series(dtype=dtypes[c]) for c in REGRET_COLUMNS})


def trade_regret(trades: pd.DataFrame, higher_bars: Mapping[str, pd.DataFrame], *,
                 after_bars: int = 3, optimal_efficiency: float = 0.9) -> pd.DataFrame:
    """Look at every trade through each higher timeframe and measure what its exit left behind.

    Args:
        trades: the simulator's trades frame (``entry_time``, ``exit_time``, ``side``,
            ``entry_price``, ``exit_price``, ``reason`` are read).
        higher_bars: canonical bars per higher timeframe name (e.g. ``{"5m": ..., "15m": ...}``),
            covering the day and at least ``after_bars`` bars past the last exit.
        after_bars: higher-timeframe bars after the exit that still count as "the move".
        optimal_efficiency: efficiency at or above which an exit is ``optimal``.

    Returns:
        One row per (trade, higher timeframe), trade by trade and within a trade in the order
        of ``higher_bars``; columns ``REGRET_COLUMNS`` (rules in the module docstring).
    """
    if after_bars < 0:
        raise ValueError(f"after_bars must be >= 0, got {after_bars}")
    if not optimal_efficiency > 0:
        raise ValueError(f"optimal_efficiency must be > 0, got {optimal_efficiency}")
    if len(trades) == 0 or not higher_bars:
        return _empty_regret()
    arrays = _trade_arrays(trades)
    parts = [_one_timeframe(trades, arrays, name, bars, int(after_bars), optimal_efficiency)
             for name, bars in higher_bars.items()]
    n, k = len(trades), len(parts)
    order = (np.arange(n)[:, None] + np.arange(k)[None, :] * n).ravel()
    return pd.concat(parts, ignore_index=True).iloc[order].reset_index(drop=True)


def _pct(value: float) -> str:
    return f"{value:.0%}"


def _points(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


@dataclass
class DayRegret:
    """One day's regret: shares of exit kinds, points missed, findings and the adjustment.

    Shares count the (trade, higher timeframe) rows with data (``no_data`` rows excluded) and
    are NaN when there are none; points sum the first (finest) higher timeframe's rows only.
    ``adjustment`` is ``{"target_scale": f, "trail_scale": f, "reason": text}``.
    """

    trades: int
    mean_efficiency: float
    share_optimal: float
    share_early: float
    share_late: float
    share_no_move: float
    continuation_ratio: float
    left_on_table_points: float
    given_back_points: float
    trend_day: bool | None
    findings: list[str] = field(default_factory=list)
    adjustment: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of every field (NaN and infinities become None)."""
        return {key: None if isinstance(value, float) and not math.isfinite(value) else value
                for key, value in asdict(self).items()}


def _trend_day(day_bars: pd.DataFrame | None) -> bool | None:
    """|last close - first open| >= half the day's range (a flat day is no trend day)."""
    if day_bars is None or len(day_bars) == 0:
        return None
    move = abs(float(day_bars["close"].iloc[-1]) - float(day_bars["open"].iloc[0]))
    span = float(day_bars["high"].max()) - float(day_bars["low"].min())
    return bool(span > 0 and move >= 0.5 * span)


def _adjustment(early: float, late: float, early_threshold: float, late_threshold: float,
                widen: float, tighten: float) -> dict[str, Any]:
    """Widen after mostly early exits, tighten after mostly late ones; the larger share wins."""
    is_early, is_late = early >= early_threshold, late >= late_threshold
    if is_early and not (is_late and late >= early):
        scale, reason = widen, (f"{_pct(early)} of exits were early in moves that went on: "
                                f"widen targets and trails x{widen:g}")
    elif is_late and not (is_early and early >= late):
        scale, reason = tighten, (f"{_pct(late)} of exits were late and gave back the peak: "
                                  f"tighten targets and trails x{tighten:g}")
    else:
        scale, reason = 1.0, (f"early and late exits tie at {_pct(early)}: no change"
                              if is_early and is_late else "no dominant exit error: no change")
    return {"target_scale": scale, "trail_scale": scale, "reason": reason}


def _findings(report: DayRegret) -> list[str]:
    """Plain-language findings, the shares first."""
    r = report
    out = [f"{_pct(r.share_early)} of exits were early: the move continued after the exit",
           f"{_pct(r.share_late)} of exits were late: price peaked before the exit and "
           f"{_points(r.given_back_points)} points were given back",
           f"{_pct(r.share_optimal)} of exits were optimal"]
    if r.share_no_move > 0:
        out.append(f"{_pct(r.share_no_move)} of trades never moved in our favour")
    if r.trend_day:
        out.append(f"{_pct(r.share_early)} of exits in trending days were early")
    if math.isfinite(r.mean_efficiency):
        out.append(f"mean exit efficiency {_pct(r.mean_efficiency)}")
    out.append(f"{_points(r.left_on_table_points)} points left on the table")
    out.append(f"the move continued after {_pct(r.continuation_ratio)} of exits")
    return out


def _finest(names: pd.Series) -> str:
    return min(pd.unique(names), key=lambda name: parse_timeframe(str(name)).seconds)


def day_regret(regret: pd.DataFrame, *, day_bars: pd.DataFrame | None = None,
               early_threshold: float = 0.5, late_threshold: float = 0.5, widen: float = 1.2,
               tighten: float = 0.85) -> DayRegret:
    """Aggregate one day's ``trade_regret`` rows into findings and a target/trail adjustment.

    Args:
        regret: ``trade_regret``'s frame for the day's trades (both higher timeframes).
        day_bars: the day's bars (any timeframe), for ``trend_day``; None leaves it None.
        early_threshold, late_threshold: shares of early / late exits that trigger a change.
        widen, tighten: the target and trail factor after mostly early / mostly late exits.
    """
    trend = _trend_day(day_bars)
    nan = float("nan")
    if len(regret) == 0:
        return DayRegret(0, nan, nan, nan, nan, nan, nan, 0.0, 0.0, trend, ["no trades today"],
                         {"target_scale": 1.0, "trail_scale": 1.0, "reason": "no trades today"})
    missing = [c for c in _DAY_INPUT if c not in regret.columns]
    if missing:
        raise ValueError(f"regret frame lacks column(s) {', '.join(missing)} (see REGRET_COLUMNS)")
    kinds = regret["classification"]
    seen = kinds[kinds != "no_data"]
    share = {k: float((seen == k).mean()) if len(seen) else nan for k in CLASSIFICATIONS}
    first = regret[regret["higher_tf"] == _finest(regret["higher_tf"])]
    efficiency = regret["efficiency"].to_numpy(np.float64)
    report = DayRegret(
        trades=int(regret["trade"].nunique()),
        mean_efficiency=float(np.mean(efficiency[np.isfinite(efficiency)]))
        if np.isfinite(efficiency).any() else nan,
        share_optimal=share["optimal"], share_early=share["early"], share_late=share["late"],
        share_no_move=share["no_move"],
        continuation_ratio=float(regret["continued"][kinds != "no_data"].mean())
        if len(seen) else nan,
        left_on_table_points=float(np.nansum(first["left_on_table_points"].to_numpy(float))),
        given_back_points=float(np.nansum(first["given_back_points"].to_numpy(float))),
        trend_day=trend)
    report.adjustment = _adjustment(report.share_early, report.share_late, early_threshold,
                                    late_threshold, widen, tighten)
    report.findings = (_findings(report) if len(seen) else
                       [f"no higher-timeframe bars covered today's {report.trades} trade(s)"])
    return report


@dataclass(frozen=True)
class RegretBias:
    """Running multipliers on the target and trailing distances, carried from day to day."""

    target_scale: float = 1.0
    trail_scale: float = 1.0

    def to_json(self) -> dict[str, float]:
        """``{"target_scale": ..., "trail_scale": ...}``."""
        return {"target_scale": float(self.target_scale), "trail_scale": float(self.trail_scale)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> RegretBias:
        """The inverse of ``to_json``; missing keys (or None) give the neutral 1.0."""
        data = data or {}
        return cls(float(data.get("target_scale", 1.0)), float(data.get("trail_scale", 1.0)))


def next_bias(bias: RegretBias, report: DayRegret, *, low: float = 0.5,
              high: float = 3.0) -> RegretBias:
    """Multiply ``bias`` by the day's adjustment factors, each clipped to [low, high]."""
    if not 0 < low <= high:
        raise ValueError(f"need 0 < low <= high, got low={low}, high={high}")
    adjustment = report.adjustment
    return RegretBias(
        float(np.clip(bias.target_scale * float(adjustment.get("target_scale", 1.0)), low, high)),
        float(np.clip(bias.trail_scale * float(adjustment.get("trail_scale", 1.0)), low, high)))
