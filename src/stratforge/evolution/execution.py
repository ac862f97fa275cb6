"""Execution of a model's signal: the position follows the wanted side with a fill delay.

The wanted side of bar t (+1, -1 or 0, known at the close of t) is traded with the
simulator's ``delayed_mid`` fill: an order from bar t fills at (open + close) / 2 of bar
t + d (``delay_bars = d``; d = 4 fills at T+4). On every bar k >= d, with w = wanted[k - d]:

1. an open position (entered before k) checks its stop and target on bar k with the
   simulator's rules for a long (shorts mirrored): open beyond the stop -> exit at the open
   (gap), else the low reaches the stop -> exit at the stop; else the same for the target;
   the stop wins over the target;
2. else, if w differs from the position's side: exit at mid[k] (reason ``signal``);
3. else the session's flat bar or the last bar: exit at close[k] (``session``, ``end``);
4. a flat book with w != 0 opens w at mid[k] unless bar k is the last bar or a session flat
   flag lies on bars k - d .. k (as for the simulator's entries). After a stop, target or
   session exit the same side is not re-entered until the wanted side changes.

Entry and every exit but the target move the fill against the trade by the cost model's
slippage ticks plus the fill bar's velocity slippage; PnL in points = (exit - entry) * side -
one spread - the notional fee of both fills; in currency = points * point value * quantity -
2 * commission * quantity, as for the simulator (see ``stratforge.costs``).
"""

from __future__ import annotations

import numba
import numpy as np
import pandas as pd

from stratforge.instruments import Instrument
from stratforge.sim.backtest import TRADE_COLUMNS
from stratforge.sim.fills import fill_offset, velocity_slip_ticks
from stratforge.sim.params import Costs
from stratforge.sim.session_flags import session_last_flags

REASONS: tuple[str, ...] = ("signal", "stop", "target", "session", "end")
R_SIGNAL, R_STOP, R_TARGET, R_SESSION, R_END = range(5)


@numba.njit(cache=True, nogil=True)
def follow_kernel(open_, high, low, close, session_last, wanted, delay, stop_pts, target_pts,
                  slip_at):
    """Trades of the rules in the module docstring: (entry_bar, exit_bar, side,
    entry_price, exit_price, reason, mfe_points, mae_points) arrays. ``slip_at[k]`` is the
    slippage in price units of a market fill on bar k."""
    n = close.shape[0]
    flagged = np.zeros(n + 1, dtype=np.int64)
    for i in range(n):
        flagged[i + 1] = flagged[i] + (1 if session_last[i] else 0)
    entry_bar = np.empty(n, dtype=np.int64)
    exit_bar = np.empty(n, dtype=np.int64)
    sides = np.empty(n, dtype=np.int64)
    entry_px = np.empty(n, dtype=np.float64)
    exit_px = np.empty(n, dtype=np.float64)
    reasons = np.empty(n, dtype=np.int64)
    mfes = np.empty(n, dtype=np.float64)
    maes = np.empty(n, dtype=np.float64)
    count = 0
    pos = 0
    blocked = 0
    entry = 0.0
    start = 0
    mfe = 0.0
    mae = 0.0
    for k in range(delay, n):
        w = wanted[k - delay]
        if blocked != 0 and w != blocked:  # noqa: PLR1714 (numba)
            blocked = 0
        if pos != 0:
            s = float(pos)
            e = s * entry
            if s > 0:
                o, fav, adv, c = open_[k], high[k], low[k], close[k]
            else:
                o, fav, adv, c = -open_[k], -low[k], -high[k], -close[k]
            mid = (o + c) / 2.0
            slip = slip_at[k]
            reason = -1
            px = 0.0
            if stop_pts > 0.0 and o <= e - stop_pts:
                reason, px = R_STOP, o - slip
            elif stop_pts > 0.0 and adv <= e - stop_pts:
                reason, px = R_STOP, e - stop_pts - slip
            elif target_pts > 0.0 and o >= e + target_pts:
                reason, px = R_TARGET, o
            elif target_pts > 0.0 and fav >= e + target_pts:
                reason, px = R_TARGET, e + target_pts
            elif w != pos:
                reason, px = R_SIGNAL, mid - slip
            elif session_last[k]:
                reason, px = R_SESSION, c - slip
            elif k == n - 1:
                reason, px = R_END, c - slip
            if reason >= 0:
                entry_bar[count] = start
                exit_bar[count] = k
                sides[count] = pos
                entry_px[count] = entry
                exit_px[count] = s * px
                reasons[count] = reason
                mfes[count] = mfe
                maes[count] = mae
                count += 1
                if reason != R_SIGNAL:
                    blocked = pos
                pos = 0
            else:
                mfe = max(mfe, fav - e)
                mae = max(mae, e - adv)
        if pos == 0 and w != 0 and blocked == 0 and k <= n - 2 and \
                flagged[k + 1] - flagged[k - delay] == 0:
            pos = w
            start = k
            entry = (open_[k] + close[k]) / 2.0 + w * slip_at[k]
            mfe = 0.0
            mae = 0.0
    return (entry_bar[:count], exit_bar[:count], sides[:count], entry_px[:count],
            exit_px[:count], reasons[:count], mfes[:count], maes[:count])


def follow_signal(bars: pd.DataFrame, wanted: np.ndarray, *, instrument: Instrument,
                  costs: Costs, delay_bars: int = 4, stop_ticks: float = 0.0,
                  target_ticks: float = 0.0) -> pd.DataFrame:
    """Trades of the wanted sides ``wanted`` (int, one per bar) over canonical ``bars``,
    one row per trade with the simulator's ``TRADE_COLUMNS`` (reasons from ``REASONS``)."""
    delay = fill_offset("delayed_mid", delay_bars)
    stamps = bars["ts"].array.asi8
    o, h, lo, c = (np.ascontiguousarray(bars[k].to_numpy(dtype=np.float64))
                   for k in ("open", "high", "low", "close"))
    flags = session_last_flags(stamps, instrument.session)
    tick = float(instrument.tick_size)
    slip_at = (costs.slippage_ticks + velocity_slip_ticks(
        c, tick, costs.velocity_slippage, costs.velocity_cap_ticks)) * tick
    (entry_bar, exit_bar, side, entry_px, exit_px, reason, mfe, mae) = follow_kernel(
        o, h, lo, c, flags, np.ascontiguousarray(wanted, dtype=np.int64), delay,
        stop_ticks * tick, target_ticks * tick, slip_at)
    points = ((exit_px - entry_px) * side - costs.spread_ticks * tick
              - costs.fee_bps * 1e-4 * (entry_px + exit_px))
    fees = np.full(len(side), 2.0 * costs.commission * costs.quantity)
    pnl = points * instrument.point_value * costs.quantity - fees
    times = pd.DatetimeIndex(stamps.view("datetime64[ns]"), tz="UTC")
    return pd.DataFrame({
        "entry_bar": entry_bar, "exit_bar": exit_bar,
        "entry_time": times[entry_bar], "exit_time": times[exit_bar],
        "side": side.astype(np.int8), "entry_price": entry_px, "exit_price": exit_px,
        "reason": pd.array(np.asarray(REASONS, dtype=object)[reason], dtype="str"),
        "bars_held": exit_bar - entry_bar, "mfe_points": mfe, "mae_points": mae,
        "pnl_points": points, "fees": fees, "pnl": pnl,
        "quantity": np.full(len(side), costs.quantity)}, columns=list(TRADE_COLUMNS))
