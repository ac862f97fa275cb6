"""The self-contained HTML report of a training run: ``training_report.html`` in its folder.

:func:`render_training_report` reads ``days.parquet`` (must exist), ``trades.parquet`` and
``training_log.json`` (both optional) and returns one page that opens offline: plotly.js is
embedded once, inline, every chart is a ``<div>`` with a fixed id and every text is escaped,
so the same folder always gives the same bytes. :func:`write_training_report` writes it
atomically. The strongest states need the brain, so they are shown only when the log holds
a ``strongest_states`` list.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from stratforge.data.atomic import atomic_write_bytes
from stratforge.errors import ConfigError, DataError
from stratforge.html_page import escape_cell, finite_or_none, standalone_page
from stratforge.instruments import get_instrument
from stratforge.sim.explain import price_text
from stratforge.trainer import analysis

__all__ = ["REPORT_NAME", "render_training_report", "write_training_report"]

REPORT_NAME = "training_report.html"
MAX_PARAMETER_CHARTS = 12
_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")
_FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"
_AXIS = {"gridcolor": "#e6e8ec", "zerolinecolor": "#c9ced6", "linecolor": "#c9ced6",
         "automargin": True}
_CONFIG = {"displaylogo": False, "responsive": True}
SHARPE_WHY = ("a day's per-trade Sharpe needs at least 2 trades with PnL that differ, and no "
              "day had them")
BREAKDOWN_TITLES = {"zone": "By field-engine zone", "z_band": "By |z| band at the signal",
                    "reason": "By exit reason", "timeframe": "By timeframe"}

# ---------------------------------------------------------------- formatting


_esc = escape_cell
_real = finite_or_none


def _formatter(shape: Callable[[float], str]) -> Callable[[Any], str]:
    return lambda x: "–" if (v := _real(x)) is None else shape(v)


_fmt = _formatter(lambda v: f"{v:,.2f}")
_int = _formatter(lambda v: f"{round(v):,}")
_pct = _formatter(lambda v: f"{100 * v:.1f}%")


def _text(x: Any) -> str:
    return "–" if x is None else str(x)


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


Column = tuple[str, str, Callable[[Any], str]]
"""A table column: heading, record key, cell formatter."""


def _table(columns: Sequence[Column], records: Iterable[Mapping[str, Any]]) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h, _, _ in columns)
    body = "".join("<tr>" + "".join(
        ("<td>" if fmt is _text else '<td class="num">') + f"{_esc(fmt(rec.get(key)))}</td>"
        for _, key, fmt in columns) + "</tr>" for rec in records)
    return (f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>")


def _priced(columns: Sequence[Column], cur: str) -> list[Column]:
    """``columns`` with the currency (``cur``, " (USD)") after every PnL heading."""
    return [(f"{h}{cur}" if "PnL" in h else h, key, fmt) for h, key, fmt in columns]


def currency_suffix(log: Mapping[str, Any]) -> str:
    """" (USD)": the run's currency from the log's cost model, else its symbol's instrument;
    "" when neither is known (a run without a log)."""
    model = log.get("cost_model")
    cur = model.get("currency") if isinstance(model, Mapping) else None
    if not cur and isinstance(log.get("symbol"), str):
        try:
            cur = get_instrument(log["symbol"]).currency
        except (KeyError, ValueError, ConfigError):
            cur = None
    return f" ({cur})" if cur else ""


def _facts(pairs: Iterable[tuple[str, Any]]) -> str:
    rows = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in pairs)
    return f'<table class="facts">{rows}</table>'


# ---------------------------------------------------------------- charts

DAY_MS = 86_400_000
MAX_DATE_TICKS = 8


def day_axis(days: Sequence[Any]) -> dict[str, Any]:
    """A date x axis for daily values: one tick every k whole days (at most
    ``MAX_DATE_TICKS`` ticks), labelled "17 Jan 2023", so labels never crowd or overlap and a
    short run does not get hourly ticks."""
    span = len(days)
    if span:
        stamps = pd.to_datetime(pd.Series([str(d) for d in days]), errors="coerce").dropna()
        if len(stamps):
            span = int((stamps.max() - stamps.min()).days) + 1
    step = max(1, math.ceil(span / MAX_DATE_TICKS))
    return {**_AXIS, "type": "date", "title": {"text": "day"}, "dtick": step * DAY_MS,
            "tickformat": "%d %b %Y", "tickangle": 0}


def _layout(title: str, y_title: str, height: int = 360, days: Sequence[Any] = (),
            **extra: Any) -> dict[str, Any]:
    # the legend sits under the plot in the container's coordinates: it pushes the bottom
    # margin instead of overlapping the title or the axis title
    return {"title": {"text": html.escape(title), "x": 0.01, "xanchor": "left"},
            "template": "none", "height": height, "margin": {"l": 60, "r": 20, "t": 44, "b": 44},
            "font": {"family": _FONT, "size": 12, "color": "#1d2330"},
            "paper_bgcolor": "white", "plot_bgcolor": "white", "colorway": list(_COLOURS),
            "hovermode": "x unified",
            "legend": {"orientation": "h", "x": 0, "xanchor": "left", "yref": "container",
                       "y": 0, "yanchor": "bottom"},
            "xaxis": day_axis(days),
            "yaxis": {**_AXIS, "title": {"text": html.escape(y_title)}}, **extra}


def _figure_html(fig: go.Figure, div_id: str) -> str:
    height = fig.layout.height or 360
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                       config=_CONFIG, default_width="100%", default_height=f"{height}px")


def _lines(days: pd.DataFrame, columns: Mapping[str, str], title: str, y_title: str,
           div_id: str, bars: Sequence[str] = (), why_empty: str = "", **layout: Any) -> str:
    """One trace per present column of ``days`` (``column -> legend name``) against the day;
    the columns in ``bars`` as bars, the others as lines. A chart with no finite value says
    so in a note, with ``why_empty`` (why the values are missing) when given."""
    present = {c: name for c, name in columns.items() if c in days.columns}
    if days.empty:
        return _empty_chart(title, "no day trained yet", div_id)
    if not present:
        return _empty_chart(title, f"the days hold no {' or '.join(columns)} column", div_id)
    if not any(_real(v) is not None for c in present for v in days[c]):
        return _empty_chart(title, why_empty or "every value is missing", div_id)
    x = days["day"].astype(str).tolist()
    fig = go.Figure()
    for column, label in present.items():
        y, name = [_real(v) for v in days[column]], html.escape(label)
        fig.add_trace(go.Bar(x=x, y=y, name=name) if column in bars
                      else go.Scatter(x=x, y=y, name=name, mode="lines+markers"))
    fig.update_layout(**_layout(title, y_title, days=x, **layout))
    return _figure_html(fig, div_id)


def _empty_chart(title: str, why: str, div_id: str) -> str:
    """The note that stands where a chart has nothing to draw, saying why."""
    return (f'<p class="note empty-chart" id="{_esc(div_id)}-empty">'
            f"{_esc(title)}: nothing to draw: {_esc(why)}.</p>")


def _cumulative(days: pd.DataFrame, cur: str) -> str:
    cum = pd.DataFrame({"day": days["day"]})
    for column in ("pnl", "oos_pnl"):
        if column in days.columns:
            cum[column] = pd.to_numeric(days[column], errors="coerce").fillna(0.0).cumsum()
    return _lines(cum, {"pnl": "in-day best", "oos_pnl": "out-of-sample"},
                  f"Cumulative PnL{cur}", f"cumulative PnL{cur}", "fig-cumulative")


def _parameters(days: pd.DataFrame) -> str:
    evolution = analysis.parameter_evolution(days)
    names = [c for c in evolution.columns if c != "day"
             and pd.to_numeric(evolution[c], errors="coerce").notna().any()]
    cells = []
    for i, name in enumerate(names[:MAX_PARAMETER_CHARTS], start=1):
        frame = evolution[["day"]].assign(value=pd.to_numeric(evolution[name], errors="coerce"))
        cells.append('<div class="cell">' + _lines(
            frame, {"value": name}, name, name, f"fig-param-{i}", height=280,
            showlegend=False) + "</div>")
    cells.append('<div class="cell">' + _lines(
        days, {"target_scale": "target scale", "trail_scale": "trail scale"},
        "Regret bias on the exits", "scale", "fig-exit-scales", height=280) + "</div>")
    head = _note(f"the day's best exit parameters ({len(names)} numeric; "
                 f"first {MAX_PARAMETER_CHARTS} drawn)") if names else _note(
        "no numeric exit parameters recorded")
    return head + '<div class="grid">' + "".join(cells) + "</div>"


# ---------------------------------------------------------------- tables

_PERIOD_ROWS: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    ("Days", "days", _int), ("From", "from", _text), ("To", "to", _text),
    ("Trades", "trades", _int), ("Win rate (pooled)", "win_rate", _pct),
    ("In-day PnL", "pnl", _fmt), ("Out-of-sample PnL", "oos_pnl", _fmt),
    ("Mean regret efficiency", "mean_efficiency", _fmt),
    ("Average daily Sharpe", "avg_sharpe", _fmt))


def _periods(days: pd.DataFrame, cur: str) -> str:
    cmp = analysis.compare_periods(days, 5)
    first, last = cmp["first"], cmp["last"]
    rows = "".join(f"<tr><th>{_esc(label)}</th><td class=\"num\">{_esc(fmt(first.get(k)))}"
                   f"</td><td class=\"num\">{_esc(fmt(last.get(k)))}</td></tr>"
                   for label, k, fmt in _priced(_PERIOD_ROWS, cur))
    n = _esc(cmp["n"])
    return (f'<div class="scroll"><table><thead><tr><th></th><th>First {n} days</th>'
            f"<th>Last {n} days</th></tr></thead><tbody>{rows}</tbody></table></div>")


def _verdict(days: pd.DataFrame, cur: str) -> str:
    oos = analysis.oos_distribution(days)
    lo, hi = oos["ci95"]
    css = "edge" if oos["edge_claimed"] else "noedge"
    return (f'<p class="verdict {css}">{_esc(oos["verdict"])}</p>' + _facts([
        ("Out-of-sample days", _int(oos["n_days"])), (f"Mean daily PnL{cur}", _fmt(oos["mean"])),
        (f"Median daily PnL{cur}", _fmt(oos["median"])),
        (f"Std of daily PnL{cur}", _fmt(oos["std"])),
        ("t statistic", _fmt(oos["t_stat"])), ("Share of positive days",
                                               _pct(oos["share_positive"])),
        ("95% interval of the mean", f"{_fmt(lo)} to {_fmt(hi)}"),
        ("Edge claimed", "yes" if oos["edge_claimed"] else "no")])
        + _note("each day is first traded with parameters chosen before it (the best of the "
                "last five days' sets on those days): the honest out-of-sample figure; the "
                "first day has none and is left out"))


_PROGRESSION: tuple[Column, ...] = (
    ("Day", "day", _text), ("States learned", "states_learned", _int),
    ("High confidence", "high_confidence", _int), ("Win rate", "win_rate", _pct),
    ("PnL", "pnl", _fmt), ("OOS PnL", "oos_pnl", _fmt),
    ("Efficiency", "mean_efficiency", _fmt))
_STATES: tuple[Column, ...] = (
    ("State", "state", _text), ("Samples", "samples", _int), ("Wins", "wins", _int),
    ("Posterior mean", "posterior_mean", _pct), ("90% low", "lo", _pct),
    ("90% high", "hi", _pct), ("Avg PnL", "avg_pnl", _fmt),
    ("Avg bars", "avg_duration_bars", _fmt), ("Trades", "trades", _int))
_BREAKDOWN: tuple[Column, ...] = (
    ("Group", "group", _text), ("Trades", "trades", _int), ("Win rate", "win_rate", _pct),
    ("Avg PnL", "avg_pnl", _fmt), ("Total PnL", "total_pnl", _fmt),
    ("Avg bars", "avg_bars", _fmt))


def _strongest(log: Mapping[str, Any], cur: str) -> str:
    states = log.get("strongest_states")
    if not isinstance(states, list):
        return ""
    body = (_table(_priced(_STATES, cur), [r for r in states if isinstance(r, Mapping)])
            if states else _note("no state has enough outcomes yet"))
    return _section("states", "Strongest states (Bayesian brain)", body)


_HOURS: tuple[Column, ...] = (
    ("Hour", "hour", _text), ("Trades", "trades", _int), ("Win rate", "win_rate", _pct),
    ("Avg PnL", "avg_pnl", _fmt), ("Total PnL", "total_pnl", _fmt))


def _confident(log: Mapping[str, Any], cur: str) -> str:
    states = log.get("confident_states")
    if not isinstance(states, list):
        return ""
    level = _real(log.get("confident_level"))
    share = f"{100 * level:.0f}%" if level is not None else "the level"
    body = (_table(_priced(_STATES, cur), [r for r in states if isinstance(r, Mapping)])
            if states else _note(f"no state reached a posterior probability of a win of {share}"))
    return _section("confident", f"Confident states: P(win) >= {share}", _note(
        "posterior mean of the win rate at or above the level, most confident first (by the "
        "90% interval's lower bound)") + body)


def _time_of_day(trades: pd.DataFrame, log: Mapping[str, Any], cur: str) -> str:
    zone = str(log.get("session_timezone") or "UTC")
    hours = analysis.hour_of_day(trades, zone)
    if hours.empty:
        return _note("no trades with entry times in this run")
    rows = [{**r, "hour": f"{int(r['hour']):02d}:00"} for r in hours.to_dict("records")]
    return _note(f"by the hour of entry in the session's time zone ({zone}); a win is a "
                 "trade with PnL > 0") + _table(_priced(_HOURS, cur), rows)


def _durations(trades: pd.DataFrame) -> str:
    d = analysis.trade_durations(trades)
    return _facts([("Trades", _int(d["trades"])), ("Average bars held", _fmt(d["avg_bars"])),
                   ("Average bars held, wins", _fmt(d["avg_win_bars"])),
                   ("Average bars held, losses", _fmt(d["avg_loss_bars"])),
                   ("Average duration (minutes)", _fmt(d["avg_minutes"]))])


def _breakdowns(trades: pd.DataFrame, cur: str) -> str:
    if trades.empty:
        return _note("no trades in this run")
    cells = [f'<div class="cell"><h3>{_esc(BREAKDOWN_TITLES[key])}</h3>'
             f"{_table(_priced(_BREAKDOWN, cur), frame.to_dict('records'))}</div>"
             for key, frame in analysis.breakdowns(trades).items()]
    return (_note("a win is a trade with PnL > 0") + '<div class="grid">' + "".join(cells)
            + "</div>")


# ---------------------------------------------------------------- page

def _optional(path: Path, reader: Callable[[Path], Any], kind: str,
              problems: list[str]) -> Any:
    """``reader(path)``, or None when the file is absent or unreadable (then noted)."""
    if not path.is_file():
        return None
    try:
        return reader(path)
    except (OSError, ValueError) as exc:  # a damaged file only costs its own sections
        problems.append(f"{path.name} is not readable {kind} ({exc})")
        return None


def _read(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any], list[str]]:
    problems: list[str] = []
    path = folder / "days.parquet"
    days = _optional(path, pd.read_parquet, "Parquet", problems)
    if days is None or "day" not in days.columns:
        why = ("days.parquet is missing" if not path.is_file() else problems.pop()
               if days is None else "days.parquet has no 'day' column")
        raise DataError(f"{folder} is not a training folder: {why}", source=str(path))
    if "day_index" in days.columns:
        days = days.sort_values("day_index", kind="stable").reset_index(drop=True)
    trades = _optional(folder / "trades.parquet", pd.read_parquet, "Parquet", problems)
    log = _optional(folder / "training_log.json",
                    lambda p: json.loads(p.read_text(encoding="utf-8")), "JSON", problems)
    return (days, pd.DataFrame() if trades is None else trades,
            log if isinstance(log, dict) else {}, problems)


def _header(days: pd.DataFrame, trades: pd.DataFrame, log: Mapping[str, Any]) -> list[tuple]:
    def total(column: str) -> float:
        return float(pd.to_numeric(days.get(column), errors="coerce").fillna(0).sum()) \
            if column in days.columns else math.nan

    trade_count, wins = total("trades"), total("wins")
    timeframe = log.get("timeframe") or (", ".join(sorted(set(trades["timeframe"].astype(str))))
                                         if "timeframe" in trades.columns else None)
    learned = days["states_learned"].iloc[-1] if len(days) and "states_learned" in days else None
    facts: dict[str, Any] = {"days": len(days), "trades": trade_count, "pnl": total("pnl"),
                             "oos_pnl": total("oos_pnl"), "states_learned": learned}
    summary = log.get("summary")
    if isinstance(summary, Mapping):
        facts.update({k: v for k, v in summary.items() if not isinstance(v, Mapping | list)})
    cur = (log.get("cost_model") or {}).get("currency") if isinstance(
        log.get("cost_model"), Mapping) else None
    money = f" ({cur})" if cur else ""
    labels = {"days": ("Days trained", _int), "trades": ("Trades", _int),
              "pnl": (f"In-day best PnL{money}", _fmt),
              "oos_pnl": (f"Out-of-sample PnL{money}", _fmt),
              "states_learned": ("States learned", _int),
              "learning": ("Brain learns from", _text),
              "library_days": ("Days the templates were trained on", _text)}
    span = (f"{days['day'].iloc[0]} → {days['day'].iloc[-1]}" if len(days) else None)
    pairs: list[tuple] = [("Symbol", log.get("symbol")), ("Timeframe", timeframe),
                          ("Span", span)]
    pairs += [(labels[k][0], labels[k][1](v)) if k in labels
              else (k, v if isinstance(v, str) else json.dumps(v)) for k, v in facts.items()]
    pairs.append(("Win rate (pooled)", _pct(wins / trade_count) if trade_count else None))
    pairs += _cost_rows(log.get("cost_model"))
    return pairs


def _cost_rows(model: Any) -> list[tuple[str, Any]]:
    """The run's cost model (``training_log.json``'s ``cost_model``) as fact rows: its
    settings, one fill and one round trip in price units and in currency."""
    if not isinstance(model, Mapping) or "round_trip_price" not in model:
        return []
    cur = model.get("currency") or ""
    decimals = int(model.get("price_decimals") or 2)

    def price(value: Any) -> str:
        return "–" if (v := _real(value)) is None else price_text(v, decimals)

    def money(value: Any) -> str:
        return "–" if (v := _real(value)) is None else f"{v:,.2f} {cur}".strip()

    at = price(model.get("price"))
    return [("Cost model", model.get("description")),
            (f"Cost per fill (at {at})", f"{price(model.get('per_fill_price'))} in price; "
                                         f"{money(model.get('per_fill_currency'))}"),
            (f"Cost per round trip (at {at})",
             f"{price(model.get('round_trip_price'))} in price; "
             f"{money(model.get('round_trip_currency'))}")]


def _section(key: str, title: str, body: str) -> str:
    return f'<section id="{key}"><h2>{_esc(title)}</h2>\n{body}\n</section>'


CSS = """
body { margin: 0; background: #f6f7f9; color: #1d2330;
       font: 14px/1.45 system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif; }
main { max-width: 1200px; margin: 0 auto; padding: 16px 24px 48px; }
h1 { font-size: 22px; margin: 8px 0 4px; } h2 { font-size: 18px; margin: 0 0 10px; }
h3 { font-size: 15px; } .scroll { overflow-x: auto; }
section { background: #fff; border: 1px solid #dde1e7; border-radius: 6px; padding: 14px 18px;
          margin: 16px 0; }
table { border-collapse: separate; border-spacing: 0; font-size: 13px; }
thead th { background: #f0f2f5; }
th, td { padding: 3px 8px; border-bottom: 1px solid #eceff3; text-align: left;
         white-space: nowrap; }
.scroll { max-width: 100%; }
.scroll th:first-child, .scroll td:first-child { position: sticky; left: 0; background: #fff;
  box-shadow: 1px 0 0 #dde1e7; }
.scroll thead th:first-child { background: #f0f2f5; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.facts th { width: 200px; color: #555; font-weight: 600; }
.note { color: #666; font-style: italic; } .problems { color: #a33; }
.verdict { font-size: 15px; font-weight: 600; }
.edge { color: #17803d; } .noedge { color: #b3261e; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(480px, 1fr)); gap: 12px; }
.grid > * { min-width: 0; }
"""


def render_training_report(folder: Path | str) -> str:
    """The HTML report of the training run in ``folder`` (reads only that folder).

    Raises a DataError when ``days.parquet`` is missing or unreadable.
    """
    root = Path(folder)
    days, trades, log, problems = _read(root)
    header = _facts(_header(days, trades, log))
    if problems:
        header += '<ul class="problems">' + "".join(f"<li>{_esc(p)}</li>"
                                                    for p in problems) + "</ul>"
    progression = analysis.learning_progression(days, 10)
    cur = currency_suffix(log)
    sections = [
        _section("overview", "Overview", header),
        _section("verdict", "Out-of-sample verdict", _verdict(days, cur)),
        _section("pnl", "Daily PnL", _lines(
            days, {"pnl": "in-day best PnL",
                   "oos_pnl": "out-of-sample (parameters chosen before the day)"},
            f"Daily PnL{cur}", f"PnL{cur}", "fig-daily-pnl", bars=("pnl",))
            + _cumulative(days, cur)),
        _section("quality", "Win rate and Sharpe", '<div class="grid"><div class="cell">'
                 + _lines(days, {"win_rate": "win rate"}, "Daily win rate", "win rate",
                          "fig-win-rate", showlegend=False)
                 + '</div><div class="cell">'
                 + _lines(days, {"sharpe": "Sharpe"}, "Daily per-trade Sharpe", "Sharpe",
                          "fig-sharpe", bars=("sharpe",), showlegend=False,
                          why_empty=SHARPE_WHY) + "</div></div>"),
        _section("regret", "Regret: exit efficiency and timing", _lines(
            days, {"mean_efficiency": "mean efficiency", "share_early": "share exited early",
                   "share_late": "share exited late"},
            "Regret efficiency and early/late exits by day", "share", "fig-regret")),
        _section("learning", "Learning progression", _lines(
            days, {"states_learned": "states learned", "high_confidence": "high confidence"},
            "States learned by day", "states", "fig-learning")
            + _table(_priced(_PROGRESSION, cur), progression.to_dict("records"))),
        _section("periods", "First vs last 5 days", _periods(days, cur)),
        _section("parameters", "Parameter evolution", _parameters(days)),
        _confident(log, cur),
        _strongest(log, cur),
        _section("time-of-day", "Time of day", _time_of_day(trades, log, cur)),
        _section("durations", "Trade durations", _durations(trades)),
        _section("breakdowns", "Breakdowns", _breakdowns(trades, cur)),
    ]
    title = f"Training run {log.get('symbol') or root.name}"
    return standalone_page(title, CSS, f"<header><h1>{_esc(title)}</h1></header>",
                           "\n".join(s for s in sections if s))


def write_training_report(folder: Path | str) -> Path:
    """Write ``training_report.html`` into ``folder`` atomically and return its path."""
    path = Path(folder) / REPORT_NAME
    atomic_write_bytes(path, render_training_report(folder).encode("utf-8"))
    return path
