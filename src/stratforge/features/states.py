"""``compute_states``: the field engine's per-bar states of one timeframe's bars.

This is the pandas-facing side: it checks the input, calls the numba kernels of
``stratforge.features.kernels`` and shapes their arrays into a DataFrame aligned with the bars.
Every column and every convention is documented in docs/features.md.
"""

from __future__ import annotations

import numba
import numpy as np
import pandas as pd

from stratforge.data.bars import check_columns
from stratforge.errors import ConfigError, DataError
from stratforge.features import field as field_kernels
from stratforge.features import kernels
from stratforge.features.ticks import check_tick_size, prices_in_ticks

ZONES: tuple[str, ...] = ("L1_STABLE", "CHAOS", "L2_ROCHE", "L3_ROCHE")
"""Zone categories, in the order of their codes."""
TRENDS: tuple[str, ...] = ("DOWN", "RANGE", "UP")
"""Trend categories, in the order of their codes."""

FLOAT_COLUMNS: tuple[str, ...] = (
    "centre", "slope", "residual", "reg_sigma", "robust_sigma", "sigma", "mean_abs_move",
    "hurst", "fractal_sigma", "z", "velocity", "velocity_sigma", "reversion", "momentum",
    "momentum_strength",
    "p0", "p1", "p2", "coherence", "trend_strength", "true_range", "volume_ratio",
    "range_ratio", "plus_di", "minus_di", "dmi_diff", "adx", "lyapunov",
)
"""The float64 state columns."""

PRICE_COLUMNS: tuple[str, ...] = (
    "centre", "slope", "residual", "reg_sigma", "robust_sigma", "sigma", "mean_abs_move",
    "fractal_sigma", "velocity", "reversion", "true_range",
)
"""Float state columns in price units (slope: price per bar); every other float column is a
ratio of price moves (or of volumes), unchanged when all prices are multiplied by a constant."""

STATE_COLUMNS: tuple[str, ...] = (
    "ts", *FLOAT_COLUMNS, "zone", "trend", "structure_confirmed", "cascade_detected", "ready",
)
"""Every column of ``compute_states``' result, in order."""

HURST_MIN_CHUNK = 8
HURST_FLAT_TOLERANCE = 1e-9
HURST_DEFAULT = 0.5
_FIELD_ROWS = ("sigma", "fractal_sigma", "z", "velocity", "velocity_sigma", "reversion",
               "momentum", "momentum_strength", "p0", "p1", "p2", "coherence", "trend_strength",
               "volume_ratio", "range_ratio")


def hurst_chunk_sizes(window: int, min_size: int = HURST_MIN_CHUNK) -> np.ndarray:
    """R/S chunk sizes for a Hurst window: ``window // 2**k`` while at least ``min_size``.

    For the default window of 100 increments: 100, 50, 25 and 12.
    """
    sizes = []
    k = 1
    while window // k >= min_size:
        sizes.append(window // k)
        k *= 2
    return np.asarray(sorted(set(sizes)), dtype=np.int64)


def warm_up_bars(*, regression_period: int = 21, robust_min_count: int = 20,
                 hurst_window: int = 100, adx_period: int = 14, volume_window: int = 20,
                 cascade_window: int = 20) -> int:
    """Index of the first bar at which every state is computed from its full definition."""
    return max(regression_period - 1 + robust_min_count - 1, regression_period, hurst_window,
               2 * adx_period - 1, volume_window, cascade_window)


def _check_parameters(regression_period: int, robust_window: int, robust_min_count: int,
                      robust_quantile: float, hurst_window: int, adx_period: int,
                      volume_window: int, cascade_window: int) -> None:
    problems = []
    if regression_period < 3:
        problems.append(f"regression_period must be at least 3, got {regression_period}")
    if not 1 <= robust_min_count <= robust_window:
        problems.append(f"robust_min_count must be in 1..robust_window ({robust_window}), "
                        f"got {robust_min_count}")
    if not 0.0 <= robust_quantile <= 1.0:
        problems.append(f"robust_quantile must be in [0, 1], got {robust_quantile}")
    if hurst_window < 2 * HURST_MIN_CHUNK:
        problems.append(f"hurst_window must be at least {2 * HURST_MIN_CHUNK}, got {hurst_window}")
    for name, value in (("adx_period", adx_period), ("volume_window", volume_window),
                        ("cascade_window", cascade_window)):
        if value < 1:
            problems.append(f"{name} must be at least 1, got {value}")
    if problems:
        raise ConfigError("compute_states: " + "; ".join(problems))


def _price_array(bars: pd.DataFrame, column: str) -> np.ndarray:
    values = np.ascontiguousarray(bars[column].to_numpy(dtype=np.float64))
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(f"compute_states: {column} at row {row + 1} is {values[row]} (rule: "
                        "prices are finite numbers); validate the bars first "
                        "(stratforge.data.validate_bars)", row=row + 1,
                        rule="prices are finite numbers")
    return values


def compute_states(bars: pd.DataFrame, *, regression_period: int = 21,
                   robust_window: int = 500, robust_min_count: int = 20,
                   robust_quantile: float = 0.84, hurst_window: int = 100, theta: float = 0.5,
                   adx_period: int = 14, volume_window: int = 20,
                   structure_volume_multiple: float = 1.2, structure_z: float = 2.1,
                   cascade_window: int = 20, cascade_multiple: float = 3.0,
                   trend_threshold: float = 1.0,
                   tick_size: float | None = None) -> pd.DataFrame:
    """Field-engine states of canonical ``bars``: one row per bar, aligned with the input.

    Row ``t`` depends only on bars ``0..t`` (truncating the input never changes an earlier
    row). Float columns are NaN while their windows fill (``hurst`` is 0.5 instead);
    ``zone``/``trend`` are categoricals, NaN in warm-up; ``structure_confirmed`` and
    ``cascade_detected`` are bools, False in warm-up; ``ready`` is True from the first bar at
    which every state uses its full definition (bar 100 with the defaults).

    Parameters: ``regression_period`` closes in the least-squares window; the robust sigma is
    the ``robust_quantile`` quantile of |residual| over the last ``robust_window`` bars once
    ``robust_min_count`` residuals exist; ``hurst_window`` close-to-close increments for the
    Hurst exponent; ``theta`` of the reversion force; Wilder's ``adx_period``; volume spikes
    compare with the mean volume of the previous ``volume_window`` bars
    (``structure_volume_multiple``, and |z| above ``structure_z``); cascades compare the
    bar's true range with ``cascade_multiple`` times the mean true range of the previous
    ``cascade_window`` bars; the trend is UP/DOWN when slope * period / sigma is beyond
    +/- ``trend_threshold``. See docs/features.md for every column.

    ``tick_size`` (the instrument's price step): the kernels then run on prices in ticks
    (``prices_in_ticks``, snapped to whole ticks on the grid) and the ``PRICE_COLUMNS`` are
    converted back to price units, so every scale-free column is bit-identical for a market
    and the same market with all prices and the tick multiplied by one constant. Without it
    the kernels run on the prices as given (scale-free up to rounding ties).
    """
    check_columns(bars, "compute_states input")
    _check_parameters(regression_period, robust_window, robust_min_count, robust_quantile,
                      hurst_window, adx_period, volume_window, cascade_window)
    high = _price_array(bars, "high")
    low = _price_array(bars, "low")
    close = _price_array(bars, "close")
    if tick_size is not None:
        tick_size = check_tick_size(tick_size, "compute_states")
        high, low, close = (prices_in_ticks(a, tick_size) for a in (high, low, close))
    volume = np.ascontiguousarray(bars["volume"].to_numpy(dtype=np.float64))

    centre, slope, reg_sigma, residual, mean_abs_move = kernels.rolling_regression(
        close, regression_period)
    robust_sigma = kernels.rolling_quantile(np.abs(residual), robust_window, robust_min_count,
                                            robust_quantile, numba.get_num_threads())
    hurst = kernels.rolling_hurst(close, hurst_window, hurst_chunk_sizes(hurst_window),
                                  HURST_DEFAULT, HURST_FLAT_TOLERANCE)
    tr = kernels.true_range(high, low, close)
    volume_mean = kernels.rolling_mean_before(volume, volume_window)
    tr_mean = kernels.rolling_mean_before(tr, cascade_window)
    field, codes, flags = field_kernels.field_states(
        close, volume, slope, reg_sigma, robust_sigma, residual, mean_abs_move, hurst, tr,
        volume_mean, tr_mean, regression_period, theta, trend_threshold,
        structure_volume_multiple, structure_z, cascade_multiple)
    plus_di, minus_di, adx = kernels.wilder_dmi(high, low, close, adx_period)

    z = field[_FIELD_ROWS.index("z")]
    abs_z = np.abs(z)
    lyapunov = np.full(len(z), np.nan)
    lyapunov[1:] = abs_z[1:] - abs_z[:-1]

    columns: dict[str, np.ndarray] = dict(zip(_FIELD_ROWS, field, strict=True))
    columns.update(centre=centre, slope=slope, residual=residual, reg_sigma=reg_sigma,
                   robust_sigma=robust_sigma, mean_abs_move=mean_abs_move, hurst=hurst,
                   true_range=tr, plus_di=plus_di, minus_di=minus_di,
                   dmi_diff=plus_di - minus_di, adx=adx, lyapunov=lyapunov)
    ready_from = warm_up_bars(regression_period=regression_period,
                              robust_min_count=robust_min_count, hurst_window=hurst_window,
                              adx_period=adx_period, volume_window=volume_window,
                              cascade_window=cascade_window)
    if tick_size is not None:
        for name in PRICE_COLUMNS:  # in place: each is its own array (or field row)
            values = columns[name]
            np.multiply(values, tick_size, out=values)
    out: dict[str, object] = {"ts": bars["ts"].array}
    out.update((name, columns[name]) for name in FLOAT_COLUMNS)
    out["zone"] = pd.Categorical.from_codes(codes[0], categories=list(ZONES))
    out["trend"] = pd.Categorical.from_codes(codes[1], categories=list(TRENDS))
    out["structure_confirmed"] = flags[0]
    out["cascade_detected"] = flags[1]
    out["ready"] = np.arange(len(close)) >= ready_from
    return pd.DataFrame(out, index=bars.index, copy=False)
