"""A slow, plain-Python reference of the simulator contract (ARCHITECTURE.md, docs/simulator.md).

Written straight from the rules with loops over Python lists: no numpy, no numba, no code
shared with ``stratforge.sim``. Longs and shorts are written out separately. Session flat times
come from ``zoneinfo`` directly, and early closes from ``exchange_calendars`` itself, not from
``stratforge.sessions``. Property tests compare the numba kernels against this file trade for
trade.
"""

from __future__ import annotations

import math
import warnings
from datetime import UTC, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import exchange_calendars

OFF_IS_ZERO = ("stop_ticks", "target_ticks", "trail_tight_ticks", "trail_wide_ticks",
               "trail_widen_points", "trail_activation_ticks", "max_hold_bars",
               "spread_ticks", "slippage_ticks", "commission", "fee_bps", "velocity_slippage",
               "velocity_cap_ticks")


def _value(settings, name, default=0.0):
    value = settings.get(name, default)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return 0.0
    return float(value)


def _to_ns(moment):
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


@cache
def _exchange(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return exchange_calendars.get_calendar(name)


@cache
def _early_close_ns(session, day):
    """UTC ns of the early close of trade date ``day`` per the session's calendar, or None."""
    if session.calendar is None:
        return None
    exchange = _exchange(session.calendar)
    label = datetime(day.year, day.month, day.day)
    if not exchange.first_session <= label <= exchange.last_session:
        return None
    if not exchange.is_session(label) or label not in exchange.early_closes:
        return None
    return int(exchange.session_close(label).value)


def session_flags(ts_ns, session):
    """Per bar: True when the position must be flat at this bar's close (see the docs)."""
    n = len(ts_ns)
    if session.flat is None:
        return [False] * n  # no daily flat: only the end of the data ends a position
    if n >= 2 and all(ts_ns[j + 1] - ts_ns[j] >= 20 * 3_600 * 1_000_000_000
                      for j in range(n - 1)):
        return [False] * n  # daily or coarser bars: one bar spans the session
    zone = ZoneInfo(session.timezone)
    overnight = session.open >= session.close
    trade_date = []
    flat = []
    for stamp in ts_ns:
        moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=stamp // 1000)
        local = moment.astimezone(zone)
        day = local.date()
        if overnight and local.time() >= session.open:
            day = day + timedelta(days=1)  # an overnight session's trade date rolls at the open
        flat_day = day - timedelta(days=1) if (overnight and session.flat >= session.open) \
            else day
        flat_local = datetime.combine(flat_day, session.flat, tzinfo=zone)
        flat_ns = _to_ns(flat_local.astimezone(UTC))
        early = _early_close_ns(session, day)
        if early is not None:  # the flat keeps its lead on the close, counted in real time
            close_day = day if (overnight or session.close > session.open) else \
                day + timedelta(days=1)
            close_ns = _to_ns(datetime.combine(close_day, session.close, tzinfo=zone)
                              .astimezone(UTC))
            if early < close_ns:
                flat_ns = min(flat_ns, early - (close_ns - flat_ns))
        trade_date.append(day)
        flat.append(flat_ns)
    flags = []
    for j in range(n):
        flagged = ts_ns[j] >= flat[j]  # the bar starts at or after its flat time
        if j + 1 < n and (ts_ns[j + 1] >= flat[j] or trade_date[j + 1] != trade_date[j]):
            flagged = True  # the last bar seen before the flat time
        flags.append(flagged)
    return flags


def reference_simulate(bars, entries, sides, params, *, tick, point_value, session, costs,
                       fill="close", delay_bars=1, price_path="ohlc"):
    """The trades, as a list of dicts with the TRADE_COLUMNS fields (times as UTC ns)."""
    ts = [int(x) for x in bars["ts"].dt.as_unit("ns").array.asi8]
    opens = [float(x) for x in bars["open"]]
    highs = [float(x) for x in bars["high"]]
    lows = [float(x) for x in bars["low"]]
    closes = [float(x) for x in bars["close"]]
    n = len(closes)
    flags = session_flags(ts, session)

    stop_ticks = _value(params, "stop_ticks")
    target_ticks = _value(params, "target_ticks")
    tight = _value(params, "trail_tight_ticks")
    wide = _value(params, "trail_wide_ticks")
    widen = _value(params, "trail_widen_points")
    activation = _value(params, "trail_activation_ticks")
    max_hold = _value(params, "max_hold_bars")
    spread = _value(costs, "spread_ticks")
    fee_bps = _value(costs, "fee_bps")
    slippage = _value(costs, "slippage_ticks")
    velocity = _value(costs, "velocity_slippage")
    cap = _value(costs, "velocity_cap_ticks")
    commission = _value(costs, "commission")
    quantity = float(costs.get("quantity", 1.0))

    def slip_on(j):
        # a market fill on bar j: the slippage ticks plus velocity slippage from the move of
        # the last bar completed before bar j opened (bar j-1 against bar j-2)
        extra = 0.0
        if velocity > 0 and j >= 2:
            extra = velocity * abs(closes[j - 1] - closes[j - 2]) / tick
            if cap > 0:
                extra = min(extra, cap)
        return (slippage + extra) * tick

    def check_prices(j):
        if price_path == "close":
            return closes[j], closes[j], closes[j], closes[j]
        return opens[j], highs[j], lows[j], closes[j]

    def trail_distance(mfe):
        # tight while mfe < widen, else wide; a missing one leaves the other in force
        if tight > 0 and wide > 0:
            if widen > 0 and mfe >= widen:
                return wide
            return tight
        if tight > 0:
            return tight
        return wide

    def run_long(e, entry):
        fixed_stop = entry - stop_ticks * tick
        target = entry + target_ticks * tick
        best_high = None  # best high seen on bars before j, since the entry fill
        for j in range(e + 1, n):
            o, h, low, c = check_prices(j)
            # 1. effective stop
            stop = fixed_stop if stop_ticks > 0 else None
            why = "stop"
            if best_high is not None and (tight > 0 or wide > 0):
                mfe = best_high - entry
                if mfe > 0 and mfe >= activation * tick:
                    level = entry + mfe - trail_distance(mfe) * tick
                    if stop is None or level > stop:
                        stop = level
                        why = "trail"
            # 2. stop: gap at the open, else touched
            if stop is not None and o <= stop:
                return j, o - slip_on(j), why
            if stop is not None and low <= stop:
                return j, stop - slip_on(j), why
            # 3. target: gap at the open, else touched (a limit: no slippage)
            if target_ticks > 0 and o >= target:
                return j, o, "target"
            if target_ticks > 0 and h >= target:
                return j, target, "target"
            # 4. timeout
            if max_hold > 0 and j - e >= max_hold:
                return j, c - slip_on(j), "timeout"
            # 5. session flat or end of data
            if flags[j]:
                return j, c - slip_on(j), "session"
            if j == n - 1:
                return j, c - slip_on(j), "end"
            # 6. only then is mfe updated with this bar's high
            best_high = h if best_high is None else max(best_high, h)
        raise AssertionError("a position outlived the data")

    def run_short(e, entry):
        fixed_stop = entry + stop_ticks * tick
        target = entry - target_ticks * tick
        best_low = None
        for j in range(e + 1, n):
            o, h, low, c = check_prices(j)
            stop = fixed_stop if stop_ticks > 0 else None
            why = "stop"
            if best_low is not None and (tight > 0 or wide > 0):
                mfe = entry - best_low
                if mfe > 0 and mfe >= activation * tick:
                    level = entry - mfe + trail_distance(mfe) * tick
                    if stop is None or level < stop:
                        stop = level
                        why = "trail"
            if stop is not None and o >= stop:
                return j, o + slip_on(j), why
            if stop is not None and h >= stop:
                return j, stop + slip_on(j), why
            if target_ticks > 0 and o <= target:
                return j, o, "target"
            if target_ticks > 0 and low <= target:
                return j, target, "target"
            if max_hold > 0 and j - e >= max_hold:
                return j, c + slip_on(j), "timeout"
            if flags[j]:
                return j, c + slip_on(j), "session"
            if j == n - 1:
                return j, c + slip_on(j), "end"
            best_low = low if best_low is None else min(best_low, low)
        raise AssertionError("a position outlived the data")

    offset = {"close": 0, "next_open": 1, "delayed_mid": delay_bars}[fill]
    trades = []
    last_exit = -1
    for signal, direction in zip(entries, sides, strict=True):
        i = int(signal)
        side = int(direction)
        if i <= last_exit:
            continue  # a new entry needs a signal bar strictly after the exit bar
        e = i + offset
        if e >= n - 1:
            continue  # no bar left after the fill to check exits on
        if any(flags[k] for k in range(i, e + 1)):
            continue  # signal at/after the flat time, or the fill would cross it
        if fill == "close":
            raw = closes[e]
        elif fill == "next_open":
            raw = opens[e]
        else:
            raw = (opens[e] + closes[e]) / 2
        if side == 1:
            entry = raw + slip_on(e)
            x, exit_price, why = run_long(e, entry)
        else:
            entry = raw - slip_on(e)
            x, exit_price, why = run_short(e, entry)
        held = [check_prices(k) for k in range(e + 1, x + 1)]
        best = max(p[1] for p in held)
        worst = min(p[2] for p in held)
        if side == 1:
            mfe, mae = max(0.0, best - entry), max(0.0, entry - worst)
        else:
            mfe, mae = max(0.0, entry - worst), max(0.0, best - entry)
        # one spread per round trip, the notional fee on both fills
        pnl_points = ((exit_price - entry) * side - spread * tick
                      - fee_bps / 10_000 * (entry + exit_price))
        fees = commission * 2 * quantity
        trades.append({
            "entry_bar": e, "exit_bar": x, "entry_time": ts[e], "exit_time": ts[x],
            "side": side, "entry_price": entry, "exit_price": exit_price, "reason": why,
            "bars_held": x - e, "mfe_points": mfe, "mae_points": mae,
            "pnl_points": pnl_points, "fees": fees,
            "pnl": pnl_points * point_value * quantity - fees, "quantity": quantity,
        })
        last_exit = x
    return trades


def reference_summary(trades):
    """The sweep statistics of a list of trades, computed the plain way."""
    pnls = [t["pnl"] for t in trades]
    count = len(pnls)
    wins = sum(1 for p in pnls if p > 0)
    losses = sum(1 for p in pnls if p < 0)
    total = 0.0
    peak = 0.0
    max_dd = 0.0
    for p in pnls:
        total += p
        peak = max(peak, total)
        max_dd = max(max_dd, peak - total)
    profit = sum(p for p in pnls if p > 0)
    loss = -sum(p for p in pnls if p < 0)
    if count == 0 or (profit == 0 and loss == 0):
        factor = math.nan
    elif loss == 0:
        factor = math.inf
    else:
        factor = profit / loss
    sharpe = math.nan
    if count > 1:
        mean = total / count
        std = math.sqrt(sum((p - mean) ** 2 for p in pnls) / (count - 1))
        size = sum(abs(p) for p in pnls) / count
        if std > 1e-9 * size:  # else the trades are equal up to rounding: NaN
            sharpe = mean / std
    return {
        "trades": count, "wins": wins, "losses": losses, "total_pnl": total,
        "pnl_per_trade": total / count if count else math.nan,
        "win_rate": wins / count if count else math.nan,
        "profit_factor": factor, "sharpe_per_trade": sharpe, "max_drawdown": max_dd,
        "avg_bars_held": sum(t["bars_held"] for t in trades) / count if count else math.nan,
    }
