"""The explained simulation: every step that turns signals into trades, in words.

``explain_simulation`` runs ``simulate`` and ``compute_metrics`` and returns the steps a
reader needs to trust the result: the data span, the signal source and its count, any regime
filter and what it blocked, the fill model, the cost and slippage model with per-trade and
round-trip amounts, and the results block.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from stratforge.instruments import Instrument
from stratforge.sim.backtest import simulate
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


def describe_costs(costs: Costs, instrument: Instrument) -> list[str]:
    """The cost and slippage model with per-fill, per-trade and round-trip amounts."""
    per_point = instrument.point_value * costs.quantity
    cur = instrument.currency
    slip_points = costs.slippage_ticks * instrument.tick_size
    lines = [
        f"quantity {costs.quantity:g} contract(s); one point = {_money(per_point, cur)}",
        f"slippage {costs.slippage_ticks:g} tick(s) per fill = {slip_points:g} points = "
        f"{_money(slip_points * per_point, cur)} against the trade on the entry and on stop, "
        "trail, timeout, session and end exits; target exits fill at the limit price",
        f"cost {costs.cost_points:g} points per round trip = "
        f"{_money(costs.cost_points * per_point, cur)}",
        f"commission {_money(costs.commission, cur)} per contract per side = "
        f"{_money(2 * costs.commission * costs.quantity, cur)} per round trip",
    ]
    worst = (2 * slip_points + costs.cost_points) * per_point + 2 * costs.commission * \
        costs.quantity
    lines.append(f"round trip at most {_money(worst, cur)} (both fills slipped)")
    return lines


def _params_line(params: ExitParams) -> str:
    active = {k: v for k, v in asdict(params).items() if v and not np.isnan(v)}
    if not active:
        return "no exit rule but the session flat and the end of the data"
    return ", ".join(f"{k}={v:g}" for k, v in active.items())


def _results(metrics: Metrics, slippage_paid: float, costs_paid: float) -> list[str]:
    cur = metrics.currency
    m = metrics
    return [
        f"round-trip trades: {m.trades}",
        f"win rate: {m.win_rate:.1%} ({m.wins} wins, {m.losses} losses, {m.scratches} flat)"
        if m.trades else "win rate: n/a (no trades)",
        f"average win: {_money(m.avg_win, cur)}; average loss: {_money(m.avg_loss, cur)}",
        f"expectancy: {_money(m.expectancy, cur)} per trade ({m.expectancy_points:.2f} points)",
        f"profit factor: {m.profit_factor:.2f}",
        f"SQN: {m.sqn:.2f} ({m.sqn_band})",
        f"fees: {_money(m.total_fees, cur)} = {m.fees_pct_of_capital:.2f}% of capital; "
        f"slippage paid {_money(slippage_paid, cur)}; cost points paid "
        f"{_money(costs_paid, cur)}",
        f"hit rate (direction right at exit, before costs): {m.hit_rate:.1%}"
        if m.trades else "hit rate: n/a",
        f"strategy return: {m.strategy_return:.2%} of {_money(m.capital, cur)}; buy and hold: "
        f"{m.buy_hold_return:.2%}; alpha: {m.alpha:.2%}",
    ]


def explain_simulation(bars: pd.DataFrame, entries: np.ndarray, sides: np.ndarray,
                       params: ExitParams, *, instrument: Instrument, costs: Costs,
                       source: SignalSource, fill: str = "close", delay_bars: int = 1,
                       price_path: str = "ohlc", capital: float = 100_000.0,
                       timeframe: str = "") -> ExplainedRun:
    """Simulate and explain: see the module docstring. ``entries`` are after the filter."""
    trades = simulate(bars, entries, sides, params, instrument=instrument, costs=costs,
                      fill=fill, delay_bars=delay_bars, price_path=price_path)
    metrics = compute_metrics(trades, instrument=instrument, capital=capital, bars=bars)
    per_point = instrument.point_value * costs.quantity
    slip_fills = len(trades) + int((trades["reason"] != "target").sum()) if len(trades) else 0
    slippage_paid = slip_fills * costs.slippage_ticks * instrument.tick_size * per_point
    costs_paid = len(trades) * costs.cost_points * per_point
    first, last = bars["ts"].iloc[0], bars["ts"].iloc[-1]
    longs = int((sides > 0).sum())
    steps: list[tuple[str, list[str]]] = [
        ("Data", [f"{instrument.symbol} {timeframe} bars: {len(bars):,} from {first} to {last}",
                  f"session {instrument.session.describe()}; tick {instrument.tick_size:g}, "
                  f"point value {instrument.point_value:g} {instrument.currency}"]),
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
        ("Costs and slippage", describe_costs(costs, instrument)),
        ("Results", _results(metrics, slippage_paid, costs_paid)),
    ]
    return ExplainedRun(steps, trades, metrics,
                        {"slippage_paid": slippage_paid, "cost_points_paid": costs_paid})
