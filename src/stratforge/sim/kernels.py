"""Numba kernels of the exit simulator: pure functions over numpy arrays.

The per-bar exit rules live in one function, :func:`walk_position`, inlined into both the
trade-recording kernel (``simulate_kernel``) and the parallel summary kernel
(``sweep_kernel``), so the two cannot drift. Shorts are handled by mirroring prices
(``x -> -x``), which is exact in floating point, so every rule is written once, for a long.

Price arrays passed in are the ones the exit checks see: with ``price_path="close"`` the
caller passes ``close`` as open, high and low. Parameters come as one float64 matrix row
(columns in ``params.MATRIX_COLUMNS`` order, 0 = rule off). ``extra_slip`` holds the velocity
slippage in ticks of a fill on each bar (zeros when the cost model has none).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from stratforge.sim.params import (
    P_ACTIVATION,
    P_COMMISSION,
    P_FEE,
    P_MAX_HOLD,
    P_QUANTITY,
    P_SLIP,
    P_SPREAD,
    P_STOP,
    P_TARGET,
    P_TIGHT,
    P_WIDE,
    P_WIDEN,
)

REASON_STOP, REASON_TRAIL, REASON_TARGET, REASON_TIMEOUT, REASON_SESSION, REASON_END = range(6)
REASONS: tuple[str, ...] = ("stop", "trail", "target", "timeout", "session", "end")

# Summary matrix columns written by sweep_kernel.
(S_TRADES, S_WINS, S_LOSSES, S_TOTAL, S_PER_TRADE, S_WIN_RATE, S_PROFIT_FACTOR, S_SHARPE,
 S_MAX_DD, S_AVG_BARS) = range(10)
N_SUMMARY = 10
# A per-trade PnL std this small relative to the mean absolute PnL is rounding noise.
SHARPE_NOISE = 1e-9

_NJIT = {"nogil": True, "cache": True, "error_model": "numpy"}


@numba.njit(inline="always", **_NJIT)
def trail_distance(mfe, tight, wide, widen):
    """Trailing distance in ticks for the current MFE (0 = no trailing)."""
    if wide > 0.0 and (tight <= 0.0 or (widen > 0.0 and mfe >= widen)):
        return wide
    return tight


@numba.njit(inline="always", **_NJIT)
def entry_fill(raw_price, side, p, extra_slip, fill_bar, tick):
    """The entry fill price: the raw fill moved against the trade by the slippage ticks plus
    the fill bar's velocity slippage."""
    return raw_price + side * (p[P_SLIP] + extra_slip[fill_bar]) * tick


@numba.njit(inline="always", **_NJIT)
def walk_position(open_, high, low, close, session_last, extra_slip, fill_bar, side, entry, p,
                  tick):
    """Check exits bar by bar from ``fill_bar + 1`` for one position.

    ``side`` is +1.0 or -1.0, ``entry`` the entry fill price (slippage included) and ``p``
    one parameter row. Returns (exit_bar, exit_price, reason, mfe_points, mae_points); the
    exit price includes slippage (market exits only). Needs ``fill_bar < len(close) - 1``.
    """
    n = close.shape[0]
    base_slip = p[P_SLIP]
    max_hold = p[P_MAX_HOLD]
    tight = p[P_TIGHT]
    wide = p[P_WIDE]
    widen = p[P_WIDEN]
    trailing = tight > 0.0 or wide > 0.0
    activation = p[P_ACTIVATION] * tick
    e = side * entry  # mirrored entry: the rules below are written for a long
    fixed_stop = e - p[P_STOP] * tick if p[P_STOP] > 0.0 else -np.inf
    target = e + p[P_TARGET] * tick if p[P_TARGET] > 0.0 else np.inf
    mfe = 0.0
    mae = 0.0
    for j in range(fill_bar + 1, n):
        if side > 0.0:
            o, fav, adv, c = open_[j], high[j], low[j], close[j]
        else:
            o, fav, adv, c = -open_[j], -low[j], -high[j], -close[j]
        # 1. effective stop: fixed stop, raised to the trailing level once trailing is active
        stop = fixed_stop
        reason = REASON_STOP
        if trailing and mfe > 0.0 and mfe >= activation:
            level = e + mfe - trail_distance(mfe, tight, wide, widen) * tick
            if level > stop:
                stop = level
                reason = REASON_TRAIL
        price = np.nan
        slip = (base_slip + extra_slip[j]) * tick
        # 2. gap through the stop exits at the open, else a touch exits at the stop
        if o <= stop:
            price = o - slip
        elif adv <= stop:
            price = stop - slip
        # 3. gap through the target exits at the open, else a touch fills the limit
        elif o >= target:
            price = o
            reason = REASON_TARGET
        elif fav >= target:
            price = target
            reason = REASON_TARGET
        # 4. timeout
        elif max_hold > 0.0 and j - fill_bar >= max_hold:
            price = c - slip
            reason = REASON_TIMEOUT
        # 5. session flat time, or the last bar of the data
        elif session_last[j] or j == n - 1:
            price = c - slip
            reason = REASON_SESSION if session_last[j] else REASON_END
        if not math.isnan(price):
            return (j, side * price, reason, max(mfe, fav - e), max(mae, e - adv))
        # 6. only then is mfe updated with this bar
        mfe = max(mfe, fav - e)
        mae = max(mae, e - adv)
    slip = (base_slip + extra_slip[n - 1]) * tick
    return (n - 1, side * (close[n - 1] * side - slip), REASON_END, mfe, mae)


@numba.njit(inline="always", **_NJIT)
def next_entry(signal_bar, k, exit_bar):
    """Index of the first signal after position ``k`` whose bar is strictly after exit_bar."""
    m = signal_bar.shape[0]
    while k < m and signal_bar[k] <= exit_bar:
        k += 1
    return k


@numba.njit(inline="always", **_NJIT)
def trade_pnl(entry, exit_price, side, p, tick, point_value):
    """(pnl_points, fees, pnl) of one trade: the price move less one spread and the notional
    fees of both fills (points), then commissions on both sides (currency)."""
    pnl_points = ((exit_price - entry) * side - p[P_SPREAD] * tick
                  - p[P_FEE] * 1e-4 * (entry + exit_price))
    fees = p[P_COMMISSION] * 2.0 * p[P_QUANTITY]
    return pnl_points, fees, pnl_points * point_value * p[P_QUANTITY] - fees


@numba.njit(**_NJIT)
def simulate_kernel(open_, high, low, close, session_last, extra_slip, signal_bar, fill_bar,
                    raw_price, side, p, tick, point_value):
    """Trades of one parameter row; returns per-trade arrays and the trade count."""
    m = signal_bar.shape[0]
    entry_idx = np.empty(m, np.int64)
    exit_bar = np.empty(m, np.int64)
    entry_price = np.empty(m, np.float64)
    exit_price = np.empty(m, np.float64)
    reason = np.empty(m, np.int8)
    mfe = np.empty(m, np.float64)
    mae = np.empty(m, np.float64)
    pnl_points = np.empty(m, np.float64)
    pnl = np.empty(m, np.float64)
    count = 0
    k = 0
    while k < m:
        s = side[k]
        entry = entry_fill(raw_price[k], s, p, extra_slip, fill_bar[k], tick)
        x, px, why, best, worst = walk_position(open_, high, low, close, session_last,
                                                extra_slip, fill_bar[k], s, entry, p, tick)
        entry_idx[count] = k
        exit_bar[count] = x
        entry_price[count] = entry
        exit_price[count] = px
        reason[count] = why
        mfe[count] = best
        mae[count] = worst
        points, _fees, money = trade_pnl(entry, px, s, p, tick, point_value)
        pnl_points[count] = points
        pnl[count] = money
        count += 1
        k = next_entry(signal_bar, k + 1, x)
    return (entry_idx[:count], exit_bar[:count], entry_price[:count], exit_price[:count],
            reason[:count], mfe[:count], mae[:count], pnl_points[:count], pnl[:count])


@numba.njit(inline="always", **_NJIT)
def summarize_row(open_, high, low, close, session_last, extra_slip, signal_bar, fill_bar,
                  raw_price, side, p, tick, point_value, out):
    """Walk every trade of one parameter row and write its summary statistics into ``out``."""
    m = signal_bar.shape[0]
    trades = 0
    wins = 0
    losses = 0
    total = 0.0
    gross_profit = 0.0
    gross_loss = 0.0
    mean = 0.0
    m2 = 0.0
    size = 0.0
    peak = 0.0
    max_dd = 0.0
    bars = 0
    k = 0
    while k < m:
        s = side[k]
        entry = entry_fill(raw_price[k], s, p, extra_slip, fill_bar[k], tick)
        x, px, _why, _best, _worst = walk_position(open_, high, low, close, session_last,
                                                   extra_slip, fill_bar[k], s, entry, p, tick)
        _points, _fees, pnl = trade_pnl(entry, px, s, p, tick, point_value)
        trades += 1
        bars += x - fill_bar[k]
        if pnl > 0.0:
            wins += 1
            gross_profit += pnl
        elif pnl < 0.0:
            losses += 1
            gross_loss -= pnl
        total += pnl
        delta = pnl - mean  # Welford
        mean += delta / trades
        m2 += delta * (pnl - mean)
        size += abs(pnl)
        peak = max(peak, total)
        max_dd = max(max_dd, peak - total)
        k = next_entry(signal_bar, k + 1, x)
    out[S_TRADES] = trades
    out[S_WINS] = wins
    out[S_LOSSES] = losses
    out[S_TOTAL] = total
    out[S_MAX_DD] = max_dd
    if trades == 0:
        out[S_PROFIT_FACTOR] = np.nan
        out[S_PER_TRADE] = np.nan
        out[S_WIN_RATE] = np.nan
        out[S_SHARPE] = np.nan
        out[S_AVG_BARS] = np.nan
    else:
        out[S_PROFIT_FACTOR] = profit_factor(gross_profit, gross_loss)
        out[S_PER_TRADE] = total / trades
        out[S_WIN_RATE] = wins / trades
        out[S_SHARPE] = sharpe_per_trade(mean, m2, size, trades)
        out[S_AVG_BARS] = bars / trades


@numba.njit(parallel=True, **_NJIT)
def sweep_kernel(open_, high, low, close, session_last, extra_slip, signal_bar, fill_bar,
                 raw_price, side, params, tick, point_value):
    """Summary statistics for every parameter row (one ``prange`` over rows, no trade list)."""
    out = np.empty((params.shape[0], N_SUMMARY), np.float64)
    for row in numba.prange(params.shape[0]):
        summarize_row(open_, high, low, close, session_last, extra_slip, signal_bar, fill_bar,
                      raw_price, side, params[row], tick, point_value, out[row])
    return out


@numba.njit(**_NJIT)
def sweep_kernel_serial(open_, high, low, close, session_last, extra_slip, signal_bar,
                        fill_bar, raw_price, side, params, tick, point_value):
    """``sweep_kernel`` on the calling thread (small sweeps, where starting threads costs more
    than it saves)."""
    out = np.empty((params.shape[0], N_SUMMARY), np.float64)
    for row in range(params.shape[0]):
        summarize_row(open_, high, low, close, session_last, extra_slip, signal_bar, fill_bar,
                      raw_price, side, params[row], tick, point_value, out[row])
    return out


@numba.njit(inline="always", **_NJIT)
def sharpe_per_trade(mean, m2, sum_abs, trades):
    """Mean / sample std of trade PnL; NaN with fewer than two trades or when the std is at
    most ``SHARPE_NOISE`` times the mean absolute PnL (equal trades up to rounding)."""
    if trades < 2:
        return np.nan
    std = math.sqrt(m2 / (trades - 1))
    if std <= SHARPE_NOISE * (sum_abs / trades):
        return np.nan
    return mean / std


@numba.njit(inline="always", **_NJIT)
def profit_factor(gross_profit, gross_loss):
    """Gross profit / gross loss; inf with profit and no loss, NaN with neither."""
    if gross_loss > 0.0:
        return gross_profit / gross_loss
    if gross_profit > 0.0:
        return np.inf
    return np.nan
