"""Numba kernels of the field engine: pure functions over float64 numpy arrays.

No pandas and no objects here; ``stratforge.features.states`` validates input and shapes output.
Every kernel is causal: output ``t`` reads inputs ``0..t`` only, and is computed by the same
operations in the same order whatever the array length, so truncating the input never changes
an earlier output (the no-lookahead guarantee holds bit for bit). Windows that are not yet full
give NaN (the Hurst exponent gives its default). The conventions (which bars a window holds,
divisions by zero) are documented in docs/features.md.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

NAN = np.nan


@njit(cache=True, parallel=True)
def rolling_regression(close: np.ndarray, period: int):
    """Least-squares line over the last ``period`` closes (current bar included), per bar.

    Returns ``(centre, slope, reg_sigma, residual, mean_abs_move)``: the line's value at the
    current bar, its slope per bar, ``sqrt(sum(residual**2) / (period - 2))``, the current
    bar's residual ``close - centre`` and the mean of the ``period - 1`` absolute close-to-close
    moves inside the window. NaN for the first ``period - 1`` bars.

    Each window is shifted by its last close before fitting (exact for flat windows, and
    free of cancellation at high price levels); the sums run in window order.
    """
    n = close.shape[0]
    centre = np.full(n, NAN)
    slope = np.full(n, NAN)
    reg_sigma = np.full(n, NAN)
    residual = np.full(n, NAN)
    mean_abs_move = np.full(n, NAN)
    xbar = (period - 1) / 2.0
    sxx = period * (period * period - 1) / 12.0
    for t in prange(period - 1, n):
        start = t - period + 1
        last = close[t]
        sd = 0.0
        sxd = 0.0
        moves = 0.0
        for i in range(period):
            d = close[start + i] - last
            sd += d
            sxd += (i - xbar) * d
            if i > 0:
                moves += abs(close[start + i] - close[start + i - 1])
        dbar = sd / period
        b = sxd / sxx
        ss = 0.0
        for i in range(period):
            r = (close[start + i] - last) - dbar - b * (i - xbar)
            ss += r * r
        offset = dbar + b * xbar
        centre[t] = last + offset
        slope[t] = b
        reg_sigma[t] = np.sqrt(ss / (period - 2))
        residual[t] = -offset
        mean_abs_move[t] = moves / (period - 1)
    return centre, slope, reg_sigma, residual, mean_abs_move


@njit(cache=True)
def _linear_quantile(sorted_values: np.ndarray, count: int, q: float) -> float:
    """numpy's default ``method="linear"`` quantile of ``sorted_values[:count]``, bit for bit."""
    virtual = (count - 1) * q
    if virtual >= count - 1:
        return sorted_values[count - 1]
    lo = int(np.floor(virtual))
    gamma = virtual - lo
    a = sorted_values[lo]
    b = sorted_values[lo + 1]
    diff = b - a
    if gamma >= 0.5:
        return b - diff * (1.0 - gamma)
    return a + diff * gamma


@njit(cache=True)
def _lower_bound(sorted_values: np.ndarray, count: int, x: float) -> int:
    """First index ``i < count`` with ``sorted_values[i] >= x`` (``count`` if none)."""
    lo = 0
    hi = count
    while lo < hi:
        mid = (lo + hi) >> 1
        if sorted_values[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True, parallel=True)
def rolling_quantile(values: np.ndarray, window: int, min_count: int, q: float,
                     chunks: int):
    """Quantile ``q`` (numpy ``method="linear"``) of the last ``window`` defined values.

    ``values`` may start with NaN (a warm-up prefix) and must be defined after it. The output
    at ``t`` is NaN until ``min_count`` defined values exist. A sorted copy of the window is
    kept: each step finds the leaving and the arriving value's places by binary search and
    shifts the values between them by one, O(window) per step at worst. The series is cut
    into ``chunks`` pieces computed in parallel, each seeded with the window before it; the
    quantile depends only on the window's values, so the cut never changes a result.
    """
    n = values.shape[0]
    out = np.full(n, NAN)
    first = 0
    while first < n and np.isnan(values[first]):
        first += 1
    m = n - first
    if m <= 0:
        return out
    pieces = max(1, min(chunks, m))
    size = (m + pieces - 1) // pieces
    for c in prange(pieces):
        lo = first + c * size
        hi = min(lo + size, n)
        if lo >= hi:
            continue
        buf = np.empty(window)
        seed_start = max(first, lo - window + 1)
        count = lo - seed_start
        buf[:count] = np.sort(values[seed_start:lo])
        for t in range(lo, hi):
            x = values[t]
            j = _lower_bound(buf, count, x)
            if count == window:
                i = _lower_bound(buf, count, values[t - window])
                if j > i:
                    for p in range(i, j - 1):
                        buf[p] = buf[p + 1]
                    buf[j - 1] = x
                else:
                    for p in range(i, j, -1):
                        buf[p] = buf[p - 1]
                    buf[j] = x
            else:
                for p in range(count, j, -1):
                    buf[p] = buf[p - 1]
                buf[j] = x
                count += 1
            if count >= min_count:
                out[t] = _linear_quantile(buf, count, q)
    return out


@njit(cache=True, parallel=True)
def chunk_rescaled_range(close: np.ndarray, size: int, flat_tolerance: float):
    """R/S of the ``size`` close-to-close increments after each bar: ``out[a]`` covers the
    increments ``close[a+1]-close[a] .. close[a+size]-close[a+size-1]``.

    R is the range of the cumulative deviations from the chunk's mean increment (the start,
    0, included), S their population standard deviation. NaN where S is at most
    ``flat_tolerance`` times |mean increment| (all increments equal: R/S is undefined) and for
    the last ``size`` bars.
    """
    n = close.shape[0]
    out = np.full(n, NAN)
    for a in prange(n - size):
        level = close[a]
        mean = (close[a + size] - level) / size
        ymax = 0.0
        ymin = 0.0
        ss = 0.0
        for i in range(1, size + 1):
            y = (close[a + i] - level) - i * mean
            ymax = max(ymax, y)
            ymin = min(ymin, y)
            d = close[a + i] - close[a + i - 1] - mean
            ss += d * d
        std = np.sqrt(ss / size)
        if std > flat_tolerance * abs(mean):
            out[a] = (ymax - ymin) / std
    return out


@njit(cache=True, parallel=True)
def hurst_from_chunks(rescaled: np.ndarray, sizes: np.ndarray, window: int, default: float):
    """Hurst exponent per bar from ``rescaled[k] = chunk_rescaled_range(close, sizes[k])``.

    For each size ``s`` the last ``(window // s) * s`` increments up to bar ``t`` form
    ``window // s`` chunks; their defined R/S values are averaged. H is the least-squares
    slope of log(mean R/S) on log(s) over the sizes with at least one defined chunk, clipped
    to [0, 1]; ``default`` where fewer than two sizes qualify and for the first ``window``
    bars.
    """
    n = rescaled.shape[1]
    out = np.full(n, default)
    for t in prange(window, n):
        sx = 0.0
        sy = 0.0
        sxx = 0.0
        sxy = 0.0
        used = 0
        for si in range(sizes.shape[0]):
            s = sizes[si]
            k = window // s
            base = t - k * s
            total = 0.0
            count = 0
            for j in range(k):
                value = rescaled[si, base + j * s]
                if not np.isnan(value):
                    total += value
                    count += 1
            if count > 0:
                lx = np.log(s)
                ly = np.log(total / count)
                sx += lx
                sy += ly
                sxx += lx * lx
                sxy += lx * ly
                used += 1
        if used >= 2:
            h = (used * sxy - sx * sy) / (used * sxx - sx * sx)
            out[t] = min(1.0, max(0.0, h))
    return out


@njit(cache=True)
def rolling_hurst(close: np.ndarray, window: int, sizes: np.ndarray, default: float,
                  flat_tolerance: float):
    """Hurst exponent by rescaled range over the last ``window`` close-to-close increments.

    Multi-scale R/S: ``chunk_rescaled_range`` for each chunk size in ``sizes`` (each a
    divisor-like part of ``window``), combined by ``hurst_from_chunks``. Each chunk's R/S is
    computed once and shared by the ``window // size`` bars that use it.
    """
    rescaled = np.empty((sizes.shape[0], close.shape[0]))
    for k in range(sizes.shape[0]):
        rescaled[k] = chunk_rescaled_range(close, sizes[k], flat_tolerance)
    return hurst_from_chunks(rescaled, sizes, window, default)


@njit(cache=True, parallel=True)
def rolling_mean_before(values: np.ndarray, window: int):
    """Mean of the ``window`` values before each bar (``values[t-window:t]``), NaN before."""
    n = values.shape[0]
    out = np.full(n, NAN)
    for t in prange(window, n):
        total = 0.0
        for i in range(t - window, t):
            total += values[i]
        out[t] = total / window
    return out


@njit(cache=True)
def true_range(high: np.ndarray, low: np.ndarray, close: np.ndarray):
    """Wilder's true range: ``max(high, prev close) - min(low, prev close)``; bar 0: high - low."""
    n = close.shape[0]
    out = np.empty(n)
    if n == 0:
        return out
    out[0] = high[0] - low[0]
    for t in range(1, n):
        out[t] = max(high[t], close[t - 1]) - min(low[t], close[t - 1])
    return out


@njit(cache=True)
def wilder_dmi(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int):
    """Wilder's +DI, -DI and ADX over ``period`` bars (the classic 1978 recipe).

    +DM = up move if it beats the down move and is positive, else 0 (-DM mirrors); TR is the
    true range. From bar 1 the first ``period`` values are summed, then each sum is smoothed as
    ``S - S/period + x``. DI = 100 * S(DM) / S(TR) from bar ``period`` (0 when S(TR) is 0);
    DX = 100 * |+DI - -DI| / (+DI + -DI) (0 when both are 0); ADX is the mean of the first
    ``period`` DX values at bar ``2*period - 1``, then ``(ADX*(period-1) + DX) / period``.
    Returns ``(plus_di, minus_di, adx)``, NaN before they exist.
    """
    n = close.shape[0]
    plus_di = np.full(n, NAN)
    minus_di = np.full(n, NAN)
    adx = np.full(n, NAN)
    s_tr = 0.0
    s_plus = 0.0
    s_minus = 0.0
    dx_sum = 0.0
    current_adx = NAN
    for t in range(1, n):
        up = high[t] - high[t - 1]
        down = low[t - 1] - low[t]
        pdm = up if (up > down and up > 0.0) else 0.0
        mdm = down if (down > up and down > 0.0) else 0.0
        tr = max(high[t], close[t - 1]) - min(low[t], close[t - 1])
        if t <= period:
            s_tr += tr
            s_plus += pdm
            s_minus += mdm
        else:
            s_tr = s_tr - s_tr / period + tr
            s_plus = s_plus - s_plus / period + pdm
            s_minus = s_minus - s_minus / period + mdm
        if t < period:
            continue
        pdi = 100.0 * s_plus / s_tr if s_tr > 0.0 else 0.0
        mdi = 100.0 * s_minus / s_tr if s_tr > 0.0 else 0.0
        plus_di[t] = pdi
        minus_di[t] = mdi
        total = pdi + mdi
        dx = 100.0 * abs(pdi - mdi) / total if total > 0.0 else 0.0
        if t < 2 * period - 1:
            dx_sum += dx
        elif t == 2 * period - 1:
            current_adx = (dx_sum + dx) / period
            adx[t] = current_adx
        else:
            current_adx = (current_adx * (period - 1) + dx) / period
            adx[t] = current_adx
    return plus_di, minus_di, adx
