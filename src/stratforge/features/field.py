"""Numba kernels of the per-bar field: sigma, z, forces, wave function, zone, trend, flags.

Each output row reads only the same row of its inputs (the rolling inputs come from
``stratforge.features.kernels``), so these kernels keep the no-lookahead guarantee bit for bit.
Pure functions over numpy arrays; the conventions are documented in docs/features.md.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

NAN = np.nan


@njit(cache=True)
def wave_function(z: float):
    """Softmax of the energies -z²/2, -(z-2)²/2, -(z+2)²/2 and its entropy over ln 3.

    Returns ``(p0, p1, p2, coherence)``; all NaN when ``z`` is NaN.
    """
    if np.isnan(z):
        return NAN, NAN, NAN, NAN
    e0 = -0.5 * z * z
    e1 = -0.5 * (z - 2.0) * (z - 2.0)
    e2 = -0.5 * (z + 2.0) * (z + 2.0)
    top = max(e0, e1, e2)
    w0 = np.exp(e0 - top)
    w1 = np.exp(e1 - top)
    w2 = np.exp(e2 - top)
    total = w0 + w1 + w2
    p0 = w0 / total
    p1 = w1 / total
    p2 = w2 / total
    # ln p_i = (e_i - top) - ln(total), so the entropy needs one logarithm
    entropy = np.log(total) - (p0 * (e0 - top) + p1 * (e1 - top) + p2 * (e2 - top))
    return p0, p1, p2, max(0.0, entropy) / np.log(3.0)


DEAD_SIGMA = 1e-12  # sigma at most this times |close| counts as no dispersion at all
REVERSION_FLOOR = 0.5
"""Floor added to the reversion force in sigmas (``|reversion| / sigma``) in
``momentum_strength``: the force of a bar one sigma off its centre at the default theta 0.5.
It bounds the ratio at 2x the momentum on bars at their regression centre."""
ZONE_L1_STABLE, ZONE_CHAOS, ZONE_L2_ROCHE, ZONE_L3_ROCHE = 0, 1, 2, 3
TREND_DOWN, TREND_RANGE, TREND_UP = 0, 1, 2


@njit(cache=True, parallel=True)
def field_states(close, volume, slope, reg_sigma, robust_sigma, residual, mean_abs_move,
                 hurst, tr, volume_mean, tr_mean, period, theta, trend_threshold,
                 structure_volume_multiple, structure_z, cascade_multiple):
    """The per-bar field from the rolling inputs (each row reads only its own inputs).

    Returns a float64 matrix with rows (sigma, fractal_sigma, z, velocity, velocity_sigma,
    reversion, momentum, momentum_strength, p0, p1, p2, coherence, trend_strength,
    volume_ratio, range_ratio), an int8 matrix with rows (zone, trend) where -1 means
    warm-up, and a bool matrix with rows (structure_confirmed, cascade_detected). Where sigma
    is at most ``DEAD_SIGMA * |close|`` (no dispersion) z, velocity_sigma, momentum and
    momentum_strength are 0 and the trend strength is +/-inf along a non-zero slope, else 0;
    ratios over a zero mean give 0 (0/0) or +inf. Every output but the price-unit rows
    (sigma, fractal_sigma, velocity, reversion) is a ratio of price moves, so it does not
    change when all prices are multiplied by one constant; ``momentum_strength`` is
    ``momentum / (|reversion| / sigma + REVERSION_FLOOR)``.
    """
    n = close.shape[0]
    f = np.full((15, n), NAN)
    codes = np.full((2, n), -1, dtype=np.int8)
    flags = np.zeros((2, n), dtype=np.bool_)
    for t in prange(n):
        velocity = close[t] - close[t - 1] if t > 0 else NAN
        f[3, t] = velocity
        vm = volume_mean[t]
        if not np.isnan(vm):
            if vm > 0.0:
                f[13, t] = volume[t] / vm
            else:
                f[13, t] = np.inf if volume[t] > 0.0 else 0.0
        tm = tr_mean[t]
        if not np.isnan(tm):
            if tm > 0.0:
                f[14, t] = tr[t] / tm
            else:
                f[14, t] = np.inf if tr[t] > 0.0 else 0.0
            flags[1, t] = tr[t] > cascade_multiple * tm
        rs = reg_sigma[t]
        if np.isnan(rs):
            continue
        rob = robust_sigma[t]
        sigma = rs if np.isnan(rob) else max(rob, rs)
        mam = mean_abs_move[t]
        ratio = abs(velocity) / mam if mam > 0.0 else 1.0
        ratio = min(10.0, max(0.1, ratio))
        fractal = sigma * ratio ** hurst[t]
        # no dispersion (a flat or perfectly straight window, up to rounding noise)
        dead = not sigma > DEAD_SIGMA * abs(close[t])
        dev = residual[t]
        z = 0.0 if dead else dev / fractal
        reversion = -theta * dev
        momentum = 0.0 if dead else velocity * volume[t] / sigma
        f[0, t] = sigma
        f[1, t] = fractal
        f[2, t] = z
        f[4, t] = 0.0 if dead else velocity / sigma
        f[5, t] = reversion
        f[6, t] = momentum
        f[7, t] = 0.0 if dead else momentum / (abs(reversion) / sigma + REVERSION_FLOOR)
        p0, p1, p2, coherence = wave_function(z)
        f[8, t] = p0
        f[9, t] = p1
        f[10, t] = p2
        f[11, t] = coherence
        if not dead:
            strength = slope[t] * period / sigma
        elif slope[t] == 0.0:
            strength = 0.0
        else:
            strength = np.inf if slope[t] > 0.0 else -np.inf
        f[12, t] = strength
        az = abs(z)
        if az < 1.0:
            codes[0, t] = ZONE_L1_STABLE
        elif az < 2.0:
            codes[0, t] = ZONE_CHAOS
        elif z >= 2.0:
            codes[0, t] = ZONE_L2_ROCHE
        else:
            codes[0, t] = ZONE_L3_ROCHE
        if strength > trend_threshold:
            codes[1, t] = TREND_UP
        elif strength < -trend_threshold:
            codes[1, t] = TREND_DOWN
        else:
            codes[1, t] = TREND_RANGE
        flags[0, t] = (not np.isnan(vm)) and volume[t] > structure_volume_multiple * vm \
            and az > structure_z
    return f, codes, flags
