"""Causal technical indicators over numpy arrays: row t uses bars 0..t only.

Each function returns float64 arrays aligned with its input, NaN while its window fills.
Rolling statistics use pandas' windowed kernels (C loops), recursive ones (EMA, Wilder) the
adjust=False exponential forms, so truncating the input never changes an earlier value.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from stratforge.features.kernels import true_range


def rolling_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last ``window`` values."""
    return pd.Series(values).rolling(window, min_periods=window).mean().to_numpy()


def rolling_std(values: np.ndarray, window: int) -> np.ndarray:
    """Sample standard deviation of the last ``window`` values."""
    return pd.Series(values).rolling(window, min_periods=window).std().to_numpy()


def rolling_sum(values: np.ndarray, window: int) -> np.ndarray:
    """Sum of the last ``window`` values."""
    return pd.Series(values).rolling(window, min_periods=window).sum().to_numpy()


def tail_excess(z: np.ndarray, cutoff: float) -> np.ndarray:
    """sign(z) * max(|z| - cutoff, 0): how far a z-score lies beyond the cutoff."""
    return np.sign(z) * np.maximum(np.abs(z) - cutoff, 0.0)


def zscore(values: np.ndarray, window: int) -> np.ndarray:
    """(x - rolling mean) / rolling std over the last ``window`` values (NaN when flat)."""
    mean = rolling_mean(values, window)
    std = rolling_std(values, window)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (values - mean) / std
    out[~np.isfinite(out)] = np.nan
    return out


def ema(values: np.ndarray, span: int) -> np.ndarray:
    """Exponential moving average with alpha 2 / (span + 1), NaN for the first span-1 rows."""
    out = pd.Series(values).ewm(span=span, adjust=False, min_periods=span).mean().to_numpy()
    return out


def parkinson(high: np.ndarray, low: np.ndarray, window: int) -> np.ndarray:
    """Parkinson volatility: sqrt(mean(ln(high/low)^2) / (4 ln 2)) over ``window`` bars."""
    log_range = np.log(high / low) ** 2
    return np.sqrt(rolling_mean(log_range, window) / (4.0 * np.log(2.0)))


def atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int) -> np.ndarray:
    """Wilder's average true range (alpha 1 / period) of the field engine's true range."""
    tr = true_range(high, low, close)
    return pd.Series(tr).ewm(alpha=1.0 / period, adjust=False,
                             min_periods=period).mean().to_numpy()


def rsi(close: np.ndarray, period: int) -> np.ndarray:
    """Wilder's relative strength index, 0..100 (50 on a flat stretch)."""
    change = np.diff(close, prepend=np.nan)
    gain = pd.Series(np.where(change > 0, change, 0.0))
    loss = pd.Series(np.where(change < 0, -change, 0.0))
    gain[0] = loss[0] = np.nan
    avg_gain = gain.ewm(alpha=1.0 / period, adjust=False, min_periods=period).mean().to_numpy()
    avg_loss = loss.ewm(alpha=1.0 / period, adjust=False, min_periods=period).mean().to_numpy()
    total = avg_gain + avg_loss
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(total > 0, 100.0 * avg_gain / total, 50.0)
    out[np.isnan(total)] = np.nan
    return out


def macd(close: np.ndarray, fast: int, slow: int, signal: int
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MACD line, signal line and histogram, each divided by the close (scale-free)."""
    line = ema(close, fast) - ema(close, slow)
    sig = pd.Series(line).ewm(span=signal, adjust=False, min_periods=signal).mean().to_numpy()
    return line / close, sig / close, (line - sig) / close


def bollinger_distance(close: np.ndarray, window: int, width: float = 2.0
                       ) -> tuple[np.ndarray, np.ndarray]:
    """(close - mean) / (width * std) and the band width (2 * width * std / mean)."""
    mean = rolling_mean(close, window)
    std = rolling_std(close, window)
    with np.errstate(invalid="ignore", divide="ignore"):
        distance = (close - mean) / (width * std)
    distance[~np.isfinite(distance)] = np.nan
    return distance, 2.0 * width * std / mean


def rolling_vwap_distance(high: np.ndarray, low: np.ndarray, close: np.ndarray,
                          volume: np.ndarray, window: int) -> np.ndarray:
    """close / VWAP - 1, VWAP of the typical price over the last ``window`` bars."""
    typical = (high + low + close) / 3.0
    pv = pd.Series(typical * volume).rolling(window, min_periods=window).sum().to_numpy()
    vol = pd.Series(volume).rolling(window, min_periods=window).sum().to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        out = close / (pv / vol) - 1.0
    out[~np.isfinite(out)] = np.nan
    return out


def session_vwap_distance(day: np.ndarray, high: np.ndarray, low: np.ndarray,
                          close: np.ndarray, volume: np.ndarray) -> np.ndarray:
    """close / VWAP - 1 with the VWAP restarting on every new value of ``day``."""
    typical = (high + low + close) / 3.0
    frame = pd.DataFrame({"day": day, "pv": typical * volume, "v": volume})
    grouped = frame.groupby("day", sort=False)
    pv = grouped["pv"].cumsum().to_numpy()
    vol = grouped["v"].cumsum().to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        out = close / (pv / vol) - 1.0
    out[~np.isfinite(out)] = np.nan
    return out


def lagged_return(close: np.ndarray, lag: int, *, log: bool) -> np.ndarray:
    """Return over the last ``lag`` bars: ln(c_t / c_{t-lag}) or c_t / c_{t-lag} - 1."""
    out = np.full(len(close), np.nan)
    if lag < len(close):
        ratio = close[lag:] / close[:-lag]
        out[lag:] = np.log(ratio) if log else ratio - 1.0
    return out
