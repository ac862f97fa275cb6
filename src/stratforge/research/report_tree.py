"""Two sections of the research report: the patterns per discovery level and the template tree.

:func:`levels_html` renders ``summary.json``'s ``discovery_levels`` (level, timeframe, bars
scanned, drill-down windows, patterns, in-sample patterns) with the run's scan mode.
:func:`tree_html` renders the optimize phase's ``optimize/report.parquet`` as the template
tree: every optimised template under its fission parent, its members and optimum, and each
fission decision with the evidence the rule used (the candidate: the feature cut, or the
silhouette of clustered exits; the held-out members, their mean gain over the parent's exit
and its one-sided p-value) and, for a template that stayed whole, the reason. Rules:
docs/discovery.md ("Optimisation and fission"); :mod:`stratforge.research.report` places the
sections in the page.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from stratforge.discovery.fission import (
    FISSION_ALPHA,
    FISSION_KS,
    MAX_FISSION_DEPTH,
    MEMBERS_PER_CLUSTER,
    MIN_HOLDOUT_PER_CHILD,
    SILHOUETTE_MIN,
)
from stratforge.discovery.library import TemplateLibrary
from stratforge.html_page import escape_cell, finite_or_none
from stratforge.research.report_charts import note

REPORT_PATH = Path("optimize") / "report.parquet"
"""The optimize phase's per-template report, relative to the run folder."""
TREE_CSS = """
td.tree-0 { font-weight: 600; } td.tree-1 { padding-left: 26px; }
td.tree-2 { padding-left: 46px; } td.tree-3 { padding-left: 66px; }
.verdict-split { color: #17803d; font-weight: 600; } .verdict-rejected { color: #b3261e; }
.verdict-none { color: #777; }
td.reason { white-space: normal; min-width: 300px; max-width: 440px; }
"""
"""CSS of the tree table (indentation by fission depth, decision colours)."""

_esc = escape_cell


def _num(value: Any, spec: str) -> str:
    v = finite_or_none(value)
    return "–" if v is None else format(v, spec)


def _table(heads: Sequence[str], rows: Sequence[Sequence[tuple[str, str]]]) -> str:
    """A table; each cell is ``(class, html)`` (the html already escaped)."""
    head = "".join(f"<th>{_esc(h)}</th>" for h in heads)
    body = "".join("<tr>" + "".join((f'<td class="{css}">' if css else "<td>") + f"{text}</td>"
                                    for css, text in row) + "</tr>" for row in rows)
    return (f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>")


# ---------------------------------------------------------------- discovery levels

def levels_html(summary: Mapping[str, Any]) -> str:
    """The patterns per discovery level of the run (``summary["discovery_levels"]``)."""
    levels = [r for r in summary.get("discovery_levels") or [] if isinstance(r, Mapping)]
    scan = (summary.get("config") or {}).get("scan", "full")
    if not levels:
        return note("no per-level discovery counts in this run (it was made before they were "
                    "recorded, or its discovery has not finished)")
    rows = []
    for r in levels:
        how = "every bar" if r.get("full_scan") else "drill-down windows"
        if r.get("skipped"):
            how += " (no pattern: the next level drills from the last level with patterns)"
        rows.append([("num", _esc(r.get("level"))), ("", _esc(r.get("timeframe"))),
                     ("", _esc(how)), ("num", _num(r.get("bars_scanned"), ",.0f")),
                     ("num", _num(r.get("windows"), ",.0f")),
                     ("num", _num(r.get("patterns"), ",.0f")),
                     ("num", _num(r.get("in_sample_patterns"), ",.0f"))])
    table = _table(("Level", "Timeframe", "Scanned", "Bars scanned", "Windows", "Patterns",
                    "In-sample patterns"), rows)
    text = ("scan drill: the top timeframe scans every bar, each lower one only the windows "
            "the patterns of the level above open" if scan == "drill" else
            "scan full: every level scans every bar")
    return (note(f"{text}; templates are clustered from the in-sample patterns only (every "
                 "bar a pattern reads ends before the train end)") + table)


# ---------------------------------------------------------------- template tree

def _settings(library: TemplateLibrary | None) -> dict[str, Any]:
    """The fission settings the run used (the library's ``optimization`` metadata), with the
    house defaults for what it lacks."""
    saved = (library.metadata.get("optimization") or {}) if library is not None else {}
    return {"fission": bool(saved.get("fission", True)),
            "max_fission_depth": int(saved.get("max_fission_depth", MAX_FISSION_DEPTH)),
            "min_silhouette": float(saved.get("min_silhouette", SILHOUETTE_MIN)),
            "fission_alpha": float(saved.get("fission_alpha", FISSION_ALPHA))}


def split_verdict(row: Mapping[str, Any], settings: Mapping[str, Any]) -> tuple[str, str]:
    """``(decision, reason)`` of one template's fission: ``split`` (kept, with its held-out
    evidence), ``rejected`` (a candidate split failed the held-out test, and why) or ``none``
    (no candidate split, and why)."""
    alpha, min_sil = settings["fission_alpha"], settings["min_silhouette"]
    gain, p = finite_or_none(row.get("holdout_gain")), finite_or_none(row.get("holdout_p"))
    sil = finite_or_none(row.get("silhouette"))
    held = int(finite_or_none(row.get("holdout_members")) or 0)
    cut = str(row.get("split_feature") or "")
    if bool(row.get("split")):
        by = f"split on {cut}: " if cut else ""
        return "split", (f"kept ({by}on {held} held-out members the children's exits beat "
                         f"the parent's by {_num(gain, '+.3g')} points per member, p = "
                         f"{_num(p, '.3g')} < {alpha:g})")
    if not int(finite_or_none(row.get("fission_members")) or 0):
        if not settings["fission"]:
            return "none", "not tried: fission is off"
        if int(row.get("depth") or 0) >= settings["max_fission_depth"]:
            deepest = settings["max_fission_depth"]
            return "none", f"not tried: at the deepest fission level ({deepest})"
        need = 2 * MEMBERS_PER_CLUSTER * FISSION_KS[0]
        return "none", f"not tried: {_num(row.get('members'), ',.0f')} members (needs {need})"
    # a feature cut as the candidate goes straight to the held-out verdicts below
    if not cut and sil is None:
        return "none", ("no candidate: no feature cut separates what the members want, and "
                        "their optima form no two clusters")
    if not cut and sil < min_sil:
        return "none", f"no candidate: silhouette {sil:.2f} < {min_sil:g}"
    if gain is None:
        return "rejected", (f"rejected: a child has fewer than {MIN_HOLDOUT_PER_CHILD} "
                            f"held-out members ({held} scored in all)")
    if p is None or p >= alpha:
        return "rejected", (f"rejected: held-out gain {gain:+.3g} points per member is not "
                            f"significant (p = {_num(p, '.3g')} ≥ {alpha:g})")
    return "rejected", ("rejected: a child does significantly worse than the parent on its "
                        "own held-out members")


def _optimum(row: Mapping[str, Any]) -> str:
    """'stop 39 / target 92 / trail 12-40 / hold 8' (ticks and bars) of the row's optimum."""
    parts = [f"{label} {_num(row.get(key), '.4g')}" for label, key in
             (("stop", "stop_ticks"), ("target", "target_ticks")) if key in row]
    tight = finite_or_none(row.get("trail_tight_ticks"))
    if tight:
        wide = finite_or_none(row.get("trail_wide_ticks")) or tight
        parts.append(f"trail {tight:.4g}-{wide:.4g}")
    hold = finite_or_none(row.get("max_hold_bars"))
    if hold:
        parts.append(f"hold {hold:.4g}")
    return " / ".join(parts) or "–"


def tree_order(report: pd.DataFrame) -> list[tuple[int, dict[str, Any]]]:
    """The report's rows as ``(depth, row)`` in tree order: each root template (no parent in
    the report) in report order, each followed by its children (recursively)."""
    rows = [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
            for r in report.to_dict(orient="records")]
    ids = {str(r["template_id"]) for r in rows}
    children: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r.get("parent_id") is not None and str(r["parent_id"]) in ids:
            children.setdefault(str(r["parent_id"]), []).append(r)
    out: list[tuple[int, dict[str, Any]]] = []

    def visit(row: dict[str, Any], depth: int) -> None:
        out.append((depth, row))
        for child in children.get(str(row["template_id"]), []):
            visit(child, depth + 1)

    for r in rows:
        if r.get("parent_id") is None or str(r["parent_id"]) not in ids:
            visit(r, 0)
    return out


def tree_html(folder: Path, library: TemplateLibrary | None) -> str:
    """The template tree of the run in ``folder`` (its ``optimize/report.parquet``)."""
    path = folder / REPORT_PATH
    if not path.is_file():
        return note("no template tree: this run has no optimize phase (or ran it with "
                    "--no-optimize)")
    try:
        report = pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        return note(f"{path}: not readable Parquet ({exc})")
    settings = _settings(library)
    final = {t.template_id for t in library} if library is not None else set()
    rows, counts = [], {"split": 0, "rejected": 0, "none": 0}
    for depth, row in tree_order(report):
        decision, reason = split_verdict(row, settings)
        counts[decision] += 1
        template = str(row["template_id"])
        label = ("└ " if depth else "") + template
        if library is not None:
            label += "" if template in final else " (replaced by its children)"
        silhouette = _num(row.get("silhouette"), ".2f")
        if row.get("split_feature"):
            silhouette = f"cut on {row['split_feature']}"
        elif finite_or_none(row.get("k")):
            silhouette += f" (k {int(row['k'])})"
        rows.append([(f"tree-{min(depth, 3)}", _esc(label)),
                     ("", _esc(row.get("parent_id"))),
                     ("num", _num(row.get("members"), ",.0f")),
                     (f"reason verdict-{decision}", _esc(reason)),
                     ("num", silhouette), ("num", _num(row.get("holdout_members"), ",.0f")),
                     ("num", _num(row.get("holdout_gain"), "+.3g")),
                     ("num", _num(row.get("holdout_p"), ".3g")),
                     ("", _esc(_optimum(row))), ("", _esc(row.get("timeframes")))])
    table = _table(("Template", "Parent", "Members", "Fission decision", "Candidate",
                    "Held-out members", "Held-out gain", "p", "Optimum (ticks, bars)",
                    "Timeframes"), rows)
    head = note(
        f"{len(rows)} optimised templates: {counts['split']} split, {counts['rejected']} "
        f"candidate split(s) rejected on held-out members, {counts['none']} without a "
        f"candidate. A split is kept when, on members not used to find it, the children's "
        f"exits beat the parent's (one-sided t-test, p < {settings['fission_alpha']:g}) and "
        f"no child does worse. The candidate is the median cut of the one feature that best "
        f"separates what the discovery members want; failing that, their clustered exits, "
        f"with a silhouette of {settings['min_silhouette']:g} (docs/discovery.md). Gains are "
        "in points after costs per held-out member.")
    return head + table
