"""The explained simulation: every step that turns signals into trades, in words.

``explain_simulation`` runs ``simulate`` and ``compute_metrics`` and returns the steps a
reader needs to trust the result: the data span, the signal source and its count, any regime
filter and what it blocked, the fill model, the instrument's cost model with per-fill and
round-trip amounts in price units and in currency (:func:`describe_costs`), and the results
block with what the trades paid (:func:`costs_paid`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from stratforge.instruments import Instrument
from stratforge.sim.backtest import simulate
from stratforge.sim.fills import velocity_slip_ticks
from stratforge.sim.metrics import Metrics, compute_metrics
from stratforge.sim.params import Costs, ExitParams


@dataclass(frozen=True)
class SignalSource:
    """Where the signals came from and what filtering did to them."""

    description: str                 # e.g. "template T12 matches" or "entries.csv"
    signals: int                     # signals before any filter
    filter_description: str | None = None   # e.g. "trend in {RANGE}"
    blocked: int = 0                 # signals the filter removed


@dataclass(frozen=True)
class ExplainedRun:
    """The explanation (heading, lines) steps, the trades and their metrics."""

    steps: list[tuple[str, list[str]]]
    trades: pd.DataFrame
    metrics: Metrics
    extra: dict[str, float] = field(default_factory=dict)


def describe_fill(fill: str, delay_bars: int = 1) -> str:
    """The entry fill model in words, e.g. 'orders fill at mean(open, close) of bar T+4'."""
    if fill == "close":
        return "orders fill at the close of the signal bar T (the signal is known at that close)"
    if fill == "next_open":
        return "orders fill at the open of bar T+1"
    return f"orders fill at mean(open, close) of bar T+{delay_bars}"


def _money(value: float, currency: str) -> str:
    return f"{value:,.2f} {currency}"


def price_text(value: float, decimals: int) -> str:
    """A price (or price distance) with ``decimals`` decimals (the tick size's), or up to
    two more when needed to show it exactly (half a spread may be half a tick)."""
    for extra in range(3):
        places = decimals + extra
        if abs(round(value, places) - value) <= 1e-9 * max(1.0, abs(value)) * 10.0 ** -decimals:
            break
    return f"{value:,.{places}f}"


def cost_model_facts(costs: Costs, instrument: Instrument, price: float) -> dict[str, Any]:
    """The cost model as numbers at ``price`` (JSON-ready): its settings, one market fill
    and one round trip in price units and in currency (``quantity`` contracts, commissions
    included), before velocity slippage (see ``stratforge.costs``)."""
    return {
        "settings": costs.to_dict(), "description": costs.describe(),
        "currency": instrument.currency, "price": float(price),
        "price_decimals": instrument.price_decimals,
        **costs.figures(float(instrument.tick_size), float(instrument.point_value), price),
    }


def describe_costs(costs: Costs, instrument: Instrument, price: float) -> list[str]:
    """The cost model in words at ``price`` (e.g. the median entry price): what one fill and
    one round trip cost in price units (the instrument's decimals) and in currency."""
    facts = cost_model_facts(costs, instrument, price)
    cur = instrument.currency

    def fmt(value: float) -> str:
        return price_text(value, instrument.price_decimals)

    per_point = instrument.point_value * costs.quantity
    commission_rt = 2.0 * costs.commission * costs.quantity
    lines = [
        f"cost model of {instrument.symbol}: {costs.describe()} (fixed for the run, never "
        "searched)",
        f"quantity {costs.quantity:g} contract(s); one point (price unit) = "
        f"{_money(per_point, cur)}; tick {fmt(instrument.tick_size)} = "
        f"{_money(instrument.tick_size * per_point, cur)}",
        f"per market fill at {fmt(price)}: {fmt(facts['per_fill_price'])} in price "
        f"(half the spread, the slippage, the fee) = "
        f"{_money(facts['per_fill_price'] * per_point, cur)}, plus commission "
        f"{_money(costs.commission * costs.quantity, cur)} = "
        f"{_money(facts['per_fill_currency'], cur)}",
        f"per round trip: {fmt(facts['round_trip_price'])} in price = "
        f"{_money(facts['round_trip_price'] * per_point, cur)}, plus commissions "
        f"{_money(commission_rt, cur)} = {_money(facts['round_trip_currency'], cur)}",
        "slippage moves the entry and every stop, trail, timeout, session and end exit "
        "against the trade; target exits fill at the limit price (no slippage)",
    ]
    if costs.velocity_slippage:
        lines.append("velocity slippage comes on top, per fill, from the last completed "
                     "bar's move")
    return lines


def costs_paid(trades: pd.DataFrame, bars: pd.DataFrame, costs: Costs,
               instrument: Instrument) -> dict[str, float]:
    """What ``trades`` paid, in currency: ``spread``, ``slippage`` (velocity slippage
    included, on the entry and every non-target exit), ``fee`` (basis points of both fills'
    notional), ``commission`` and their ``total``."""
    tick, per_point = float(instrument.tick_size), instrument.point_value * costs.quantity
    if not len(trades):
        return {"spread": 0.0, "slippage": 0.0, "fee": 0.0, "commission": 0.0, "total": 0.0}
    extra = velocity_slip_ticks(bars["close"].to_numpy(dtype=np.float64), tick,
                                costs.velocity_slippage, costs.velocity_cap_ticks)
    entry_bar = trades["entry_bar"].to_numpy(np.int64)
    exit_bar = trades["exit_bar"].to_numpy(np.int64)
    slipped_exit = (trades["reason"] != "target").to_numpy()
    ticks = (costs.slippage_ticks + extra[entry_bar]
             + np.where(slipped_exit, costs.slippage_ticks + extra[exit_bar], 0.0))
    notional = (trades["entry_price"] + trades["exit_price"]).to_numpy(np.float64)
    paid = {
        "spread": len(trades) * costs.spread_ticks * tick * per_point,
        "slippage": float(ticks.sum()) * tick * per_point,
        "fee": float(notional.sum()) * costs.fee_bps * 1e-4 * per_point,
        "commission": float(trades["fees"].sum()),
    }
    paid["total"] = sum(paid.values())
    return paid


def _params_line(params: ExitParams) -> str:
    active = {k: v for k, v in asdict(params).items() if v and not np.isnan(v)}
    if not active:
        return "no exit rule but the session flat and the end of the data"
    return ", ".join(f"{k}={v:g}" for k, v in active.items())


def _results(metrics: Metrics, paid: dict[str, float], instrument: Instrument
             ) -> list[str]:
    cur = metrics.currency
    m = metrics
    fmt = instrument.format_price
    return [
        f"round-trip trades: {m.trades}",
        f"win rate: {m.win_rate:.1%} ({m.wins} wins, {m.losses} losses, {m.scratches} flat)"
        if m.trades else "win rate: n/a (no trades)",
        f"average win: {_money(m.avg_win, cur)}; average loss: {_money(m.avg_loss, cur)}",
        f"expectancy: {_money(m.expectancy, cur)} per trade ({fmt(m.expectancy_points)} "
        "in price)",
        f"profit factor: {m.profit_factor:.2f}",
        f"SQN: {m.sqn:.2f} ({m.sqn_band})",
        f"costs paid: {_money(paid['total'], cur)} = spread {_money(paid['spread'], cur)} + "
        f"slippage {_money(paid['slippage'], cur)} + fee {_money(paid['fee'], cur)} + "
        f"commission {_money(paid['commission'], cur)}"
        + (f" ({_money(paid['total'] / m.trades, cur)} per trade)" if m.trades else ""),
        f"commissions (fees): {_money(m.total_fees, cur)} = {m.fees_pct_of_capital:.2f}% of "
        "capital",
        f"hit rate (direction right at exit, before costs): {m.hit_rate:.1%}"
        if m.trades else "hit rate: n/a",
        f"strategy return: {m.strategy_return:.2%} of {_money(m.capital, cur)}; buy and hold: "
        f"{m.buy_hold_return:.2%}; alpha: {m.alpha:.2%}",
    ]


def explain_simulation(bars: pd.DataFrame, entries: np.ndarray, sides: np.ndarray,
                       params: ExitParams, *, instrument: Instrument,
                       costs: Costs | None = None, source: SignalSource,
                       fill: str = "close", delay_bars: int = 1,
                       price_path: str = "ohlc", capital: float = 100_000.0,
                       timeframe: str = "") -> ExplainedRun:
    """Simulate and explain: see the module docstring. ``entries`` are after the filter;
    ``costs`` None charges the instrument's own cost model."""
    costs = instrument.costs if costs is None else costs
    trades = simulate(bars, entries, sides, params, instrument=instrument, costs=costs,
                      fill=fill, delay_bars=delay_bars, price_path=price_path)
    metrics = compute_metrics(trades, instrument=instrument, capital=capital, bars=bars)
    paid = costs_paid(trades, bars, costs, instrument)
    price = (float(np.median(trades["entry_price"])) if len(trades)
             else float(bars["close"].iloc[-1]))
    first, last = bars["ts"].iloc[0], bars["ts"].iloc[-1]
    longs = int((sides > 0).sum())
    steps: list[tuple[str, list[str]]] = [
        ("Data", [f"{instrument.symbol} {timeframe} bars: {len(bars):,} from {first} to {last}",
                  f"session {instrument.session.describe()}; tick "
                  f"{instrument.format_price(instrument.tick_size)}, point value "
                  f"{instrument.point_value:g} {instrument.currency}"]),
        ("Signals", [f"source: {source.description}: {source.signals:,} signals"]),
    ]
    if source.filter_description:
        steps.append(("Regime filter", [
            f"keep signals whose {source.filter_description}: blocked {source.blocked:,}, "
            f"kept {source.signals - source.blocked:,}"]))
    steps += [
        ("Entries", [f"{len(entries):,} signals to the simulator ({longs:,} long, "
                     f"{len(entries) - longs:,} short); one position at a time, a new entry "
                     "needs a signal after the exit bar; no entries at or after the session "
                     "flat time",
                     describe_fill(fill, delay_bars),
                     "exit rules checked on " + ("closes only" if price_path == "close" else
                                                 "open, high, low and close") +
                     f" from the bar after the fill: {_params_line(params)}"]),
        ("Costs and slippage", [
            *describe_costs(costs, instrument, price),
            f"(amounts at the median entry price {instrument.format_price(price)})"]),
        ("Results", _results(metrics, paid, instrument)),
    ]
    return ExplainedRun(steps, trades, metrics, {f"{k}_paid": v for k, v in paid.items()})
