"""The self-contained HTML report of a research run: ``report.html`` in the run folder.

:func:`render_report` reads only the artifacts of one run folder (``summary.json`` is the one
that must exist; every other artifact may be missing, and its section then says so) and
returns one HTML page that opens offline: plotly.js is embedded once, inline, and each chart
is a ``<div>`` with a fixed id, so the same folder always gives the same bytes.
:func:`write_report` writes the page atomically. Sections, in order: run overview, market,
patterns per discovery level and the template tree (:mod:`research.report_tree`), best
strategies, equity curves, validation tiers, ANOVA effects, stop x target heatmaps, templates
in z-momentum space, refinement progress. Artifact contract: docs/research.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from stratforge.data.atomic import atomic_write_bytes
from stratforge.discovery.library import TemplateLibrary, side_label
from stratforge.errors import DataError
from stratforge.html_page import escape_cell, finite_or_none, standalone_page
from stratforge.research import report_charts as charts
from stratforge.research import report_tree as tree
from stratforge.research.outputs import null_headline

REPORT_NAME = "report.html"
TIER_NAMES: tuple[str, ...] = ("PRODUCTION", "CANDIDATE", "UNPROVEN", "TOXIC")
"""Tier names by tier number 1..4."""
TIER_TABLE_ROWS = 50
"""Rows of the validation tier table (best tiers first)."""
PHASE_ORDER: tuple[str, ...] = ("data", "discovery", "optimize", "matching", "sweep", "anova",
                                "refine", "validation")
SECTION_TITLES: dict[str, str] = {
    "overview": "Run overview", "market": "Market and costs", "discovery": "Discovery levels",
    "tree": "Template tree (fission)", "best": "Best strategies",
    "equity": "Equity curves",
    "tiers": "Validation tiers", "overfitting": "Overfitting and multiple testing",
    "null_twins": "Null twins of your data",
    "anova": "ANOVA factor effects",
    "heatmaps": "Stop x target heatmaps", "templates": "Templates in z-momentum space",
    "refine": "Refinement progress",
}
"""Section id -> heading, in page order."""


@dataclass
class RunArtifacts:
    """What :func:`load_artifacts` found in a run folder (``None``: the artifact is absent)."""

    folder: Path
    summary: dict[str, Any]
    validation: pd.DataFrame | None = None
    curves: pd.DataFrame | None = None
    anova: dict[str, Any] | None = None
    param_rows: pd.DataFrame | None = None
    library: TemplateLibrary | None = None
    history: dict[str, Any] | None = None
    playbook: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)


def _read_json(path: Path, problems: list[str]) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        problems.append(f"{path}: not readable JSON ({exc})")
        return None
    return payload if isinstance(payload, dict) else None


def _read_parquet(path: Path, problems: list[str]) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError) as exc:  # a damaged file only costs its own section
        problems.append(f"{path}: not readable Parquet ({exc})")
        return None


def _read_library(folder: Path, problems: list[str]) -> TemplateLibrary | None:
    if not (folder / "library.json").is_file():
        return None
    try:
        return TemplateLibrary.load(folder)
    except DataError as exc:
        problems.append(str(exc))
        return None


def load_artifacts(run_folder: Path | str) -> RunArtifacts:
    """Read the artifacts of ``run_folder``; a DataError when ``summary.json`` is unusable.

    Any other artifact that is missing is ``None``; one that cannot be read is ``None`` too,
    and ``problems`` says why (the report lists it in the overview).
    """
    folder = Path(run_folder)
    problems: list[str] = []
    path = folder / "summary.json"
    if not path.is_file():
        raise DataError(f"{folder} is not a research run folder: summary.json is missing",
                        source=str(path))
    summary = _read_json(path, problems)
    if summary is None:
        raise DataError(f"{path} is not a JSON object ({'; '.join(problems) or 'wrong type'})",
                        source=str(path))
    frames = [f for f in (_read_parquet(folder / "sweep" / "summaries.parquet", problems),
                          _read_parquet(folder / "refine" / "trials.parquet", problems))
              if f is not None and not f.empty]
    return RunArtifacts(
        folder=folder, summary=summary,
        validation=_read_parquet(folder / "validation.parquet", problems),
        curves=_read_parquet(folder / "curves.parquet", problems),
        anova=_read_json(folder / "anova.json", problems),
        param_rows=pd.concat(frames, ignore_index=True) if frames else None,
        library=_read_library(folder / "library", problems),
        history=_read_json(folder / "refine" / "history.json", problems),
        playbook=_read_json(folder / "playbook.json", problems), problems=problems)


# ---------------------------------------------------------------- formatting

_esc = escape_cell
_real = finite_or_none


def _int(x: Any) -> str:
    v = _real(x)
    return "–" if v is None else f"{round(v):,}"


def _num(x: Any, digits: int = 2) -> str:
    v = _real(x)
    return "–" if v is None else f"{v:,.{digits}f}"


def _pct(x: Any) -> str:
    v = _real(x)
    return "–" if v is None else f"{100 * v:.1f}%"


def _side(x: Any) -> str:
    v = _real(x)
    return "–" if v is None else side_label(v)


def _params(x: Any) -> str:
    """A parameter dict (or its JSON text) as ``stop_ticks=40, target_ticks=120``."""
    if isinstance(x, str):
        try:
            x = json.loads(x)
        except ValueError:
            return x
    if not isinstance(x, Mapping):
        return "–" if x is None else str(x)
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in x.items())


def _tier_cell(tier: Any, name: Any) -> str:
    t = _real(tier)
    known = t is not None and 1 <= t <= len(TIER_NAMES)
    if name is None and known:
        name = TIER_NAMES[int(t) - 1]
    css = f' class="tier tier-{int(t)}"' if known else ""
    return f"<td{css}>{_esc(name)}</td>"


Column = tuple[str, Callable[[Mapping[str, Any]], str], str]
"""A table column: heading, cell text from a record, CSS class of the cells ("num", "wrap")."""


def _table(columns: Sequence[Column], records: Iterable[Mapping[str, Any]],
           with_tier: bool = False) -> str:
    """A table in a horizontally scrolling box; its first column stays in view (CSS). With
    ``with_tier`` the tier is the second column, after the strategy."""
    heads = [f"<th>{_esc(h)}</th>" for h, _, _ in columns]
    if with_tier:
        heads.insert(min(1, len(heads)), "<th>Tier</th>")
    head = "".join(heads)
    body = []
    for rec in records:
        cells = [(f'<td class="{css}">' if css else "<td>") + f"{_esc(get(rec))}</td>"
                 for _, get, css in columns]
        if with_tier:
            cells.insert(min(1, len(cells)), _tier_cell(rec.get("tier"), rec.get("tier_name")))
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


def _facts(pairs: Iterable[tuple[str, Any]]) -> str:
    rows = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in pairs)
    return f'<table class="facts">{rows}</table>'


_note = charts.note


def _col(heading: str, key: str, fmt: Callable[[Any], str] = str, css: str = "num") -> Column:
    return heading, lambda rec: fmt(rec.get(key)), css


def _sub(key: str, inner: str, fmt: Callable[[Any], str]) -> Callable[[Mapping[str, Any]], str]:
    return lambda rec: fmt((rec.get(key) or {}).get(inner))


# ---------------------------------------------------------------- sections

def _phase_fact(key: str, value: Any) -> str:
    """One phase statistic as ``key value``; a time in nanoseconds since the epoch
    (``train_end_ns``) reads as its UTC date and time under the name without ``_ns``."""
    if key.endswith("_ns") and isinstance(value, int | float) and not isinstance(value, bool):
        stamp = pd.Timestamp(int(value), unit="ns", tz="UTC")
        return f"{key[:-3]} {stamp.strftime('%Y-%m-%d %H:%M')} UTC"
    return f"{key} {_detail(value)}"


def _detail(v: Any) -> str:
    """A phase statistic: ``4,831``, ``0.3125``, ``(15m 259, 1h 120)`` or the text."""
    if isinstance(v, Mapping):
        return "(" + ", ".join(f"{k} {_detail(x)}" for k, x in v.items()) + ")"
    if isinstance(v, bool) or not isinstance(v, int | float):
        return str(v)
    return f"{v:,}" if isinstance(v, int) else f"{v:.4g}"


def _phase_table(summary: Mapping[str, Any]) -> str:
    phases = summary.get("phases") or {}
    if not phases:
        return _note("no phase timings in this run")
    names = [p for p in PHASE_ORDER if p in phases] + sorted(set(phases) - set(PHASE_ORDER))
    info = {n: phases[n] if isinstance(phases[n], Mapping) else {"seconds": phases[n]}
            for n in names}
    records = [{"phase": n, "seconds": info[n].get("seconds"),
                "details": ", ".join(_phase_fact(k, v) for k, v in info[n].items()
                                     if k != "seconds")}
               for n in names]
    total = sum(_real(r["seconds"]) or 0.0 for r in records)
    records.append({"phase": "total", "seconds": total, "details": ""})
    return _table([_col("Phase", "phase", css=""), _col("Seconds", "seconds", _num),
                   _col("Details", "details", css="wrap")], records)


def _tier_counts(run: RunArtifacts) -> str:
    counts = dict(run.summary.get("tiers") or {})
    if not counts and run.validation is not None and "tier_name" in run.validation.columns:
        counts = run.validation["tier_name"].astype(str).value_counts().to_dict()
    if not counts:
        return _note("no tiers in this run")
    names = [t for t in TIER_NAMES if t in counts] + sorted(set(counts) - set(TIER_NAMES))
    records = [{"tier": TIER_NAMES.index(n) + 1 if n in TIER_NAMES else None, "tier_name": n,
                "count": counts[n]} for n in names]
    return _table([_col("Strategies", "count", _int)], records, with_tier=True)


def _overview(run: RunArtifacts) -> str:
    s = run.summary
    data = s.get("data") or {}
    bars = data.get("bars") or {}
    facts = [("Symbol", s.get("symbol")), ("Created", s.get("created")),
             ("Data span", f"{data.get('first') or '–'} → {data.get('last') or '–'}"),
             ("Train / test split", data.get("train_end")),
             ("Bars", ", ".join(f"{tf}: {_int(n)}" for tf, n in bars.items()) or None)]
    if run.playbook is not None:
        facts.append(("Playbook strategies", len(run.playbook.get("strategies") or [])))
    config = s.get("config") or {}
    parts = [_facts(facts), "<h3>Phase timings</h3>", _phase_table(s), "<h3>Tiers</h3>",
             _tier_counts(run)]
    if config:
        parts.append("<details><summary>Configuration</summary>" + _facts(
            (k, json.dumps(v, sort_keys=True)) for k, v in config.items()) + "</details>")
    if run.problems:
        parts.append('<ul class="problems">' + "".join(f"<li>{_esc(p)}</li>"
                                                       for p in run.problems) + "</ul>")
    return "\n".join(parts)


def _price(market: Mapping[str, Any], value: Any) -> str:
    v = _real(value)
    return "–" if v is None else f"{v:,.{int(market.get('price_decimals', 2))}f}"


def _market(run: RunArtifacts) -> str:
    """The market block: instrument, timeframes, the cost model per fill and per round trip
    (price units and currency), and per timeframe the yardstick and resolved distances."""
    market = run.summary.get("market") or {}
    if not market:
        return _note("this run has no market block (it was made before costs were stated)")
    cost = market.get("cost_model") or {}
    currency = market.get("currency") or ""
    facts = [("Symbol", market.get("symbol")), ("Currency", currency),
             ("Tick size / point value", f"{market.get('tick_size'):g} / "
                                         f"{market.get('point_value'):g}"),
             ("Base timeframe", market.get("base_timeframe")),
             ("Run timeframes", ", ".join(market.get("timeframes") or [])),
             ("Session", market.get("session")),
             ("Cost model", cost.get("description")),
             ("Per market fill", f"{_price(market, cost.get('per_fill_price'))} price units"),
             ("Per round trip", f"{_price(market, cost.get('round_trip_price'))} price units = "
                                f"{_num(cost.get('round_trip_currency'))} {currency} at "
                                f"{_price(market, cost.get('reference_price'))}")]
    records = []
    for tf, block in (market.get("per_timeframe") or {}).items():
        space = block.get("resolved_space") or {}

        def span(name: str, space: Mapping[str, Any] = space) -> str:
            p = space.get(name)
            if not p:
                return "–"
            if "low_bars" in p:
                return f"{_int(p['low_bars'])}–{_int(p['high_bars'])} bars"
            return f"{_price(market, p['low_price'])}–{_price(market, p['high_price'])}"

        records.append({"tf": tf, "yardstick": _price(market, block.get("yardstick_price")),
                        "bars": block.get("in_sample_bars"), "stop": span("stop_ticks"),
                        "target": span("target_ticks"), "trail": span("trail_tight_ticks"),
                        "wide": span("trail_wide_ticks"), "widen": span("trail_widen_points"),
                        "hold": span("max_hold_bars")})
    table = _table([_col("Timeframe", "tf", css=""),
                    _col("Yardstick (in-sample median true range)", "yardstick"),
                    _col("In-sample bars", "bars", _int), _col("Stop", "stop"),
                    _col("Target", "target"), _col("Tight trail", "trail"),
                    _col("Wide trail", "wide"), _col("Widen at MFE", "widen"),
                    _col("Max hold", "hold")], records)
    return (_facts(facts) + "<h3>Search space per timeframe (price units)</h3>" + table
            + _note("Costs are fixed for the run by the instrument's cost model and the "
                    "run's settings; they are never searched. Distances are multiples of "
                    "each timeframe's yardstick, measured on in-sample bars only."))


def _currency(run: RunArtifacts) -> str:
    code = (run.summary.get("market") or {}).get("currency")
    return f" ({code})" if code else ""


def _best_records(run: RunArtifacts) -> list[Mapping[str, Any]]:
    return [b for b in run.summary.get("best") or [] if isinstance(b, Mapping)]


def _best(run: RunArtifacts) -> str:
    best = _best_records(run)
    if not best:
        return _note("no best strategies in this run")
    columns: list[Column] = [_col("Strategy", "strategy_id", css=""),
                             _col("Side", "direction", _side, css=""),
                             _col("Parameters", "params", _params, css="wrap")]
    for seg, label in (("in_sample", "IS"), ("out_of_sample", "OOS")):
        columns += [(f"{label} trades", _sub(seg, "trades", _int), "num"),
                    (f"{label} win", _sub(seg, "win_rate", _pct), "num"),
                    (f"{label} PnL{_currency(run)}", _sub(seg, "pnl", _num), "num"),
                    (f"{label} Sharpe", _sub(seg, "sharpe", _num), "num")]
    columns += [_col("DSR", "dsr", _num), _col("PBO", "pbo", _num),
                ("WF eff.", _sub("walk_forward", "efficiency", _num), "num")]
    return (_note("best tiers first, ranked inside a tier by the in-sample per-trade Sharpe "
                  "(the criterion that chose the parameters); out-of-sample figures beside it "
                  "only accept or reject") + _table(columns, best, with_tier=True))


TIER_COLUMNS: tuple[Column, ...] = (
    _col("Strategy", "strategy_id", css=""), _col("Side", "direction", _side, css=""),
    _col("Trials", "n_trials", _int), _col("IS trades", "is_trades", _int),
    _col("IS win", "is_win_rate", _pct), _col("IS PnL", "is_pnl", _num),
    _col("IS Sharpe", "is_sharpe", _num), _col("IS Sharpe/trade", "is_sharpe_per_trade", _num),
    _col("OOS trades", "oos_trades", _int),
    _col("OOS win", "oos_win_rate", _pct), _col("OOS PnL", "oos_pnl", _num),
    _col("OOS Sharpe", "oos_sharpe", _num), _col("OOS p", "oos_p_value", _num),
    _col("DSR", "dsr", _num), _col("PBO", "pbo", _num),
    ("WF folds +", lambda r: f"{_int(r.get('wf_positive_folds'))}/{_int(r.get('wf_folds'))}",
     "num"),
    _col("WF OOS PnL", "wf_oos_pnl", _num), _col("WF eff.", "wf_efficiency", _num),
    _col("Parameters", "params", _params, css="wrap"),
    _col("Reasons", "reasons", css="wrap"),
)


def tier_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The validation table, best tiers first, then by the in-sample per-trade Sharpe (the
    pre-registered criterion, highest first): nothing out of sample ranks a strategy."""
    keys = [c for c in ("tier", "is_sharpe_per_trade", "strategy_id") if c in frame.columns]
    return frame.sort_values(keys, ascending=[c != "is_sharpe_per_trade" for c in keys],
                             kind="stable", na_position="last")


def _tiers(run: RunArtifacts) -> str:
    frame = run.validation
    if frame is None or frame.empty:
        return _note("no validation in this run")
    shown = tier_table(frame).head(TIER_TABLE_ROWS).to_dict(orient="records")
    note = _note(f"showing the first {len(shown)} of {len(frame)} strategies, best tiers first, "
                 "then by in-sample per-trade Sharpe")
    cur = _currency(run)
    columns = [(f"{h}{cur}" if "PnL" in h else h, get, css) for h, get, css in TIER_COLUMNS]
    return note + _table(columns, shown, with_tier=True)


def _overfitting(run: RunArtifacts) -> str:
    block = run.summary.get("overfitting")
    if not block:
        return _note("no validation in this run")
    trials, dsr, test, pbo = block["trials"], block["dsr"], block["oos_test"], block["run_pbo"]
    rates = block.get("measured_rates") or {}
    pbo_text = (f"{_num(pbo['value'])} over {_int(pbo['configs'])} parameter sets, "
                f"{_int(pbo['splits'])} CSCV blocks of in-sample days"
                if pbo.get("value") is not None else f"not computed: {pbo.get('note')}")
    facts = _facts([
        ("Trials", f"{_int(trials['raw'])} parameter sets simulated"),
        ("Eligible", f"{_int(trials['eligible'])} with at least {trials['min_is_trades']} "
                     "in-sample trades"),
        ("Effective", f"{_num(trials['effective'], 1)} independent trials"),
        ("DSR benchmark", f"t = {_num(dsr['threshold_t'], 2)} (per-trade Sharpe x "
                          "sqrt(trades) that luck gives the best of the effective trials)"),
        ("PRODUCTION needs", f"DSR {_num(dsr['min_dsr'])} on at least "
                             f"{_int(dsr['min_trades'])} out-of-sample trades"),
        ("Out-of-sample test", f"{_int(test['accepted'])} of {_int(test['candidates_tested'])} "
                               f"candidates significant (Benjamini-Hochberg, FDR {test['fdr']})"),
        ("Run PBO", pbo_text),
        ("Trial spread", f"observed variance of the eligible trials' t: "
                         f"{_num(block.get('observed_t_variance'), 2)} (about 1 without skill)"),
    ])
    method = _note(f"Effective trials: {trials['method']}. The DSR uses the no-skill variance of "
                   "t (1): the observed spread grows with every real edge the search finds.")
    if rates.get("null_runs"):
        measured = (f"on {rates['null_runs']} null markets any PRODUCTION in "
                    f"{_pct(rates['null_any_production'])} and any CANDIDATE in "
                    f"{_pct(rates['null_any_candidate'])} of runs; on {rates['planted_runs']} "
                    f"planted markets the edge reached PRODUCTION in "
                    f"{_pct(rates['planted_found'])} ({rates['command']})")
    else:
        measured = rates.get("note", "not measured")
    return facts + method + _note("measured false-discovery rates of the default pipeline: "
                                  f"{measured}")


def _null_twins(run: RunArtifacts) -> str:
    """The ``null_twins`` block of summary.json: the headline, twins per tier against the real
    run, the best twin against the real run, and the real strategies that beat the twins."""
    block = run.summary.get("null_twins")
    if not block:
        run_id = run.summary.get("run_id") or run.folder.name
        return _note(f"not audited: `stratforge audit null {run_id} --twins 10` (or `stratforge "
                     "run --null-twins 10`) runs this configuration on null twins of this data")
    n = block["twins"]
    tiers = block.get("tiers") or {}
    head = ("<p><strong>" + _esc(null_headline(block)) + "</strong>; " +
            _esc(f"{block['beats_the_twins']} real strateg"
                 f"{'y beats' if block['beats_the_twins'] == 1 else 'ies beat'} the twins") +
            "</p>")
    names = [t for t in TIER_NAMES if t in tiers] + sorted(set(tiers) - set(TIER_NAMES))
    records = [{"tier_name": name, "real": tiers[name]["real"],
                "with_any": f"{tiers[name]['twins_with_any']} of {n}",
                "strategies": tiers[name]["strategies"],
                "per_twin": ", ".join(str(c) for c in tiers[name]["per_twin"])}
               for name in names]
    table = _table([_col("Tier", "tier_name", css=""), _col("Real run", "real", _int),
                    _col("Twins with any", "with_any"),
                    _col("Strategies on twins", "strategies", _int),
                    _col("Per twin", "per_twin", css="wrap")], records)
    real, best = block["real"], block["best_twin"]
    facts = _facts([
        ("Best DSR", f"real run {_num(real['best_dsr'])}, best twin {_num(best['dsr'])}"),
        ("Best OOS Sharpe", f"real run {_num(real['best_oos_sharpe'])}, best twin "
                            f"{_num(best['oos_sharpe'])}"),
        ("Beats the twins", f"DSR above {_num(block['dsr_threshold'])} "
                            f"({block['dsr_threshold_rule']})"),
        ("Twins", f"{n} {block['method']} twins of {_int(block['bars'])} "
                  f"{block['base_timeframe']} bars, seed {block['seed']}"),
    ])
    beating = [s for s in block.get("strategies") or [] if s.get("beats_the_twins")]
    if beating:
        winners = _table([_col("Strategy", "strategy_id", css=""),
                          _col("Tier", "tier_name", css=""),
                          _col("Timeframe", "timeframe", css=""), _col("DSR", "dsr", _num)],
                         beating)
    else:
        winners = _note("no real strategy beats the twins")
    return (head + table + facts + "<h3>Real strategies that beat the twins</h3>" + winners +
            _note("a twin keeps the timestamps, volume and the size of every move of this "
                  "data and gives each move a random sign: what the same search finds on "
                  "it is what it finds in noise that looks like this data (docs/research.md, "
                  "Audit your results)"))


SECTION_BUILDERS: dict[str, Callable[[RunArtifacts], str]] = {
    "overview": _overview,
    "market": _market,
    "discovery": lambda run: tree.levels_html(run.summary),
    "tree": lambda run: tree.tree_html(run.folder, run.library),
    "best": _best,
    "equity": lambda run: charts.equity_html(
        run.curves, (run.summary.get("data") or {}).get("train_end"), _best_records(run),
        _currency(run)),
    "tiers": _tiers,
    "overfitting": _overfitting,
    "null_twins": _null_twins,
    "anova": lambda run: charts.anova_html(run.anova),
    "heatmaps": lambda run: charts.heatmaps_html(run.param_rows, _best_records(run), run.anova,
                                                 _currency(run)),
    "templates": lambda run: charts.templates_html(run.library, run.validation, _currency(run)),
    "refine": lambda run: charts.refine_html(run.history),
}
"""Section id -> the function that renders its body, in page order."""

# ---------------------------------------------------------------- page

CSS = """
body { margin: 0; background: #f6f7f9; color: #1d2330;
       font: 14px/1.45 system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif; }
main { max-width: 1200px; margin: 0 auto; padding: 16px 24px 48px; }
h1 { font-size: 22px; margin: 8px 0 4px; } h2 { font-size: 18px; margin: 0 0 10px; }
h3 { font-size: 15px; }
nav a { margin-right: 12px; color: #2a5db0; text-decoration: none; }
section { background: #fff; border: 1px solid #dde1e7; border-radius: 6px;
          padding: 14px 18px; margin: 16px 0; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: separate; border-spacing: 0; font-size: 13px; }
th, td { padding: 3px 8px; border-bottom: 1px solid #eceff3; text-align: left;
         white-space: nowrap; }
thead th { background: #f0f2f5; position: sticky; top: 0; }
.scroll th:first-child, .scroll td:first-child { position: sticky; left: 0; z-index: 1;
  background: #fff; box-shadow: 1px 0 0 #dde1e7; }
.scroll thead th:first-child { background: #f0f2f5; z-index: 2; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.wrap { white-space: nowrap; }
table.facts th { width: 180px; color: #555; font-weight: 600; }
.note { color: #666; font-style: italic; } .problems { color: #a33; }
.tier { font-weight: 600; } .tier-1 { color: #17803d; } .tier-2 { color: #2a5db0; }
.tier-3 { color: #777; } .tier-4 { color: #b3261e; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(480px, 1fr)); gap: 12px; }
.grid > * { min-width: 0; }
"""


def render_report(run_folder: Path | str) -> str:
    """The HTML report of the run in ``run_folder`` (reads only that folder's artifacts).

    Raises a DataError when ``summary.json`` is missing or not a JSON object.
    """
    run = load_artifacts(run_folder)
    run_id = str(run.summary.get("run_id") or run.folder.name)
    nav = "".join(f'<a href="#{key}">{_esc(title)}</a>' for key, title in SECTION_TITLES.items())
    sections = "\n".join(f'<section id="{key}"><h2>{_esc(SECTION_TITLES[key])}</h2>\n'
                         f"{build(run)}\n</section>" for key, build in SECTION_BUILDERS.items())
    title = f"Research run {run_id}"
    header = f"<header><h1>{_esc(title)}</h1><nav>{nav}</nav></header>"
    return standalone_page(title, CSS + tree.TREE_CSS, header, sections)


def write_report(run_folder: Path | str) -> Path:
    """Write ``report.html`` into ``run_folder`` atomically and return its path."""
    path = Path(run_folder) / REPORT_NAME
    atomic_write_bytes(path, render_report(run_folder).encode("utf-8"))
    return path
