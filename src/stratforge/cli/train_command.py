"""``stratforge train``: the day-by-day trainer with a line per day and a closing summary."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from stratforge.cli.console import console, progress_bars
from stratforge.cli.cost_options import (
    Commission,
    FeeBps,
    SlippageTicks,
    SpreadTicks,
    cost_overrides,
)
from stratforge.cli.dashboard_open import open_dashboard
from stratforge.cli.recorded import given, recorded, tee


def _pct(value: Any) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{value:.0%}"


def _num(value: Any, spec: str = ".2f") -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else format(value, spec)


def _print_day(row: dict[str, Any], regret: dict[str, Any], currency: str = "") -> None:
    adjustment = regret.get("adjustment") or {}
    scale = adjustment.get("target_scale", 1.0)
    move = "widen" if scale > 1 else "tighten" if scale < 1 else "keep"
    console.print(
        f"[bold]day {row['day_index'] + 1} {row['day']}[/]: {row['trades']} trades "
        f"({row['fired']}/{row['candidates']} fired), win {_pct(row['win_rate'])}, PnL "
        f"{_num(row['pnl'], ',.2f')} {currency}, Sharpe {_num(row['sharpe'])}, out of sample "
        f"{_num(row['oos_pnl'], ',.2f')} {currency} | states {row['states_learned']} "
        f"({row['high_confidence']} confident) | bars held: wins "
        f"{_num(row['avg_win_bars'], '.1f')}, losses {_num(row['avg_loss_bars'], '.1f')} | "
        f"regret: efficiency {_pct(row['mean_efficiency'])}, early {_pct(row['share_early'])}"
        f", late {_pct(row['share_late'])} -> {move} | {row['seconds']:.2f} s"
        + (" | [bold red]IN SAMPLE: the templates were trained on this day[/]"
           if row.get("library_in_sample") else ""))
    for line in regret_lines(regret):
        console.print(line, highlight=False, markup=False)


def trade_line(trade: dict[str, Any], currency: str = "", decimals: int = 2) -> str:
    """One trade in one line: side, entry and exit (UTC time and price), exit reason, bars
    held, PnL with its currency, and the brain state (template and timeframe) that fired it."""
    def when(value: Any) -> str:
        text = str(value or "")
        return text[:16].replace("T", " ") if text else "?"

    def price(value: Any) -> str:
        return "-" if value is None or (isinstance(value, float) and math.isnan(value)) \
            else f"{float(value):,.{decimals}f}"

    side = "long" if int(trade.get("side", 1)) > 0 else "short"
    pnl = trade.get("pnl")
    where = f"state {trade['state']}" if trade.get("state") else ""
    return (f"  {side} {when(trade.get('entry_time'))} @ {price(trade.get('entry_price'))} -> "
            f"{when(trade.get('exit_time'))} @ {price(trade.get('exit_price'))} "
            f"{trade.get('reason', '')}, {_num(trade.get('bars_held'), '.0f')} bars, PnL "
            f"{_num(pnl, '+,.2f')} {currency}".rstrip() + (f" ({where})" if where else ""))


def regret_lines(regret: dict[str, Any]) -> list[str]:
    """The day's regret findings (what its exits left behind and the adjustment), one line
    each, as the trainer's regret report words them."""
    findings = [str(f) for f in regret.get("findings") or [] if str(f).strip()]
    reason = (regret.get("adjustment") or {}).get("reason")
    if reason and reason not in findings:
        findings.append(str(reason))
    return [f"  regret: {text}" for text in findings]


def _print_parameters(evolution: list[dict[str, Any]], rows: int = 5) -> None:
    """The chosen parameters on up to ``rows`` days spread evenly over the run."""
    if not evolution:
        return
    names = list(dict.fromkeys(k for row in evolution for k in row if k != "day"))
    picks = sorted({round(i * (len(evolution) - 1) / max(rows - 1, 1))
                    for i in range(min(rows, len(evolution)))})
    table = Table(title="Parameter evolution (chosen set of the day)")
    table.add_column("day")
    for name in names:
        short = name.removesuffix("_ticks").removesuffix("_bars").replace("_", " ")
        table.add_column(short, justify="right")
    for i in picks:
        row = evolution[i]
        table.add_row(str(row["day"]), *(_num(row.get(n), ".1f") for n in names))
    console.print(table)


def _print_states(log: dict[str, Any], rows: int = 10) -> None:
    """The confident states (posterior probability of a win >= the level), most confident
    first; the strongest states by posterior mean when none is confident yet."""
    level = float(log.get("confident_level") or 0.8)
    states = log.get("confident_states") or []
    title = (f"Confident states: P(win) >= {level:.0%}, most confident first "
             f"({len(states)} state(s))")
    if not states:
        console.print(f"no state reached P(win) >= {level:.0%} yet; the strongest so far:")
        states = log.get("strongest_states") or []
        title = "Strongest states (>= 10 outcomes)"
    table = Table(title=title)
    for column in ("state", "samples", "P(win)", "90% low", "avg PnL", "avg bars"):
        table.add_column(column, justify="left" if column == "state" else "right")
    for s in states[:rows]:
        table.add_row(s["state"], str(s["samples"]), _pct(s["posterior_mean"]),
                      _pct(s.get("lo")), _num(s["avg_pnl"]),
                      _num(s["avg_duration_bars"], ".1f"))
    console.print(table)


def _print_hours(log: dict[str, Any]) -> None:
    """Trades by hour of entry in the session's time zone."""
    hours = log.get("hour_of_day") or []
    if not hours:
        return
    cur = (log.get("cost_model") or {}).get("currency", "")
    table = Table(title=f"Time of day ({log.get('session_timezone', 'UTC')})")
    for column in ("hour", "trades", "win rate", f"avg PnL {cur}".strip(),
                   f"total PnL {cur}".strip()):
        table.add_column(column, justify="right")
    for h in hours:
        table.add_row(f"{int(h['hour']):02d}:00", str(h["trades"]), _pct(h["win_rate"]),
                      _num(h["avg_pnl"]), _num(h["total_pnl"]))
    console.print(table)


def cost_model_line(model: dict[str, Any]) -> str:
    """The run's cost model in one line: settings, one fill and one round trip in price
    units and in currency (from ``training_log.json``'s ``cost_model``)."""
    from stratforge.sim.explain import price_text

    if not model:
        return "cost model: not recorded"
    decimals, cur = int(model["price_decimals"]), model["currency"]
    at = price_text(model["price"], decimals)
    return (f"cost model: {model['description']}; per fill "
            f"{price_text(model['per_fill_price'], decimals)} in price = "
            f"{model['per_fill_currency']:,.2f} {cur}, per round trip "
            f"{price_text(model['round_trip_price'], decimals)} in price = "
            f"{model['round_trip_currency']:,.2f} {cur} (commissions included, at {at})")


def _print_summary(log: dict[str, Any]) -> None:
    summary = log["summary"]
    periods = summary.get("first_vs_last") or {}
    table = Table(title=f"Training {log['symbol']} {log['timeframe']}: {summary['days']} days, "
                        f"{summary['trades']} trades, templates from {log['templates']}")
    cur = (log.get("cost_model") or {}).get("currency", "")
    money = f" ({cur})" if cur else ""
    for column in ("period", "trades", "win rate", f"PnL{money}", f"out-of-sample PnL{money}",
                   "efficiency"):
        table.add_column(column, justify="left" if column == "period" else "right")
    for name in ("first", "last"):
        part = periods.get(name) or {}
        table.add_row(f"{name} days", _num(part.get("trades"), ","), _pct(part.get("win_rate")),
                      _num(part.get("pnl")), _num(part.get("oos_pnl")),
                      _pct(part.get("mean_efficiency")))
    console.print(table)
    _print_parameters(log.get("parameter_evolution") or [])
    _print_states(log)
    _print_hours(log)
    d = log.get("durations") or {}
    if d.get("trades"):
        console.print(f"trade duration: {_num(d.get('avg_bars'), '.1f')} bars on average "
                      f"(wins {_num(d.get('avg_win_bars'), '.1f')}, losses "
                      f"{_num(d.get('avg_loss_bars'), '.1f')}), "
                      f"{_num(d.get('avg_minutes'), ',.1f')} minutes", highlight=False)
    console.print(cost_model_line(log.get("cost_model") or {}), highlight=False)
    console.print(f"brain learned from: {summary.get('learning')}", highlight=False)
    console.print(f"days the templates were trained on: {summary.get('library_days')}",
                  highlight=False)
    verdict = (summary.get("out_of_sample") or {}).get("verdict")
    if verdict:
        console.print(f"out of sample: {verdict}")


def train_command(
    symbol: Annotated[str, typer.Option("--symbol", "-s", help="Instrument to train on.")
                      ] = "MNQ",
    data: Annotated[Path | None, typer.Option(help="Ingest this bars file for SYMBOL first.")
                    ] = None,
    max_days: Annotated[int | None, typer.Option(help="Trading days to train.")] = None,
    iterations: Annotated[int | None, typer.Option(help="Parameter sets per day [200].")
                          ] = None,
    timeframe: Annotated[str | None, typer.Option(
        help="Bars to trade [the store's finest default: 1m for 1s or 1m bars, 1h for "
             "hourly bars].")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of every random choice [7].")] = None,
    templates: Annotated[str | None, typer.Option(
        help="latest (newest research or discovery library) or warmup (discover on the "
             "first days).")] = None,
    warmup_days: Annotated[int | None, typer.Option(help="Days for warm-up discovery [10].")
                           ] = None,
    start: Annotated[str | None, typer.Option(
        help="First trade date to trade (YYYY-MM-DD); default: the first day after the "
             "template library's training data.")] = None,
    allow_library_days: Annotated[bool, typer.Option(
        "--allow-library-days",
        help="Trade days the template library was trained on (labelled in-sample, left out "
             "of the verdict).")] = False,
    learn_from: Annotated[str | None, typer.Option(
        help="What the brain learns from: champion (the trades of the parameters chosen "
             "before the day, out of sample) or best (the day's best iteration, in "
             "sample); default: champion.")] = None,
    commission: Commission = None,
    spread_ticks: SpreadTicks = None,
    slippage_ticks: SlippageTicks = None,
    fee_bps: FeeBps = None,
    resume: Annotated[bool, typer.Option(help="Continue after the last finished day.")
                      ] = False,
    fresh: Annotated[bool, typer.Option(help="Delete the previous training run first.")
                     ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Print every trade of "
                                          "each day, one line each.")] = False,
    state_level: Annotated[float, typer.Option(
        min=0.5, max=0.99, help="Posterior probability of a win a state needs to be listed "
                                "as confident.")] = 0.8,
    dashboard: Annotated[bool, typer.Option(
        "--dashboard", help="Open the run's live page in the browser (starts `stratforge "
                            "serve` for this home when none runs).")] = False,
) -> None:
    """Walk the trading days of SYMBOL in order, learning as it would have live.

    Every trade pays SYMBOL's cost model; --commission, --spread-ticks, --slippage-ticks and
    --fee-bps override parts of it for the run. Days the template library was trained on
    are not traded unless --allow-library-days; the brain learns from the out-of-sample
    trades unless --learn-from best."""
    # the first line comes before the trainer's modules (numba, pandas) are loaded
    console.print(f"stratforge train: {symbol.upper()}; loading the trainer ...",
                  highlight=False)
    from stratforge.data import build_atlas, ingest_files
    from stratforge.data.atomic import json_ready
    from stratforge.instruments import get_instrument
    from stratforge.trainer.config import make_train_config
    from stratforge.trainer.loop import train, training_folder, with_timeframe
    from stratforge.trainer.summary import finish_training

    config = make_train_config(symbol=symbol, max_days=max_days, iterations=iterations,
                               timeframe=timeframe, seed=seed, templates=templates,
                               warmup_days=warmup_days, start=start,
                               allow_library_days=allow_library_days or None,
                               learn_from=learn_from,
                               **cost_overrides(commission, spread_ticks, slippage_ticks,
                                                fee_bps))
    if data is not None:
        ingest_files([data], symbol=config.symbol)
        build_atlas(config.symbol)
    instrument = get_instrument(config.symbol)
    currency = instrument.currency

    def print_trades(trades: Any) -> None:
        for trade in trades.to_dict("records"):
            console.print(trade_line(trade, currency, instrument.price_decimals),
                          highlight=False, markup=False)

    parameters = given(symbol=config.symbol, max_days=max_days, iterations=iterations,
                       timeframe=timeframe, seed=seed, templates=templates,
                       warmup_days=warmup_days, start=start,
                       allow_library_days=allow_library_days or None, learn_from=learn_from,
                       **cost_overrides(commission, spread_ticks, slippage_ticks, fee_bps))
    with recorded("training_run", parameters,
                  metadata=given(source="cli", resume=resume, fresh=fresh),
                  resume_hint="continue with `stratforge train --resume` and the same "
                              "options") as job:
        def started(text: str) -> None:
            # the folder is known once the timeframe is (the store's finest by default)
            job.remember(folder=training_folder(with_timeframe(config, None)).name)
            console.print(text, highlight=False)

        if dashboard:
            open_dashboard(f"training/{job.job.operation_id}")
        with progress_bars() as progress:
            result = train(config, resume=resume, fresh=fresh,
                           progress=tee(progress, job.progress),
                           on_day=lambda row, regret: _print_day(row, regret, currency),
                           on_start=started, on_trades=print_trades if verbose else None)
        log, report = finish_training(result, config, state_level=state_level,
                                      tz=instrument.session.timezone)
        job.result = json_ready({"folder": str(result.folder), "report": str(report),
                                 **log["summary"]})
    _print_summary(log)
    console.print(f"training folder: {result.folder}")
    console.print(f"report: {report}")
