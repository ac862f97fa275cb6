"""The plotly figures of the research report (:mod:`stratforge.research.report`).

Each builder takes artifacts already read from a run folder and returns a ``go.Figure``, or
``None`` when there is nothing to draw. Text that ends up in a figure (trace names, hover
text) is HTML-escaped here, because plotly renders a subset of HTML tags in text.
:func:`figure_html` turns a figure into a ``<div>`` with a fixed id and no plotly.js, so the
page embeds plotly.js once and the output is the same byte for byte on every render.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from stratforge.discovery.library import TemplateLibrary, side_label
from stratforge.features.vectors import FEATURE_NAMES
from stratforge.search.anova import stars

PALETTE: tuple[str, ...] = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#393b79", "#ad494a", "#637939", "#8c6d31", "#843c39", "#7b4173",
    "#3182bd", "#e6550d", "#31a354", "#756bb1", "#636363", "#6baed6", "#fd8d3c", "#74c476")
"""Line colours, one per strategy: 24 that stay apart on white (tab10 and the darker
tab20b/tab20c shades); past 24 the colours repeat with another dash (:func:`series_dash`)."""
DASHES: tuple[str, ...] = ("solid", "dot", "dashdot", "longdash")
DIVERGING = "RdBu"
"""Colour scale centred at 0: red for losses, blue for gains."""
NO_DATA_GREY = "#b0b0b0"
MAX_BINS = 6
"""Equal-width bins per axis of a stop x target heatmap."""
MAX_HEATMAPS = 4
"""Heatmaps drawn (one per template x timeframe combo)."""
_CONFIG = {"displaylogo": False, "responsive": True}
_FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"
_AXIS = {"gridcolor": "#e6e8ec", "zerolinecolor": "#c9ced6", "linecolor": "#c9ced6",
         "automargin": True}


def _layout(title: str, x_title: str, y_title: str, height: int = 420,
            **extra: Any) -> dict[str, Any]:
    """A light layout without a plotly template (a template adds ~10 kB to every chart)."""
    # the legend lies under the plot in the container's coordinates: it pushes the bottom
    # margin instead of overlapping the title, whatever the number of entries
    return {"title": {"text": html.escape(title), "x": 0.01, "xanchor": "left"},
            "template": "none", "height": height,
            "margin": {"l": 60, "r": 20, "t": 44, "b": 44},
            "font": {"family": _FONT, "size": 12, "color": "#1d2330"},
            "paper_bgcolor": "white", "plot_bgcolor": "white", "colorway": list(PALETTE),
            "legend": LEGEND,
            "hovermode": "closest", "xaxis": {**_AXIS, "title": {"text": x_title}},
            "yaxis": {**_AXIS, "title": {"text": y_title}}, **extra}


LEGEND: dict[str, Any] = {"orientation": "h", "x": 0, "xanchor": "left", "yref": "container",
                          "y": 0, "yanchor": "bottom"}


def figure_html(fig: go.Figure, div_id: str) -> str:
    """The figure as an HTML fragment with the fixed ``div_id``, without plotly.js."""
    height = fig.layout.height or 420
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                       config=_CONFIG, default_width="100%", default_height=f"{height}px")


def note(text: str) -> str:
    """A short italic note, used where a section has nothing to draw."""
    return f'<p class="note">{html.escape(text)}</p>'


def _figure_or_note(fig: go.Figure | None, div_id: str, text: str) -> str:
    return figure_html(fig, div_id) if fig is not None else note(text)


def _finite(x: Any) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


# ---------------------------------------------------------------- equity curves

def _strategy_order(curves: pd.DataFrame, preferred: Sequence[str]) -> list[str]:
    present = list(pd.unique(curves["strategy_id"].astype(str)))
    first = [s for s in dict.fromkeys(preferred) if s in present]
    return first + [s for s in present if s not in first]


def _equity_traces(sid: str, group: pd.DataFrame, colour: str, cur: str = "",
                   oos_dash: str = "dash") -> list[go.Scatter]:
    equity = group["pnl"].astype("float64").fillna(0.0).cumsum().to_numpy()
    times = pd.to_datetime(group["exit_time"], utc=True).dt.strftime("%Y-%m-%d %H:%M:%S")
    times = times.to_numpy()
    in_sample = (group["segment"].astype(str) == "in_sample").to_numpy()
    name = html.escape(sid)
    hover = f"%{{x|%Y-%m-%d %H:%M}}<br>equity %{{y:,.2f}}{html.escape(cur)}"
    traces = []
    is_idx = np.flatnonzero(in_sample)
    oos_idx = np.flatnonzero(~in_sample)
    if oos_idx.size and oos_idx[0] > 0:  # start the OOS line where the IS line ends
        oos_idx = np.concatenate(([oos_idx[0] - 1], oos_idx))
    for idx, dash, label in ((is_idx, "solid", "IS"), (oos_idx, oos_dash, "OOS")):
        if idx.size == 0:
            continue
        traces.append(go.Scatter(
            x=times[idx], y=equity[idx], mode="lines", name=f"{name} {label}",
            legendgroup=name, line={"color": colour, "dash": dash, "width": 2},
            hovertemplate=hover))
    return traces


def equity_figure(curves: pd.DataFrame | None, train_end: str | None,
                  preferred: Sequence[str] = (), currency: str = "") -> go.Figure | None:
    """Cumulative PnL per strategy: in-sample solid, out-of-sample dashed, a line at the split.

    Strategies follow ``preferred`` (the summary's best list), then the file's order.
    """
    needed = {"strategy_id", "segment", "exit_time", "pnl"}
    if curves is None or curves.empty or not needed <= set(curves.columns):
        return None
    fig = go.Figure()
    order = _strategy_order(curves, preferred)
    for i, sid in enumerate(order):
        group = curves[curves["strategy_id"].astype(str) == sid]
        for trace in _equity_traces(sid, group, PALETTE[i % len(PALETTE)], currency,
                                    "dash" if i < len(PALETTE) else "dot"):
            fig.add_trace(trace)
    split = pd.to_datetime(train_end, utc=True, errors="coerce") if train_end else pd.NaT
    if not pd.isna(split):
        x = split.strftime("%Y-%m-%d %H:%M:%S")
        fig.add_shape(type="line", x0=x, x1=x, xref="x", y0=0, y1=1, yref="paper",
                      line={"color": "#444", "width": 1, "dash": "dot"})
        fig.add_annotation(x=x, y=1, xref="x", yref="paper", text="train | test",
                           showarrow=False, yanchor="bottom", font={"size": 11})
    fig.update_layout(**_layout("Equity curves (solid: in-sample, dashed: out-of-sample)",
                                "exit time (UTC)", f"cumulative PnL{currency}",
                                height=460 + 22 * max(0, math.ceil(2 * len(order) / 4) - 1)))
    return fig


def equity_html(curves: pd.DataFrame | None, train_end: str | None,
                best: Sequence[Mapping[str, Any]], currency: str = "") -> str:
    """The equity-curve section body: the chart, or a note when there are no curves
    (``currency`` is the axis suffix, " (USD)")."""
    preferred = [str(b.get("strategy_id")) for b in best]
    return _figure_or_note(equity_figure(curves, train_end, preferred, currency), "fig-equity",
                           "no equity curves in this run")


# ---------------------------------------------------------------- ANOVA effects

def _effect_rows(anova: Mapping[str, Any]) -> tuple[list[Mapping[str, Any]], str]:
    multi = [r for r in anova.get("multi") or []
             if r.get("factor") != "Residual" and _finite(r.get("eta_squared"))]
    if multi:
        return multi, "multi-factor model (type II), eta squared"
    one_way = [r for r in anova.get("one_way") or [] if _finite(r.get("eta_squared"))]
    return one_way, "one-way ANOVA per factor, eta squared"


def anova_figure(anova: Mapping[str, Any] | None) -> go.Figure | None:
    """Eta squared per factor (multi-factor table, else one-way) with significance stars."""
    if not anova:
        return None
    rows, source = _effect_rows(anova)
    if not rows:
        return None
    rows = sorted(rows, key=lambda r: (-float(r["eta_squared"]), str(r.get("factor"))))
    p_values = [float(r["p_value"]) if _finite(r.get("p_value")) else None for r in rows]
    fig = go.Figure(go.Bar(
        x=[html.escape(str(r.get("factor"))) for r in rows],
        y=[float(r["eta_squared"]) for r in rows],
        text=[stars(p) for p in p_values], textposition="outside",
        customdata=[("–" if p is None else f"{p:.3g}") for p in p_values],
        hovertemplate="%{x}<br>eta squared %{y:.4f}<br>p %{customdata}<extra></extra>",
        marker_color="#4c72b0"))
    fig.update_layout(**_layout(f"Effect size per factor ({source})", "factor",
                                "eta squared", height=380))
    return fig


def anova_html(anova: Mapping[str, Any] | None) -> str:
    """The ANOVA section body: effect sizes with stars and the model note."""
    if anova is None:
        return note("no ANOVA in this run")
    parts = [_figure_or_note(anova_figure(anova), "fig-anova",
                             "the ANOVA found no testable factor"),
             note("significance: *** p<0.001, ** p<0.01, * p<0.05, . p<0.1")]
    if anova.get("multi_note"):
        parts.append(note(f"multi-factor model: {anova['multi_note']}"))
    return "\n".join(parts)


# ---------------------------------------------------------------- stop x target heatmaps

def _g(x: float) -> str:
    return f"{x:.4g}"


def equal_width_bins(values: np.ndarray, max_bins: int = MAX_BINS
                     ) -> tuple[np.ndarray, list[str]]:
    """Bin codes (0-based) and labels of up to ``max_bins`` equal-width bins over the range.

    The number of bins is at most the number of distinct values; a constant column is one bin.
    """
    values = np.asarray(values, dtype=np.float64)
    lo, hi = float(values.min()), float(values.max())
    n = min(max_bins, len(np.unique(values)))
    if n <= 1 or lo == hi:
        return np.zeros(len(values), dtype=np.int64), [_g(lo)]
    edges = np.linspace(lo, hi, n + 1)
    codes = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, n - 1)
    return codes.astype(np.int64), [f"{_g(edges[i])}–{_g(edges[i + 1])}" for i in range(n)]


HEATMAP_COLUMNS: tuple[str, ...] = ("stop_ticks", "target_ticks", "trades", "pnl_per_trade")


def heatmap_grid(rows: pd.DataFrame | None
                 ) -> tuple[list[str], list[str], np.ndarray, np.ndarray, int] | None:
    """Mean ``pnl_per_trade`` per (target bin, stop bin) over rows with trades > 0.

    Returns the stop labels, the target labels, the means ``z[target, stop]`` (NaN where a
    cell has no row), the rows per cell and the rows used; None when no row qualifies. Each
    axis has up to :data:`MAX_BINS` equal-width bins (:func:`equal_width_bins`).
    """
    if rows is None or rows.empty or not set(HEATMAP_COLUMNS) <= set(rows.columns):
        return None
    data = pd.DataFrame({c: pd.to_numeric(rows[c], errors="coerce") for c in HEATMAP_COLUMNS})
    data = data[(data["trades"] > 0) & np.isfinite(data).all(axis=1)]
    if data.empty:
        return None
    stop_codes, stop_labels = equal_width_bins(data["stop_ticks"].to_numpy())
    target_codes, target_labels = equal_width_bins(data["target_ticks"].to_numpy())
    z = np.full((len(target_labels), len(stop_labels)), np.nan)
    counts = np.zeros_like(z, dtype=np.int64)
    pnl = data["pnl_per_trade"].to_numpy()
    np.add.at(counts, (target_codes, stop_codes), 1)
    sums = np.zeros_like(z)
    np.add.at(sums, (target_codes, stop_codes), pnl)
    filled = counts > 0
    z[filled] = sums[filled] / counts[filled]
    return stop_labels, target_labels, z, counts, len(data)


def heatmap_figure(rows: pd.DataFrame, title: str, currency: str = "") -> go.Figure | None:
    """Mean ``pnl_per_trade`` per (stop bin, target bin) over rows with trades > 0."""
    grid = heatmap_grid(rows)
    if grid is None:
        return None
    stop_labels, target_labels, z, counts, _ = grid
    fig = go.Figure(go.Heatmap(
        x=stop_labels, y=target_labels, z=[[v if math.isfinite(v) else None for v in r]
                                           for r in z.tolist()],
        customdata=counts.tolist(), colorscale=DIVERGING, zmid=0,
        colorbar={"title": {"text": f"PnL/trade{html.escape(currency)}", "side": "right"},
                  "thickness": 12},
        hovertemplate=("stop %{x}<br>target %{y}<br>mean PnL/trade %{z:,.2f}"
                       "<br>rows %{customdata}<extra></extra>")))
    fig.update_layout(**_layout(title, "stop_ticks", "target_ticks", height=360))
    fig.update_xaxes(type="category")
    fig.update_yaxes(type="category")
    return fig


def _unique(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    return list(dict.fromkeys(pairs))[:MAX_HEATMAPS]


def _combo_of(best: Mapping[str, Any]) -> tuple[str, str]:
    """(template, timeframe) of a best strategy; from ``<template>_<timeframe>`` if needed."""
    template, timeframe = best.get("template_id"), best.get("timeframe")
    if template is None or timeframe is None:
        template, _, timeframe = str(best.get("strategy_id")).rpartition("_")
    return str(template), str(timeframe)


def heatmap_combos(rows: pd.DataFrame, best: Sequence[Mapping[str, Any]],
                   anova: Mapping[str, Any] | None) -> tuple[list[tuple[str, str]], str]:
    """Up to :data:`MAX_HEATMAPS` (template, timeframe) combos and where they came from.

    The best strategies of the summary, else the top ANOVA combos, else the combos with the
    highest mean PnL per trade in ``rows``.
    """
    picked = [_combo_of(b) for b in best]
    if picked:
        return _unique(picked), "the best strategies"
    picked = [(str(r.get("template")), str(r.get("timeframe")))
              for r in (anova or {}).get("top_combos") or []]
    if picked:
        return _unique(picked), "the top ANOVA combos"
    traded = rows[pd.to_numeric(rows["trades"], errors="coerce") > 0]
    means = (traded.groupby(["template_id", "timeframe"], sort=True)["pnl_per_trade"].mean()
             .sort_values(ascending=False, kind="stable"))
    return _unique((str(t), str(tf)) for t, tf in means.index), "the highest mean PnL per trade"


def heatmaps_html(rows: pd.DataFrame | None, best: Sequence[Mapping[str, Any]],
                  anova: Mapping[str, Any] | None, currency: str = "") -> str:
    """The heatmap section body: one stop x target heatmap per combo, in a grid."""
    if rows is None:
        return note("no sweep in this run")
    needed = ("template_id", "timeframe", "stop_ticks", "target_ticks", "trades",
              "pnl_per_trade")
    missing = [c for c in needed if c not in rows.columns]
    if missing:
        return note(f"the sweep summaries have no {', '.join(missing)} column(s)")
    combos, source = heatmap_combos(rows, best, anova)
    cells = []
    for i, (template, tf) in enumerate(combos, start=1):
        sub = rows[(rows["template_id"].astype(str) == template)
                   & (rows["timeframe"].astype(str) == tf)]
        fig = heatmap_figure(sub, f"{template} @ {tf} ({len(sub):,} rows)", currency)
        cells.append('<div class="cell">' + _figure_or_note(
            fig, f"fig-heatmap-{i}", f"{template} @ {tf}: no rows with trades") + "</div>")
    return (note(f"mean PnL per trade{currency} (sweep and refinement rows with trades > 0) for "
                 f"{source}; stop and target in up to {MAX_BINS} equal-width bins")
            + '<div class="stack">' + "".join(cells) + "</div>")


# ---------------------------------------------------------------- templates

def _marker_sizes(members: np.ndarray) -> np.ndarray:
    root = np.sqrt(np.maximum(members.astype(np.float64), 0.0))
    top = root.max() if root.size and root.max() > 0 else 1.0
    return 8.0 + 32.0 * root / top


CLIP_MIN_POINTS = 5
CLIP_RATIO = 3.0


def robust_top(values: Sequence[float]) -> float | None:
    """The top of an axis that one outlier would squash, or None: with at least 5 finite
    values, when the largest is more than 3 times the 90th percentile (the lower of the two
    values around it), 1.25 x that percentile (the dashboard's ``robustTop``)."""
    xs = np.asarray([v for v in values if _finite(v)], dtype=np.float64)
    if xs.size < CLIP_MIN_POINTS:
        return None
    q = float(np.quantile(xs, 0.9, method="lower"))
    if not q > 0 or xs.max() <= CLIP_RATIO * q:
        return None
    return 1.25 * q


def _log_axis(values: np.ndarray, top: float | None, title: str) -> dict[str, Any]:
    """A log axis (the template statistics span decades) when every value is positive, else
    a linear one; ending at ``top`` when the values were clipped."""
    if values.size and (values > 0).all():
        hi = top if top is not None else float(values.max())
        return {**_AXIS, "type": "log", "title": {"text": f"{title} (log scale)"},
                "range": [math.log10(float(values.min())) - 0.1, math.log10(hi) + 0.1]}
    axis = {**_AXIS, "title": {"text": title}}
    return {**axis, "range": [0, top * 1.05]} if top is not None else axis


def templates_figure(library: TemplateLibrary | None, best_pnl: Mapping[str, float],
                     currency: str = "") -> go.Figure | None:
    """Templates at (centroid ``abs_z``, centroid ``abs_momentum_strength``) on log axes.

    Marker size grows with the square root of the member count; the colour is the best
    in-sample PnL of the template in the validation table, grey (its own legend entry) when
    no strategy of the template reached validation. A y value that one outlier would squash
    (:func:`robust_top`) is drawn as an open triangle on the top edge, its value in the hover.
    """
    if library is None or len(library) == 0:
        return None
    ix, iy = FEATURE_NAMES.index("abs_z"), FEATURE_NAMES.index("abs_momentum_strength")
    frame = pd.DataFrame({
        "id": [t.template_id for t in library], "x": [t.centroid_raw[ix] for t in library],
        "y": [t.centroid_raw[iy] for t in library], "members": [t.members for t in library],
        "side": [side_label(t.direction) for t in library]})
    frame["pnl"] = [best_pnl.get(t, math.nan) for t in frame["id"]]
    frame["size"] = _marker_sizes(frame["members"].to_numpy())
    top = robust_top(frame["y"].tolist())
    frame["clipped"] = frame["y"] > top if top is not None else False
    frame["shown_y"] = np.where(frame["clipped"], top or 0.0, frame["y"])
    frame["hover"] = [
        f"{html.escape(r.id)}<br>{r.side}<br>members {r.members:,}<br>|z| {r.x:.4g}<br>"
        f"|momentum| {r.y:.4g}{' (above the axis, clipped)' if r.clipped else ''}<br>"
        f"best IS PnL {'– (not validated)' if not math.isfinite(r.pnl) else f'{r.pnl:,.2f}'}"
        f"{html.escape(currency) if math.isfinite(r.pnl) else ''}"
        for r in frame.itertuples(index=False)]
    fig = go.Figure()
    valued = np.isfinite(frame["pnl"]) & ~frame["clipped"]
    grey = ~np.isfinite(frame["pnl"]) & ~frame["clipped"]
    if grey.any():
        part = frame[grey]
        fig.add_trace(go.Scatter(
            x=part["x"], y=part["shown_y"], mode="markers",
            name="grey: no strategy of the template reached validation",
            hovertext=part["hover"], hoverinfo="text",
            marker={"size": part["size"], "color": NO_DATA_GREY, "opacity": 0.7,
                    "line": {"width": 0.5, "color": "#555"}}))
    if valued.any():
        part = frame[valued]
        fig.add_trace(go.Scatter(
            x=part["x"], y=part["shown_y"], mode="markers",
            name=f"colour: best in-sample PnL{html.escape(currency)} (red loss, blue gain)",
            hovertext=part["hover"], hoverinfo="text",
            marker={"size": part["size"], "color": part["pnl"], "colorscale": DIVERGING,
                    "cmid": 0, "opacity": 0.85, "line": {"width": 0.5, "color": "#333"},
                    "colorbar": {"title": {"text": f"best IS PnL{html.escape(currency)}",
                                           "side": "right"}, "thickness": 12}}))
    if frame["clipped"].any():
        part = frame[frame["clipped"]]
        fig.add_trace(go.Scatter(
            x=part["x"], y=part["shown_y"], mode="markers",
            name=f"open triangle: |momentum| above {top:.4g}, drawn on the top edge",
            hovertext=part["hover"], hoverinfo="text",
            marker={"size": part["size"], "symbol": "triangle-up-open", "color": "#d62728",
                    "line": {"width": 2}}))
    fig.update_layout(**_layout("Templates in z-momentum space (size ~ sqrt(members))",
                                "centroid |z|", "centroid |momentum strength|", height=520,
                                showlegend=True))
    fig.update_layout(xaxis=_log_axis(frame["x"].to_numpy(np.float64), None, "centroid |z|"),
                      yaxis=_log_axis(frame["y"].to_numpy(np.float64), top,
                                      "centroid |momentum strength|"))
    return fig


def best_is_pnl(validation: pd.DataFrame | None) -> dict[str, float]:
    """Each template's best in-sample PnL in the validation table (templates without one are
    left out)."""
    if validation is None or not {"template_id", "is_pnl"} <= set(validation.columns):
        return {}
    pnl = pd.to_numeric(validation["is_pnl"], errors="coerce")
    return pnl.groupby(validation["template_id"].astype(str)).max().dropna().to_dict()


def templates_html(library: TemplateLibrary | None, validation: pd.DataFrame | None,
                   currency: str = "") -> str:
    """The template section body, coloured by each template's best in-sample PnL."""
    if library is None:
        return note("no template library in this run")
    return _figure_or_note(templates_figure(library, best_is_pnl(validation), currency),
                           "fig-templates",
                           "the template library is empty")


# ---------------------------------------------------------------- refinement

def refine_figure(history: Mapping[str, Any] | None) -> go.Figure | None:
    """Best per-trade Sharpe by refinement round (``refine/history.json``)."""
    rounds = [r for r in (history or {}).get("rounds") or [] if isinstance(r, Mapping)]
    if not rounds:
        return None
    x = [r.get("round", i) for i, r in enumerate(rounds)]
    y = [float(r["best_sharpe"]) if _finite(r.get("best_sharpe")) else None for r in rounds]
    keys = [html.escape(str(r.get("best_key", "–"))) for r in rounds]
    fig = go.Figure(go.Scatter(
        x=x, y=y, mode="lines+markers", customdata=keys, line={"color": "#4c72b0"},
        hovertemplate="round %{x}<br>best Sharpe/trade %{y:.4f}<br>%{customdata}"
                      "<extra></extra>"))
    fig.update_layout(**_layout("Best per-trade Sharpe by refinement round", "round",
                                "best Sharpe per trade", height=360))
    return fig


def refine_html(history: Mapping[str, Any] | None) -> str:
    """The refinement section body: best Sharpe by round, or a note."""
    return _figure_or_note(refine_figure(history), "fig-refine", "no refinement in this run")
