"""Field-engine states: kernels against slow references, no lookahead, documented rules."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.special import softmax
from scipy.stats import entropy

from conftest import random_bars
from stratforge.errors import ConfigError, DataError
from stratforge.features import STATE_COLUMNS, compute_states, kernels
from stratforge.features.field import wave_function
from stratforge.features.states import hurst_chunk_sizes, warm_up_bars

FAST = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------- slow references

def ref_regression(close, period):
    """np.polyfit on every window: centre, slope, regression sigma, residual, mean |move|."""
    n = len(close)
    out = np.full((5, n), np.nan)
    x = np.arange(period, dtype=float)
    for t in range(period - 1, n):
        y = close[t - period + 1:t + 1]
        slope, intercept = np.polyfit(x, y, 1)
        fitted = intercept + slope * x
        resid = y - fitted
        out[:, t] = (fitted[-1], slope, math.sqrt((resid ** 2).sum() / (period - 2)),
                     y[-1] - fitted[-1], np.abs(np.diff(y)).mean())
    return out


def ref_quantile(values, window, min_count, q):
    """np.percentile (method="linear", numpy's default) over the defined values of each window."""
    out = np.full(len(values), np.nan)
    for t in range(len(values)):
        w = values[max(0, t - window + 1):t + 1]
        w = w[~np.isnan(w)]
        if len(w) >= min_count:
            out[t] = np.percentile(w, q * 100, method="linear")
    return out


def ref_hurst(close, window, sizes, default=0.5, tol=1e-9):
    """Multi-scale R/S over the last ``window`` increments, straight from the definition."""
    out = np.full(len(close), default)
    for t in range(window, len(close)):
        xs, ys = [], []
        for s in sizes:
            k = window // s
            values = []
            for j in range(k):
                a = t - k * s + j * s
                d = np.diff(close[a:a + s + 1])
                dev = d - d.mean()
                cum = np.concatenate(([0.0], np.cumsum(dev)))
                sd = math.sqrt((dev ** 2).mean())
                if sd > tol * abs(d.mean()):
                    values.append((cum.max() - cum.min()) / sd)
            if values:
                xs.append(math.log(s))
                ys.append(math.log(np.mean(values)))
        if len(xs) >= 2:
            out[t] = min(1.0, max(0.0, np.polyfit(xs, ys, 1)[0]))
    return out


def ref_wilder(high, low, close, period):
    """Wilder's DMI/ADX written as a plain loop over Python floats."""
    n = len(close)
    pdi, mdi, adx = ([math.nan] * n for _ in range(3))
    s_tr = s_p = s_m = 0.0
    dxs = []
    for t in range(1, n):
        up, down = high[t] - high[t - 1], low[t - 1] - low[t]
        p = up if up > down and up > 0 else 0.0
        m = down if down > up and down > 0 else 0.0
        tr = max(high[t], close[t - 1]) - min(low[t], close[t - 1])
        if t <= period:
            s_tr, s_p, s_m = s_tr + tr, s_p + p, s_m + m
        else:
            s_tr = s_tr - s_tr / period + tr
            s_p = s_p - s_p / period + p
            s_m = s_m - s_m / period + m
        if t >= period:
            pdi[t] = 100 * s_p / s_tr if s_tr > 0 else 0.0
            mdi[t] = 100 * s_m / s_tr if s_tr > 0 else 0.0
            total = pdi[t] + mdi[t]
            dxs.append(100 * abs(pdi[t] - mdi[t]) / total if total > 0 else 0.0)
            if len(dxs) == period:
                adx[t] = sum(dxs) / period
            elif len(dxs) > period:
                adx[t] = (adx[t - 1] * (period - 1) + dxs[-1]) / period
    return np.array(pdi), np.array(mdi), np.array(adx)


def walk(seed, n, tick=0.25, level=100.0):
    """OHLCV arrays of a tick-grid random walk with wicks and random volume."""
    rng = np.random.default_rng(seed)
    close = level + np.cumsum(rng.integers(-3, 4, n)) * tick
    open_ = np.concatenate((close[:1], close[:-1]))
    high = np.maximum(open_, close) + rng.integers(0, 3, n) * tick
    low = np.minimum(open_, close) - rng.integers(0, 3, n) * tick
    volume = rng.integers(1, 40, n).astype(float)
    return open_, high, low, close, volume


def bars_of(open_, high, low, close, volume, start="2024-01-02"):
    ts = pd.date_range(start, periods=len(close), freq="1min", tz="UTC").as_unit("ns")
    return pd.DataFrame({"ts": ts, "open": open_, "high": high, "low": low, "close": close,
                         "volume": volume})


@pytest.fixture(scope="module")
def bars():
    return random_bars(7, "2024-01-02", "2024-01-06", keep=0.6)


@pytest.fixture(scope="module")
def states(bars):
    return compute_states(bars)


# ---------------------------------------------------------------- kernels vs references

@FAST
@given(seed=st.integers(0, 10_000), period=st.integers(3, 30), n=st.integers(1, 120))
def test_regression_matches_polyfit(seed, period, n):
    close = 100 + np.cumsum(np.random.default_rng(seed).normal(0, 1, n))
    got = np.vstack(kernels.rolling_regression(close, period))
    np.testing.assert_allclose(got, ref_regression(close, period), rtol=1e-9, atol=1e-9)


@FAST
@given(seed=st.integers(0, 10_000), window=st.integers(1, 60), data=st.data())
def test_rolling_quantile_is_numpy_linear_percentile_exactly(seed, window, data):
    min_count = data.draw(st.integers(1, window))
    q = data.draw(st.sampled_from([0.0, 0.1, 0.5, 0.84, 0.9, 1.0]))
    n = data.draw(st.integers(0, 200))
    warm = data.draw(st.integers(0, 30))
    chunks = data.draw(st.integers(1, 9))
    rng = np.random.default_rng(seed)
    values = np.round(rng.exponential(1.0, n), 1)  # rounding makes ties
    values[:warm] = np.nan
    got = kernels.rolling_quantile(values, window, min_count, q, chunks)
    np.testing.assert_array_equal(got, ref_quantile(values, window, min_count, q))


def test_rolling_quantile_at_default_size():
    values = np.abs(np.random.default_rng(3).normal(size=1_300))
    values[:20] = np.nan
    got = kernels.rolling_quantile(values, 500, 20, 0.84, 4)
    np.testing.assert_array_equal(got, ref_quantile(values, 500, 20, 0.84))


def test_hurst_matches_reference():
    close = walk(11, 400)[3]
    for window in (16, 40, 100):
        sizes = hurst_chunk_sizes(window)
        got = kernels.rolling_hurst(close, window, sizes, 0.5, 1e-9)
        np.testing.assert_allclose(got, ref_hurst(close, window, sizes), rtol=0, atol=1e-12)
    assert list(hurst_chunk_sizes(100)) == [12, 25, 50, 100]


def test_hurst_orders_antipersistent_random_and_persistent_paths():
    rng = np.random.default_rng(5)
    sizes = hurst_chunk_sizes(100)

    def mean_hurst(phi):  # AR(1) increments: phi < 0 mean-reverting, phi > 0 trending
        shocks, inc = rng.normal(0, 1, 3000), np.empty(3000)
        inc[0] = shocks[0]
        for i in range(1, 3000):
            inc[i] = phi * inc[i - 1] + shocks[i]
        return kernels.rolling_hurst(100 + np.cumsum(inc), 100, sizes, 0.5, 1e-9)[100:].mean()

    zigzag = 100 + np.cumsum(np.where(np.arange(3000) % 2, 1.0, -1.0) + rng.normal(0, 0.1, 3000))
    assert kernels.rolling_hurst(zigzag, 100, sizes, 0.5, 1e-9)[100:].mean() < 0.3
    assert mean_hurst(-0.8) < 0.45 < mean_hurst(0.0) < 0.65 < mean_hurst(0.8)
    flat = np.full(300, 42.0)
    np.testing.assert_array_equal(kernels.rolling_hurst(flat, 100, sizes, 0.5, 1e-9), 0.5)
    line = 100 + 0.1 * np.arange(300)  # equal increments (up to rounding): R/S undefined
    np.testing.assert_array_equal(kernels.rolling_hurst(line, 100, sizes, 0.5, 1e-9), 0.5)


@FAST
@given(seed=st.integers(0, 10_000), period=st.integers(1, 20), n=st.integers(0, 90))
def test_wilder_dmi_matches_plain_loop(seed, period, n):
    _, high, low, close, _ = walk(seed, n)
    got = kernels.wilder_dmi(high, low, close, period)
    for a, b in zip(got, ref_wilder(high, low, close, period), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_wilder_dmi_hand_computed_case():
    high = np.array([10.0, 11, 12, 11, 9])
    low = np.array([8.0, 9, 10, 7, 6])
    close = np.array([9.0, 10, 11, 8, 7])
    plus_di, minus_di, adx = kernels.wilder_dmi(high, low, close, 2)
    # t=2: S(TR)=4, S(+DM)=2, S(-DM)=0; t=3: S=6, 1, 3; t=4: S=6, 0.5, 2.5
    np.testing.assert_allclose(plus_di, [np.nan, np.nan, 50, 100 / 6, 100 / 12])
    np.testing.assert_allclose(minus_di, [np.nan, np.nan, 0, 50, 250 / 6])
    # DX: 100, 50, 66.67; ADX = mean of the first two, then (ADX + DX) / 2
    np.testing.assert_allclose(adx, [np.nan, np.nan, np.nan, 75, (75 + 200 / 3) / 2])


def test_true_range_and_mean_before():
    high, low, close = np.array([5.0, 6, 9]), np.array([4.0, 5, 7]), np.array([4.5, 5.5, 8])
    np.testing.assert_array_equal(kernels.true_range(high, low, close), [1, 1.5, 3.5])
    values = np.arange(6.0)
    np.testing.assert_array_equal(kernels.rolling_mean_before(values, 2),
                                  [np.nan, np.nan, 0.5, 1.5, 2.5, 3.5])


@given(z=st.floats(-40, 40, allow_nan=False))
def test_wave_function_is_softmax_and_normalised_entropy(z):
    p0, p1, p2, coherence = wave_function(z)
    expected = softmax([-z * z / 2, -(z - 2) ** 2 / 2, -(z + 2) ** 2 / 2])
    np.testing.assert_allclose([p0, p1, p2], expected, rtol=1e-12, atol=1e-300)
    assert coherence == pytest.approx(entropy(expected) / math.log(3), abs=1e-12)
    assert 0.0 <= coherence <= 1.0
    assert all(math.isnan(v) for v in wave_function(math.nan))


# ---------------------------------------------------------------- compute_states

def test_columns_dtypes_and_alignment(bars):
    shifted = bars.set_index(bars.index + 1000)
    frame = compute_states(shifted)
    assert tuple(frame.columns) == STATE_COLUMNS
    assert frame.index.equals(shifted.index)
    assert (frame["ts"].to_numpy() == shifted["ts"].to_numpy()).all()
    for column in STATE_COLUMNS[1:-5]:
        assert frame[column].dtype == np.float64, column
    assert isinstance(frame["zone"].dtype, pd.CategoricalDtype)
    assert isinstance(frame["trend"].dtype, pd.CategoricalDtype)
    for column in ("structure_confirmed", "cascade_detected", "ready"):
        assert frame[column].dtype == bool


def test_warm_up_pattern(states):
    first = {c: int(np.argmax(states[c].notna().to_numpy())) for c in STATE_COLUMNS[1:]}
    assert first["velocity"] == 1
    for column in ("centre", "slope", "reg_sigma", "sigma", "z", "p0", "coherence", "zone",
                   "trend", "reversion", "momentum_strength", "fractal_sigma",
                   "velocity_sigma"):
        assert first[column] == 20, column
    assert first["robust_sigma"] == 20 + 19
    assert first["lyapunov"] == 21
    assert first["plus_di"] == 14 and first["adx"] == 27
    assert first["volume_ratio"] == 20 and first["range_ratio"] == 20
    assert (states["hurst"].iloc[:100] == 0.5).all()
    assert not states[["structure_confirmed", "cascade_detected"]].iloc[:20].any().any()
    assert warm_up_bars() == 100
    assert not states["ready"].iloc[:100].any() and states["ready"].iloc[100:].all()
    assert states.iloc[100:].drop(columns=["zone", "trend"]).notna().all().all()
    assert states.iloc[20:][["zone", "trend"]].notna().all().all()


@pytest.mark.parametrize("cut", [1, 2, 10, 20, 21, 39, 40, 99, 100, 101, 519, 520, 777])
def test_no_lookahead_truncation_leaves_every_column_identical(bars, states, cut):
    truncated = compute_states(bars.iloc[:cut])
    pd.testing.assert_frame_equal(truncated, states.iloc[:cut], check_exact=True)


def test_no_lookahead_every_prefix_of_a_short_series():
    bars = bars_of(*walk(2, 140))
    full = compute_states(bars, hurst_window=24, robust_window=30, robust_min_count=5)
    for cut in range(0, 140, 7):
        part = compute_states(bars.iloc[:cut], hurst_window=24, robust_window=30,
                              robust_min_count=5)
        pd.testing.assert_frame_equal(part, full.iloc[:cut], check_exact=True)


def test_states_follow_the_documented_formulas(bars, states):
    s = states.iloc[21:]
    close, volume = bars["close"].to_numpy(), bars["volume"].to_numpy()
    ref = ref_regression(close, 21)
    np.testing.assert_allclose(states[["centre", "slope", "reg_sigma", "residual",
                                       "mean_abs_move"]].to_numpy().T, ref, atol=1e-9)
    expected_robust = ref_quantile(np.abs(ref[3]), 500, 20, 0.84)
    np.testing.assert_allclose(states["robust_sigma"], expected_robust, atol=1e-9)
    sigma = np.where(np.isnan(s["robust_sigma"]), s["reg_sigma"],
                     np.maximum(s["robust_sigma"], s["reg_sigma"]))
    np.testing.assert_array_equal(s["sigma"], sigma)
    move = np.abs(np.diff(close))[20:]
    ratio = np.clip(move / s["mean_abs_move"], 0.1, 10)
    np.testing.assert_allclose(s["fractal_sigma"], s["sigma"] * ratio ** s["hurst"], rtol=1e-12)
    np.testing.assert_allclose(s["z"], s["residual"] / s["fractal_sigma"], rtol=1e-12)
    np.testing.assert_allclose(s["velocity"], np.diff(close)[20:], rtol=0, atol=0)
    np.testing.assert_allclose(s["reversion"], -0.5 * s["residual"], rtol=1e-15)
    np.testing.assert_allclose(s["momentum"], s["velocity"] * volume[21:] / s["sigma"],
                               rtol=1e-12)
    np.testing.assert_allclose(s["velocity_sigma"], s["velocity"] / s["sigma"], rtol=1e-15)
    # the reversion force in sigmas plus 0.5, that of a bar one sigma off its centre
    # (scale-free, unlike the old 1e-6 in price units)
    np.testing.assert_allclose(s["momentum_strength"],
                               s["momentum"] / (np.abs(s["reversion"]) / s["sigma"] + 0.5),
                               rtol=1e-12)
    np.testing.assert_allclose(s["p0"] + s["p1"] + s["p2"], 1.0, rtol=1e-12)
    z = s["z"].to_numpy()
    zone = np.select([np.abs(z) < 1, np.abs(z) < 2, z >= 2], ["L1_STABLE", "CHAOS", "L2_ROCHE"],
                     "L3_ROCHE")
    assert (s["zone"].astype(str).to_numpy() == zone).all()
    strength = s["slope"] * 21 / s["sigma"]
    np.testing.assert_allclose(s["trend_strength"], strength, rtol=1e-12)
    trend = np.select([strength > 1, strength < -1], ["UP", "DOWN"], "RANGE")
    assert (s["trend"].astype(str).to_numpy() == trend).all()
    np.testing.assert_array_equal(s["lyapunov"], np.abs(z) - np.abs(states["z"].iloc[20:-1]))
    vol_mean = pd.Series(volume).rolling(20).mean().shift(1).to_numpy()
    np.testing.assert_allclose(states["volume_ratio"], volume / vol_mean, rtol=1e-12)
    structure = (volume > 1.2 * vol_mean) & (np.abs(states["z"]) > 2.1)
    np.testing.assert_array_equal(states["structure_confirmed"], structure)
    high, low = bars["high"].to_numpy(), bars["low"].to_numpy()
    prev = np.concatenate(([np.nan], close[:-1]))
    tr = np.fmax(high, prev) - np.fmin(low, prev)
    np.testing.assert_allclose(states["true_range"], tr, rtol=1e-15)
    tr_mean = pd.Series(tr).rolling(20).mean().shift(1).to_numpy()
    np.testing.assert_array_equal(states["cascade_detected"], tr > 3 * tr_mean)
    np.testing.assert_allclose(states["range_ratio"], tr / tr_mean, rtol=1e-12)
    pdi, mdi, adx = ref_wilder(high, low, close, 14)
    np.testing.assert_allclose(states["dmi_diff"], pdi - mdi, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(states["adx"], adx, rtol=1e-12)
    assert states["structure_confirmed"].any() and states["cascade_detected"].any()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scale=st.floats(1e-3, 1e3), offset=st.floats(-1e3, 1e3), seed=st.integers(0, 100),
       power=st.integers(-8, 8), shift=st.integers(-1000, 1000))
def test_scale_free_states_do_not_depend_on_price_units(scale, offset, seed, power, shift):
    o, h, lo, c, v = walk(seed, 260)
    base = compute_states(bars_of(o, h, lo, c, v))

    def moved(a, b):
        return compute_states(bars_of(o * a + b, h * a + b, lo * a + b, c * a + b, v))

    other = moved(scale, offset)
    for column in ("z", "hurst", "coherence", "trend_strength", "range_ratio", "lyapunov"):
        np.testing.assert_allclose(other[column], base[column], rtol=1e-6, atol=1e-6,
                                   err_msg=column)
    flips = (other["cascade_detected"] != base["cascade_detected"]).sum()
    assert flips <= np.isclose(base["range_ratio"], 3.0, rtol=1e-6).sum()
    # DMI compares up and down moves, so ties on the tick grid must stay ties: exact rescaling
    exact = moved(2.0 ** power, float(shift))
    for column in ("adx", "dmi_diff", "z"):
        np.testing.assert_allclose(exact[column], base[column], rtol=1e-9, atol=1e-9)
    for column in ("cascade_detected", "structure_confirmed", "zone", "trend"):
        assert exact[column].equals(base[column]), column


def test_flat_prices_give_zero_z_and_no_nan_after_warm_up():
    n = 160
    flat = np.full(n, 50.0)
    frame = compute_states(bars_of(flat, flat, flat, flat, np.ones(n)))
    ready = frame.iloc[100:]
    assert (ready["z"] == 0).all() and (ready["sigma"] == 0).all()
    assert (ready["momentum"] == 0).all() and (ready["hurst"] == 0.5).all()
    assert (ready["zone"] == "L1_STABLE").all() and (ready["trend"] == "RANGE").all()
    assert (ready["range_ratio"] == 0).all() and not ready["cascade_detected"].any()
    assert ready.drop(columns=["zone", "trend"]).notna().all().all()


def test_straight_line_prices_have_no_dispersion_but_a_trend():
    n = 160
    line = 100 + 0.1 * np.arange(n)  # 0.1 is not exact in binary: residuals are rounding noise
    frame = compute_states(bars_of(line, line, line, line, np.ones(n))).iloc[100:]
    assert (frame["z"] == 0).all() and (frame["momentum"] == 0).all()
    assert (frame["trend_strength"] == np.inf).all() and (frame["trend"] == "UP").all()
    assert (frame["zone"] == "L1_STABLE").all() and (frame["hurst"] == 0.5).all()


def test_empty_and_tiny_inputs():
    o, h, lo, c, v = walk(1, 3)
    assert len(compute_states(bars_of(o, h, lo, c, v).iloc[:0])) == 0
    tiny = compute_states(bars_of(o, h, lo, c, v))
    assert tiny["z"].isna().all() and not tiny["ready"].any()


def test_bad_input_is_refused_with_a_clear_error(bars):
    with pytest.raises(DataError, match="missing column"):
        compute_states(bars.drop(columns=["volume"]))
    broken = bars.copy()
    broken.loc[5, "close"] = np.nan
    with pytest.raises(DataError, match="close at row 6"):
        compute_states(broken)
    with pytest.raises(ConfigError, match="regression_period"):
        compute_states(bars, regression_period=2)
    with pytest.raises(ConfigError, match="robust_min_count"):
        compute_states(bars, robust_window=10, robust_min_count=20)
