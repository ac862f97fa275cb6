"""The candidate feature set of one symbol and timeframe (before regimes, which are fitted).

``build_features(bars, states, tick_size=...)`` returns one float64 column per feature,
aligned with the bars; row t uses bars 0..t only (the field-engine states keep the same
guarantee), so the frame can be computed once over the whole series without lookahead. Every
feature is scale-free: multiplying all prices and the tick size by one constant leaves it
unchanged (price-unit states enter divided by the close; price features are returns, ratios
of price moves or bounded oscillators, computed from prices in ticks when the tick is given).
Reference symbols join as-of: a reference bar counts for the own bar with the same or a later
open time (both are complete at the same close on one timeframe), never a later reference
bar.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from stratforge.errors import DataError
from stratforge.evolution import indicators as ind
from stratforge.features.states import FLOAT_COLUMNS, PRICE_COLUMNS, TRENDS, ZONES
from stratforge.features.ticks import check_tick_size, prices_in_ticks

RETURN_LAGS: tuple[int, ...] = (1, 2, 3, 5, 10, 15, 30, 60)
ZSCORE_WINDOWS: tuple[int, ...] = (20, 60, 240)
VOLATILITY_WINDOWS: tuple[int, ...] = (10, 30, 60, 240)
REFERENCE_LAGS: tuple[int, ...] = (1, 5, 15)
TAIL_Z = 2.0
"""Return z-scores beyond this many standard deviations count as a shock (``ret_tail_*``)."""
TAIL_WINDOWS: tuple[int, ...] = (5, 15)
_PRICE_LEVEL_STATES = frozenset(PRICE_COLUMNS)
"""States in price units: they enter divided by the close (scale-free); ``centre`` enters as
``close / centre - 1``."""


def _state_features(states: pd.DataFrame, close: np.ndarray) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for name in FLOAT_COLUMNS:
        values = states[name].to_numpy(dtype=np.float64)
        if name == "centre":
            values = close / values - 1.0
        elif name in _PRICE_LEVEL_STATES:
            values = values / close
        out[f"state_{name}"] = values
    zone = states["zone"].cat.codes.to_numpy().astype(np.float64)
    trend = states["trend"].cat.codes.to_numpy().astype(np.float64)
    zone[zone < 0] = np.nan
    trend[trend < 0] = np.nan
    out["state_zone"] = zone
    out["state_trend"] = trend - (len(TRENDS) - 1) / 2.0  # DOWN -1, RANGE 0, UP +1
    out["state_roche"] = np.where(np.isnan(zone), np.nan,
                                  (zone >= ZONES.index("L2_ROCHE")).astype(np.float64))
    out["state_structure"] = states["structure_confirmed"].to_numpy().astype(np.float64)
    out["state_cascade"] = states["cascade_detected"].to_numpy().astype(np.float64)
    return out


def _price_features(bars: pd.DataFrame, tick_size: float | None) -> dict[str, np.ndarray]:
    o, h, lo, c, v = (bars[k].to_numpy(dtype=np.float64)
                      for k in ("open", "high", "low", "close", "volume"))
    if tick_size is not None:  # whole ticks on the grid: no rounding tie flips with the level
        o, h, lo, c = (prices_in_ticks(a, tick_size) for a in (o, h, lo, c))
    out: dict[str, np.ndarray] = {}
    for lag in RETURN_LAGS:
        out[f"ret_{lag}"] = ind.lagged_return(c, lag, log=False)
        out[f"logret_{lag}"] = ind.lagged_return(c, lag, log=True)
    r1 = out["logret_1"]
    for window in ZSCORE_WINDOWS:
        out[f"ret_z_{window}"] = ind.zscore(r1, window)
        out[f"ret5_z_{window}"] = ind.zscore(out["logret_5"], window)
        out[f"volume_z_{window}"] = ind.zscore(v, window)
        out[f"range_z_{window}"] = ind.zscore(h - lo, window)
        out[f"realised_vol_{window}"] = ind.rolling_std(r1, window)
    tail = ind.tail_excess(out["ret_z_60"], TAIL_Z)
    out["ret_tail_60"] = tail
    for window in TAIL_WINDOWS:
        out[f"ret_tail_60_sum_{window}"] = ind.rolling_sum(tail, window)
    for window in VOLATILITY_WINDOWS:
        out[f"parkinson_{window}"] = ind.parkinson(h, lo, window)
    out["atr_ratio_14_100"] = ind.atr(h, lo, c, 14) / ind.atr(h, lo, c, 100)
    out["atr_ratio_5_50"] = ind.atr(h, lo, c, 5) / ind.atr(h, lo, c, 50)
    out["vol_ratio_20_240"] = out["realised_vol_20"] / out["realised_vol_240"]
    for period in (7, 14, 28):
        out[f"rsi_{period}"] = ind.rsi(c, period)
    for fast, slow, signal in ((12, 26, 9), (5, 35, 5)):
        line, sig, hist = ind.macd(c, fast, slow, signal)
        out[f"macd_{fast}_{slow}"] = line
        out[f"macd_signal_{fast}_{slow}"] = sig
        out[f"macd_hist_{fast}_{slow}"] = hist
    for window in (20, 60):
        distance, width = ind.bollinger_distance(c, window)
        out[f"bollinger_{window}"] = distance
        out[f"bollinger_width_{window}"] = width
    for window in (20, 60, 240):
        out[f"vwap_dist_{window}"] = ind.rolling_vwap_distance(h, lo, c, v, window)
    day = bars["ts"].dt.floor("D").array.asi8
    out["vwap_dist_session"] = ind.session_vwap_distance(day, h, lo, c, v)
    span = h - lo
    with np.errstate(invalid="ignore", divide="ignore"):
        out["close_location"] = np.where(span > 0, (c - lo) / span * 2.0 - 1.0, 0.0)
        out["body_share"] = np.where(span > 0, (c - o) / span, 0.0)
    out["log_volume_ratio_20"] = np.log1p(v) - ind.rolling_mean(np.log1p(v), 20)
    return out


def _calendar_features(ts: pd.Series) -> dict[str, np.ndarray]:
    minute = (ts.dt.hour * 60 + ts.dt.minute).to_numpy(dtype=np.float64)
    weekday = ts.dt.day_of_week.to_numpy(dtype=np.float64)
    day_angle = 2 * np.pi * minute / 1440.0
    week_angle = 2 * np.pi * weekday / 7.0
    return {"cal_minute_sin": np.sin(day_angle), "cal_minute_cos": np.cos(day_angle),
            "cal_weekday_sin": np.sin(week_angle), "cal_weekday_cos": np.cos(week_angle),
            "cal_monday": (weekday == 0).astype(np.float64),
            "cal_friday": (weekday == 4).astype(np.float64)}


def _reference_features(bars: pd.DataFrame, symbol: str, reference: pd.DataFrame
                        ) -> dict[str, np.ndarray]:
    if reference.empty:
        raise DataError(f"reference symbol {symbol} has no bars in the span")
    close = reference["close"].to_numpy(dtype=np.float64)
    own: dict[str, np.ndarray] = {}
    for lag in REFERENCE_LAGS:
        own[f"logret_{lag}"] = ind.lagged_return(close, lag, log=True)
    own["ret_z_60"] = ind.zscore(own["logret_1"], 60)
    own["realised_vol_60"] = ind.rolling_std(own["logret_1"], 60)
    at = np.searchsorted(reference["ts"].array.asi8, bars["ts"].array.asi8, side="right") - 1
    valid = at >= 0
    out = {}
    for name, values in own.items():
        joined = np.full(len(bars), np.nan)
        joined[valid] = values[at[valid]]
        out[f"ref_{symbol}_{name}"] = joined
    return out


def build_features(bars: pd.DataFrame, states: pd.DataFrame,
                   references: Mapping[str, pd.DataFrame] | None = None, *,
                   tick_size: float | None = None) -> pd.DataFrame:
    """Every candidate feature of ``bars`` (see the module docstring), float64, NaN in
    warm-up. ``states`` is ``compute_states(bars, tick_size=...)`` (or the cached equal
    frame); ``references`` maps reference symbols to their bars on the same timeframe;
    ``tick_size`` (the instrument's) makes the price features come from prices in ticks, so
    they are bit-identical for the same market at another price level (give it whenever it
    is known; without it they are scale-free up to rounding)."""
    if tick_size is not None:
        tick_size = check_tick_size(tick_size, "build_features")
    if len(states) != len(bars):
        raise DataError(f"states have {len(states)} rows for {len(bars)} bars; compute them "
                        "from the same bars")
    close = bars["close"].to_numpy(dtype=np.float64)
    columns = _state_features(states, close)
    columns.update(_price_features(bars, tick_size))
    columns.update(_calendar_features(bars["ts"]))
    for symbol, reference in sorted((references or {}).items()):
        columns.update(_reference_features(bars, symbol, reference))
    frame = pd.DataFrame(columns, index=bars.index)
    values = frame.to_numpy(dtype=np.float64, copy=True)
    values[~np.isfinite(values)] = np.nan
    return pd.DataFrame(values, index=bars.index, columns=frame.columns)
