"""Simulation of a model over one grid point: predictions -> wanted sides -> trades -> stats.

Signals: the prediction minus the mean of the training-span predictions, divided by their
standard deviation (``prediction_centre``, ``prediction_scale``: the constant drift a model
learns from its training span is not a signal), is compared with the grid point's
threshold: long above it, short below its negative (flat between; no shorts with
``long_only``). Filters skip bars: with an outlier cutoff z > 0, a bar whose largest
|feature z-score| (training-span scaling, over the model's own features) exceeds z is
skipped; with a regime rule, a bar outside the rule's regimes is skipped. A skipped bar
neither opens nor closes anything: it keeps the wanted side of the bar before it.
Execution: ``evolution.execution`` (``delayed_mid`` fill). Each span (validation, test) is
simulated on its own bars, every contiguous piece separately. With several segments the
validation metrics (what grid points and generations are chosen on) come from the first
segment's validation span alone, which ends before every test block (``span_rows``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from stratforge.data.atomic import json_ready
from stratforge.evolution.config import EvolutionConfig, GridPoint
from stratforge.evolution.execution import follow_signal
from stratforge.evolution.regimes import Regimes, regime_mask
from stratforge.instruments import Instrument
from stratforge.sim.explain import describe_costs, describe_fill
from stratforge.sim.metrics import compute_metrics
from stratforge.sim.params import Costs

SPAN_VALIDATION = 1
SPAN_TEST = 2
SPANS = {"validation": SPAN_VALIDATION, "test": SPAN_TEST}
METRIC_KEYS = ("trades", "wins", "losses", "win_rate", "total_pnl", "profit_factor", "sqn",
               "sharpe", "max_drawdown", "expectancy", "strategy_return", "buy_hold_return",
               "exposure", "total_fees")


def trade_costs(config: EvolutionConfig, instrument: Instrument) -> Costs:
    """The cost model of a run: the instrument's (``Instrument.costs``) with the run's cost
    settings (``commission``, ``spread_ticks``, ``slippage_ticks``, ``fee_bps``) replacing
    its values where given."""
    return config.costs_for(instrument)


def execution_settings(config: EvolutionConfig, instrument: Instrument) -> dict[str, Any]:
    """The settings besides the grid point that change a simulation (its fingerprint): the
    fill, the exits and the resolved cost model (so an edited instrument cost model never
    reuses a cached simulation)."""
    return {"fill": "delayed_mid", "delay_bars": config.delay_bars,
            "long_only": config.long_only, "costs": trade_costs(config, instrument).to_dict(),
            "stop_ticks": config.stop_ticks, "target_ticks": config.target_ticks}


def wanted_sides(prediction_z: np.ndarray, threshold: float, *, long_only: bool = False,
                 skip: np.ndarray | None = None) -> np.ndarray:
    """+1 / -1 / 0 per bar from scaled predictions; skipped bars keep the previous bar's side
    (0 before the first kept bar)."""
    raw = np.where(prediction_z > threshold, 1, np.where(prediction_z < -threshold, -1, 0))
    if long_only:
        raw[raw < 0] = 0
    return hold_skipped(raw, skip)


def hold_skipped(sides: np.ndarray, skip: np.ndarray | None) -> np.ndarray:
    """``sides`` (int64) with every skipped bar keeping the previous kept bar's side (0 before
    the first kept bar)."""
    if skip is None or not skip.any():
        return sides.astype(np.int64)
    kept = pd.Series(np.where(skip, np.nan, sides.astype(np.float64)))
    return kept.ffill().fillna(0.0).to_numpy().astype(np.int64)


def weekly_consistency(entry_times: pd.Series, span_start: pd.Timestamp,
                       span_end: pd.Timestamp) -> float:
    """std / mean of the trade count per week (weeks starting Monday 00:00 UTC, every week the
    span touches counted, empty ones as 0); NaN without trades."""
    if len(entry_times) == 0:
        return math.nan
    first = span_start.tz_convert("UTC").normalize() - pd.Timedelta(days=span_start.day_of_week)
    weeks = int((span_end - first) // pd.Timedelta(days=7)) + 1
    at = ((pd.DatetimeIndex(entry_times) - first) // pd.Timedelta(days=7)).to_numpy()
    counts = np.bincount(at.astype(np.int64), minlength=weeks)[:weeks].astype(np.float64)
    return float(counts.std() / counts.mean()) if counts.mean() > 0 else math.nan


def _pieces(piece_id: np.ndarray, rows: np.ndarray) -> list[np.ndarray]:
    if len(rows) == 0:
        return []
    breaks = np.flatnonzero(np.diff(piece_id[rows]) != 0) + 1
    return np.split(rows, breaks)


def _frame(signals: dict[str, np.ndarray], rows: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({
        "ts": pd.DatetimeIndex(signals["ts"][rows].view("datetime64[ns]"), tz="UTC"),
        **{k: signals[k][rows] for k in ("open", "high", "low", "close", "volume")}})


def _span_result(signals: dict[str, np.ndarray], wanted: np.ndarray, rows: np.ndarray,
                 config: EvolutionConfig, instrument: Instrument) -> tuple[dict, pd.DataFrame]:
    costs = trade_costs(config, instrument)
    trades, frames = [], []
    for piece in _pieces(signals["piece"], rows):
        bars = _frame(signals, piece)
        frames.append(bars)
        part = follow_signal(bars, wanted[piece], instrument=instrument, costs=costs,
                             delay_bars=config.delay_bars, stop_ticks=config.stop_ticks,
                             target_ticks=config.target_ticks)
        trades.append(part)
    all_trades = pd.concat(trades, ignore_index=True) if trades else follow_signal(
        _frame(signals, rows[:0]), wanted[:0], instrument=instrument, costs=costs)
    all_bars = pd.concat(frames, ignore_index=True)
    metrics = compute_metrics(all_trades, instrument=instrument, bars=all_bars).to_dict()
    out = {k: metrics[k] for k in METRIC_KEYS}
    out["weekly_consistency"] = weekly_consistency(all_trades["entry_time"],
                                                   all_bars["ts"].iloc[0],
                                                   all_bars["ts"].iloc[-1])
    hold = sum((f["close"].iloc[-1] - f["close"].iloc[0]) for f in frames)
    out["buy_hold_pnl"] = (hold * instrument.point_value * costs.quantity
                           - len(frames) * 2 * costs.commission)
    out["beats_buy_and_hold"] = bool(out["total_pnl"] > out["buy_hold_pnl"])
    out["bars"] = len(all_bars)
    return json_ready(out), all_trades


def span_rows(signals: dict[str, np.ndarray], code: int) -> np.ndarray:
    """The rows a span is judged on. Test: every segment's test rows. Validation: the first
    segment's validation rows only, the one validation span that ends before every test block:
    the grid point and the generation are chosen on it, so no choice sees a row at or after
    any segment's test block (with one segment this is the whole validation span)."""
    rows = np.flatnonzero(signals["span"] == code)
    if code == SPAN_VALIDATION and len(rows):
        segment = signals["piece"][rows] // 4
        rows = rows[segment == segment.min()]
    return rows


def simulate_point(signals: dict[str, np.ndarray], prediction_scale: float, point: GridPoint,
                   config: EvolutionConfig, instrument: Instrument, *,
                   prediction_centre: float = 0.0, explain: bool = True) -> dict[str, Any]:
    """Metrics of one grid point on the validation and the test span, the signal counts, and
    (``explain``) the explained log of the test span."""
    scale = prediction_scale if prediction_scale > 0 else 1.0
    pred_z = (signals["prediction"] - prediction_centre) / scale
    raw = wanted_sides(pred_z, point.threshold, long_only=config.long_only)
    active = raw != 0
    outlier = np.zeros(len(raw), dtype=bool)
    if point.z_cutoff > 0:
        outlier = ~(signals["outlier"] <= point.z_cutoff)
    regimes = Regimes(vol=signals["regime_vol"], gmm=signals["regime_gmm"],
                      gmm_p=signals["regime_gmm_p"])
    keep = regime_mask(regimes, point.regime)
    outside = np.zeros(len(raw), dtype=bool) if keep is None else ~keep
    wanted = hold_skipped(raw, outlier | outside)
    result: dict[str, Any] = {"point": point.to_json()}
    for name, code in SPANS.items():
        rows = span_rows(signals, code)
        metrics, trades = _span_result(signals, wanted, rows, config, instrument)
        metrics["signal_bars"] = int(active[rows].sum())
        metrics["outlier_skipped"] = int((active & outlier)[rows].sum())
        metrics["regime_skipped"] = int((active & outside & ~outlier)[rows].sum())
        result[name] = metrics
        if explain and name == "test":
            result["explain"] = explain_lines(signals, rows, point, config, instrument,
                                              scale, metrics, trades, prediction_centre)
    return result


def _signal_rule(signals: dict[str, np.ndarray], rows: np.ndarray, centre: float,
                 scale: float) -> str:
    segments = len(np.unique(signals["piece"][rows] // 4)) if len(rows) else 0
    if segments > 1:
        return (f"signal = each of the {segments} segments' own model's prediction, "
                "standardised by the mean and std of that segment's training-span "
                "predictions")
    return (f"signal = (prediction - {centre:.6g}) / {scale:.6g} (mean and std of the "
            "training-span predictions)")


def explain_lines(signals: dict[str, np.ndarray], rows: np.ndarray, point: GridPoint,
                  config: EvolutionConfig, instrument: Instrument, scale: float,
                  metrics: dict[str, Any], trades: pd.DataFrame, centre: float = 0.0
                  ) -> list[list[Any]]:
    """The explained log of one span: [heading, [lines]] steps from bars to results."""
    first = pd.Timestamp(int(signals["ts"][rows[0]]), tz="UTC") if len(rows) else None
    last = pd.Timestamp(int(signals["ts"][rows[-1]]), tz="UTC") if len(rows) else None
    side_rule = ("long when the signal > {t:g}; flat otherwise (long only)"
                 if config.long_only else
                 "long when the signal > {t:g}, short when < -{t:g}, else flat")
    longs = int((trades["side"] > 0).sum()) if len(trades) else 0
    reasons = trades["reason"].value_counts().to_dict() if len(trades) else {}
    steps: list[list[Any]] = [
        ["Data", [f"{instrument.symbol} {config.timeframe} bars: {len(rows):,} from {first} "
                  f"to {last} (test span, never used to fit, scale, select or prune)"]],
        ["Signals", [_signal_rule(signals, rows, centre, scale),
                     side_rule.format(t=point.threshold),
                     f"bars with a long or short signal: {metrics['signal_bars']:,}"]],
        ["Outlier filter", [f"skip bars whose largest |feature z| > {point.z_cutoff:g}: "
                            f"skipped {metrics['outlier_skipped']:,} signal bars"
                            if point.z_cutoff > 0 else "off (z cutoff 0)"]],
        ["Regime filter", [f"keep bars in regime {point.regime}: skipped "
                           f"{metrics['regime_skipped']:,} signal bars; a skipped bar keeps "
                           "the side of the bar before it" if point.regime != "all"
                           else "off (all regimes)"]],
        ["Execution", [describe_fill("delayed_mid", config.delay_bars),
                       "the position follows the signal: it exits when the signal changes "
                       "(at the delayed fill), on the stop "
                       f"({config.stop_ticks:g} ticks, 0 = off) or target "
                       f"({config.target_ticks:g} ticks, 0 = off), at the session flat and "
                       "at the end of the span",
                       f"trades: {metrics['trades']:,} ({longs:,} long); exits by reason: "
                       + (", ".join(f"{k} {v}" for k, v in sorted(reasons.items())) or
                          "none")]],
        ["Costs and slippage", _cost_lines(trades, signals, rows, config, instrument)],
        ["Results", [f"SQN {_fmt(metrics['sqn'])}, profit factor "
                     f"{_fmt(metrics['profit_factor'])}, win rate {_fmt(metrics['win_rate'])}",
                     f"total PnL {_fmt(metrics['total_pnl'])} {instrument.currency}; buy and "
                     f"hold one contract {_fmt(metrics['buy_hold_pnl'])} "
                     f"{instrument.currency}",
                     f"weekly trade-count consistency (std/mean): "
                     f"{_fmt(metrics['weekly_consistency'])}"]],
    ]
    return steps


def _cost_lines(trades: pd.DataFrame, signals: dict[str, np.ndarray], rows: np.ndarray,
                config: EvolutionConfig, instrument: Instrument) -> list[str]:
    """The cost model at the median entry price (the span's median close without trades)
    and what the span's trades paid."""
    costs = trade_costs(config, instrument)
    if len(trades):
        price = float(np.median(trades["entry_price"]))
    elif len(rows):
        price = float(np.median(signals["close"][rows]))
    else:
        price = float(instrument.reference_price)
    lines = [*describe_costs(costs, instrument, price),
             f"(amounts at the median entry price {instrument.format_price(price)})"]
    if len(trades):
        paid = float(((trades["exit_price"] - trades["entry_price"]) * trades["side"]
                      * instrument.point_value * trades["quantity"] - trades["pnl"]).sum())
        lines.append(f"costs paid by the {len(trades):,} trades beyond the fill prices "
                     f"(spread, fee, commission): {paid:,.2f} {instrument.currency}; "
                     "slippage is in the fill prices")
    return lines


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:,.3f}" if isinstance(value, float) \
        else str(value)
