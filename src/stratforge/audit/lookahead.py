"""The lookahead audit: recompute every feature on copies of the data that differ only after
a cut, and report every value at or before the cut that changes.

At each of a few seeded cut instants spread over the span, every timeframe's bars are taken
from ``history`` bars before the cut to ``future`` bars after it (the *real* span) and compared
with three copies that share the real bars up to the cut: ``truncated`` (nothing after it),
``mirrored`` and ``shuffled`` (a different future, see ``perturb``). A timeframe's bar counts
as "at or before the cut" when it is complete by the cut instant (its end, as in the as-of
join of the feature vectors). A causal feature gives the same value on every copy for all those
bars; any other value is a finding, reported with its source, feature, timeframe, the first
bar where it differs, the cut and the copy that showed it.

``audit_bars`` works on bars in memory; ``audit_lookahead`` on a symbol of the home's store
(and a run's template library, a feature builder of the user's, stored evolution models);
``write_lookahead_report`` keeps its result where the dashboard reads it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stratforge.audit.models import (
    FeatureBuilder,
    ModelProbe,
    load_model_probe,
    stored_models,
)
from stratforge.audit.perturb import CHECKS, choose_cuts, perturbed_future
from stratforge.audit.sources import SOURCES, compute_sources
from stratforge.audit.user_features import FeatureFunction, load_feature_function
from stratforge.data.bars import ts_ns
from stratforge.data.resample import bar_end_times
from stratforge.discovery.library import TemplateLibrary
from stratforge.errors import ConfigError
from stratforge.evolution.featureset import build_features
from stratforge.progress import ProgressCallback, no_progress
from stratforge.sessions import Session
from stratforge.timeframes import parse_timeframe

DEFAULT_CUTS = 5
DEFAULT_HISTORY = 600
"""Bars before each cut: past the field engine's warm-up (100 bars) with room to spare."""
DEFAULT_FUTURE = 120
"""Bars after each cut in the real span and its perturbed copies."""
DEFAULT_TOLERANCE = 0.0
"""Relative difference still counted as equal (0: values must be identical, NaN equal NaN)."""


@dataclass(frozen=True)
class Finding:
    """One feature of one timeframe whose value at or before a cut changed.

    ``first_bar``/``first_bar_index``: the earliest differing bar over all cuts (its start
    time, ISO UTC, and its row in the timeframe's series); ``cut`` and ``check``: the cut
    instant and the copy that showed it there; ``cuts``: at how many cuts it differed;
    ``checks``: every copy that showed it at some cut."""

    source: str
    feature: str
    timeframe: str
    first_bar: str
    first_bar_index: int
    cut: str
    check: str
    cuts: int
    checks: tuple[str, ...]


@dataclass(frozen=True)
class LookaheadReport:
    """What an audit checked and found. ``clean`` when nothing was found."""

    findings: tuple[Finding, ...]
    timeframes: tuple[str, ...]
    cuts: tuple[str, ...]
    features: dict[str, int]
    history: int
    future: int
    seed: int
    tolerance: float
    checks: tuple[str, ...] = CHECKS
    symbol: str | None = None
    run_id: str | None = None
    hierarchy: tuple[str, ...] = field(default_factory=tuple)
    sources: tuple[str, ...] = SOURCES
    models: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    builder: str | None = None

    @property
    def clean(self) -> bool:
        """True when no feature changed at or before any cut."""
        return not self.findings

    def checked(self) -> str:
        """What was checked, in one phrase."""
        counts = ", ".join(f"{source} {n:,}" for source, n in self.features.items() if n)
        total = sum(self.features.values())
        where = f"{self.symbol} " if self.symbol else ""
        return (f"{total:,} feature series ({counts}) on {where}{', '.join(self.timeframes)} at "
                f"{len(self.cuts)} cut(s) x {len(self.checks)} checks "
                f"({', '.join(self.checks)}), {self.history} bars before and {self.future} "
                "after each cut")

    def summary_line(self) -> str:
        """One line: 'no lookahead found: ...' or 'lookahead in N feature series: ...'."""
        if self.clean:
            return f"no lookahead found: {self.checked()}"
        return f"lookahead in {len(self.findings)} feature series: {self.checked()}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (lists for tuples)."""
        out = asdict(self)
        out["clean"] = self.clean
        out["summary"] = self.summary_line()
        return out


class _Tracker:
    """The earliest difference per (source, feature, timeframe), and the cuts that showed one."""

    def __init__(self) -> None:
        self.first: dict[tuple[str, str], tuple[int, str, str, str]] = {}
        self.cuts: dict[tuple[str, str], set[int]] = {}
        self.checks: dict[tuple[str, str], set[str]] = {}

    def add(self, key: tuple[str, str], cut_number: int, check: str, index: int, bar: str,
            cut: str) -> None:
        if key not in self.first or index < self.first[key][0]:
            self.first[key] = (index, bar, cut, check)
        self.cuts.setdefault(key, set()).add(cut_number)
        self.checks.setdefault(key, set()).add(check)

    def findings(self) -> tuple[Finding, ...]:
        out = []
        for (tf, name), (index, bar, cut, check) in self.first.items():
            source, _, feature = name.partition(".")
            out.append(Finding(source, feature, tf, bar, index, cut, check,
                               len(self.cuts[(tf, name)]),
                               tuple(c for c in CHECKS if c in self.checks[(tf, name)])))
        order = {s: i for i, s in enumerate(SOURCES)}
        return tuple(sorted(out, key=lambda f: (order.get(f.source, 99), f.feature,
                                                parse_timeframe(f.timeframe))))


def _first_difference(real: np.ndarray, other: np.ndarray | None, rows: int,
                      tolerance: float) -> int | None:
    """The first of ``rows`` leading rows where ``other`` differs from ``real`` (NaN equals
    NaN); a feature missing from ``other`` differs at its first non-NaN row."""
    a = real[:rows]
    if other is None:
        hit = np.flatnonzero(~np.isnan(a))
        return int(hit[0]) if len(hit) else None
    b = other[:rows]
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    if tolerance > 0:
        with np.errstate(invalid="ignore"):
            same |= np.abs(a - b) <= tolerance * np.maximum(np.abs(a), np.abs(b))
    hit = np.flatnonzero(~same)
    return int(hit[0]) if len(hit) else None


def _iso(ns: int) -> str:
    return pd.Timestamp(int(ns), tz="UTC").isoformat()


def _ordered(timeframes: Sequence[str]) -> list[str]:
    """Distinct timeframe names, finest first."""
    return [str(tf) for tf in sorted({parse_timeframe(str(t)) for t in timeframes})]


def _check_sources(sources: Collection[str]) -> tuple[str, ...]:
    unknown = sorted(set(sources) - set(SOURCES))
    if unknown or not sources:
        raise ConfigError(f"unknown source(s) {', '.join(unknown) or '(none given)'}; choose "
                          f"among {', '.join(SOURCES)}")
    return tuple(s for s in SOURCES if s in sources)


def _builder(builder: FeatureBuilder | str | None) -> FeatureBuilder:
    if builder is None:
        return build_features
    if isinstance(builder, str):
        return load_feature_function(builder, option="--builder")
    return builder


def audit_bars(bars_by_tf: Mapping[str, pd.DataFrame], *, session: Session,
               tick_size: float | None = None, library: TemplateLibrary | None = None,
               hierarchy: Sequence[str] | None = None,
               features: Sequence[FeatureFunction | str] = (),
               builder: FeatureBuilder | str | None = None,
               models: Sequence[ModelProbe] = (), sources: Collection[str] = SOURCES,
               cuts: int = DEFAULT_CUTS,
               seed: int = 0, history: int = DEFAULT_HISTORY, future: int = DEFAULT_FUTURE,
               tolerance: float = DEFAULT_TOLERANCE,
               progress: ProgressCallback = no_progress) -> LookaheadReport:
    """Audit every feature of ``bars_by_tf`` (canonical bars by timeframe name) for lookahead.

    ``hierarchy`` (coarsest first; default every timeframe given) builds the feature vectors
    with their higher-timeframe context; ``library`` adds its template matches; ``features``
    are user feature functions or ``"module:function"`` names; ``builder`` the evolution
    feature builder (default ``build_features``; a function or a ``"module:function"`` name);
    ``models`` stored models replayed on their timeframe from the builder's features;
    ``sources`` which of ``SOURCES`` are audited. ``cuts`` seeded cut instants
    (``seed``), ``history``/``future`` bars around each, ``tolerance`` a relative difference
    still counted as equal. See the module docstring for the method.
    """
    if cuts < 1 or history < 1 or future < 1:
        raise ConfigError(f"cuts, history and future must be at least 1 (got {cuts}, "
                          f"{history}, {future})")
    if not bars_by_tf:
        raise ConfigError("nothing to audit: give the bars of at least one timeframe")
    timeframes = _ordered(list(bars_by_tf))
    levels = [str(t) for t in (hierarchy if hierarchy is not None else timeframes[::-1])]
    unknown = [tf for tf in levels if tf not in bars_by_tf]
    if unknown:
        raise ConfigError(f"hierarchy timeframe(s) {', '.join(unknown)} have no bars; have "
                          f"{', '.join(timeframes)}")
    functions = [load_feature_function(f) if isinstance(f, str) else f for f in features]
    chosen_sources = _check_sources(sources)
    build = _builder(builder)
    absent = sorted({probe.timeframe for probe in models} - set(bars_by_tf))
    if absent:
        raise ConfigError(f"model timeframe(s) {', '.join(absent)} have no bars to audit; "
                          f"have {', '.join(_ordered(list(bars_by_tf)))}")
    extra = {"builder": build, "models": models, "sources": chosen_sources}
    bars = {tf: bars_by_tf[tf].reset_index(drop=True) for tf in timeframes}
    ends = {tf: bar_end_times(ts_ns(b), parse_timeframe(tf), session) for tf, b in bars.items()}
    if any(len(b) < 4 for b in bars.values()):
        short = [f"{tf} ({len(b)})" for tf, b in bars.items() if len(b) < 4]
        raise ConfigError(f"too few bars to audit on {', '.join(short)}; need at least 4 each")
    instants = choose_cuts([ends[tf] for tf in timeframes], cuts, seed)
    tracker = _Tracker()
    names: dict[str, set[str]] = {}
    checks = len(CHECKS) * len(instants)
    for number, instant in enumerate(instants):
        real, copies, last, first = {}, {check: {} for check in CHECKS}, {}, {}
        for tf in timeframes:
            cut = int(np.searchsorted(ends[tf], instant, side="right")) - 1
            lo, hi = max(0, cut - history + 1), min(len(bars[tf]), cut + 1 + future)
            span = bars[tf].iloc[lo:hi].reset_index(drop=True)
            real[tf], last[tf], first[tf] = span, cut - lo, lo
            copies["truncated"][tf] = span.iloc[:cut - lo + 1]
            for offset, check in enumerate(CHECKS[1:]):
                copies[check][tf] = perturbed_future(span, cut - lo, check,
                                                     seed * 1000 + number * 10 + offset)
        reference = compute_sources(real, hierarchy=levels, session=session,
                                    tick_size=tick_size, library=library, features=functions,
                                    **extra)
        for tf, columns in reference.items():
            names.setdefault(tf, set()).update(columns)
        for done, check in enumerate(CHECKS):
            progress("audit", number * len(CHECKS) + done, checks,
                     f"cut {number + 1}/{len(instants)} at {_iso(instant)}: {check}")
            other = compute_sources(copies[check], hierarchy=levels, session=session,
                                    tick_size=tick_size, library=library, features=functions,
                                    **extra)
            for tf, columns in reference.items():
                rows = last[tf] + 1
                stamps = real[tf]["ts"]
                for name, values in columns.items():
                    row = _first_difference(values, other[tf].get(name), rows, tolerance)
                    if row is not None:
                        tracker.add((tf, name), number, check, first[tf] + row,
                                    stamps.iloc[row].isoformat(), _iso(instant))
    progress("audit", checks, checks, "done")
    counts = {source: sum(1 for tf in names for n in names[tf] if n.startswith(source + "."))
              for source in SOURCES}
    return LookaheadReport(tracker.findings(), tuple(timeframes),
                           tuple(_iso(t) for t in instants), counts, history, future, seed,
                           tolerance, hierarchy=tuple(levels), sources=chosen_sources,
                           models=tuple(probe.model_id for probe in models),
                           builder=None if builder is None else _builder_name(builder))


def _builder_name(builder: FeatureBuilder | str) -> str:
    if isinstance(builder, str):
        return builder
    return f"{getattr(builder, '__module__', '?')}:{getattr(builder, '__qualname__', '?')}"


def run_library(run_id: str, home: Path | str | None = None) -> tuple[TemplateLibrary, str]:
    """The template library of run ``run_id`` (``runs/<id>/library``) and the run's symbol;
    ConfigError when the run or its library is missing."""
    import json

    from stratforge.names import check_run_id
    from stratforge.research.prepare import LIBRARY_DIR
    from stratforge.research.runs import CONFIG_FILE, runs_root

    folder = runs_root(home) / check_run_id(run_id)
    if not (folder / CONFIG_FILE).is_file():
        raise ConfigError(f"no run {run_id} in {folder.parent}; list runs with "
                          "`stratforge ops list` or leave --run-id out")
    if not (folder / LIBRARY_DIR).is_dir():
        raise ConfigError(f"run {run_id} has no template library ({folder / LIBRARY_DIR}); "
                          "its discovery phase has not finished")
    stored = json.loads((folder / CONFIG_FILE).read_text())
    symbol = str(stored.get("config", {}).get("symbol", "")).upper()
    return TemplateLibrary.load(folder / LIBRARY_DIR), symbol


def audit_lookahead(symbol: str | None = None, *, timeframes: Sequence[str] | None = None,
                    run_id: str | None = None, features: Sequence[FeatureFunction | str] = (),
                    builder: FeatureBuilder | str | None = None,
                    models: Sequence[str] = (), all_models: bool = False,
                    sources: Collection[str] = SOURCES,
                    cuts: int = DEFAULT_CUTS, seed: int = 0, history: int = DEFAULT_HISTORY,
                    future: int = DEFAULT_FUTURE, tolerance: float = DEFAULT_TOLERANCE,
                    home: Path | str | None = None,
                    progress: ProgressCallback = no_progress) -> LookaheadReport:
    """``audit_bars`` on ``symbol``'s bars from the home's store.

    ``timeframes`` default to the store's research timeframes (``default_timeframes``), with
    models to their timeframes, with ``run_id`` to the hierarchy of that run's template
    library, whose matches are then audited too (``symbol`` defaults to the run's or the
    models'). ``models`` (fingerprints or unique
    prefixes) are stored evolution models replayed on their own timeframe (added to the
    audited ones); ``all_models`` adds every stored model of the symbol (those the audit
    cannot replay are listed in ``skipped``). States use the instrument's tick size, as the
    states cache does.
    """
    from stratforge.data.load import default_timeframes, load_bars
    from stratforge.data.market import resolve_market
    from stratforge.data.timeframe_choice import missing_timeframes_message
    from stratforge.discovery.matching import library_hierarchy

    library, hierarchy = None, None
    if run_id is not None:
        library, run_symbol = run_library(run_id, home)
        hierarchy = library_hierarchy(library)
        if symbol is None:
            symbol = run_symbol
        elif run_symbol and symbol.upper() != run_symbol:
            raise ConfigError(f"run {run_id} is a run on {run_symbol}, not {symbol.upper()}; "
                              f"pass --symbol {run_symbol} or leave it out")
    probes = [load_model_probe(model, home) for model in models]
    for probe in probes:
        if symbol is None:
            symbol = probe.symbol
        elif probe.symbol != symbol.upper():
            raise ConfigError(f"model {probe.name} models {probe.symbol}, not "
                              f"{symbol.upper()}; audit it with --symbol {probe.symbol}")
    if symbol is None:
        raise ConfigError("name the symbol to audit (--symbol), a run (--run-id) or a model "
                          "(--model)")
    market = resolve_market(symbol, home)
    skipped: list[str] = []
    if all_models:
        found, skipped = stored_models(market.symbol, market.home)
        known = {probe.model_id for probe in probes}
        probes += [probe for probe in found if probe.model_id not in known]
    own = _ordered([probe.timeframe for probe in probes]) if probes else None
    chosen = list(timeframes or hierarchy or own
                  or default_timeframes(market.symbol, market.home))
    if not chosen:
        raise ConfigError(missing_timeframes_message(market.symbol, ["1m"], market.bar_counts,
                                                     market.base_timeframe))
    wanted = _ordered(chosen + list(hierarchy or []) + [probe.timeframe for probe in probes])
    missing = [tf for tf in wanted if tf not in market.bar_counts]
    if missing:
        raise ConfigError(missing_timeframes_message(market.symbol, missing,
                                                     market.bar_counts, market.base_timeframe))
    bars = {tf: load_bars(market.symbol, tf, home=market.home) for tf in wanted}
    levels = hierarchy if hierarchy is not None else _ordered(chosen)[::-1]
    report = audit_bars(bars, session=market.instrument.session,
                        tick_size=market.instrument.tick_size, library=library,
                        hierarchy=levels, features=features, builder=builder, models=probes,
                        sources=sources, cuts=cuts, seed=seed, history=history, future=future,
                        tolerance=tolerance, progress=progress)
    from dataclasses import replace

    return replace(report, symbol=market.symbol, run_id=run_id, skipped=tuple(skipped))


LOOKAHEAD_FILE = "lookahead.json"
"""A run's latest lookahead audit (``runs/<run_id>/lookahead.json``)."""
AUDITS_DIR = "audits"


def lookahead_path(symbol: str, home: Path | str | None = None) -> Path:
    """Where a symbol's latest lookahead audit is kept:
    ``<home>/audits/lookahead/<SYMBOL>.json``."""
    from stratforge.config import resolve_home
    from stratforge.names import check_symbol

    return resolve_home(home) / AUDITS_DIR / "lookahead" / f"{check_symbol(symbol)}.json"


def write_lookahead_report(report: LookaheadReport, home: Path | str | None = None
                           ) -> list[Path]:
    """Keep ``report`` (with the time it was written) as its symbol's latest audit and, for
    an audit of a run (``run_id``), as ``lookahead.json`` beside the run; each written
    atomically. Returns the paths written."""
    from datetime import UTC, datetime

    from stratforge.data.atomic import atomic_write_json
    from stratforge.research.runs import runs_root

    if report.symbol is None:
        raise ConfigError("an audit of bars in memory has no symbol to be kept under")
    payload = {**report.to_dict(), "written": datetime.now(UTC).isoformat(timespec="seconds")}
    paths = [lookahead_path(report.symbol, home)]
    if report.run_id is not None:
        paths.append(runs_root(home) / report.run_id / LOOKAHEAD_FILE)
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, payload)
    return paths
