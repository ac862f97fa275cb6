"""The training span of discovery: the patterns that end before a training end ``T``.

A pattern is a bar of its timeframe, and what discovery knows of it reads more than that bar:

- its states and feature vector read its own bar and earlier ones (parent and root context
  come from bars completed by the end of its own bar);
- its oracle statistics (``oracle_mfe``, ``oracle_mae``, ``oracle_win``, ``oracle_label``)
  read the ``ORACLE_LOOKAHEAD`` bars after it;
- in a drill-down, its very existence depends on a parent pattern whose window holds it, and
  a parent bar that is still open at ``T`` is known only after ``T``.

``training_patterns(patterns, T)`` keeps the patterns whose every input ends by ``T`` (bars
are half-open ``[start, end)``, so a bar ending exactly at ``T`` is before it): the bar
``ORACLE_LOOKAHEAD`` bars after the pattern (the last bar of the series when that comes
sooner) ends by ``T``, and, in a drill-down level, the pattern lies in the window of a parent
pattern that is itself in the training span (its bar ends by ``T``, recursively up the
hierarchy). The selection therefore depends only on bars before ``T``: two markets identical
before ``T`` give identical selections. Clustering, exit optimisation and fission use only
these patterns (docs/discovery.md, "Training span").
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stratforge.data.resample import bar_end_times
from stratforge.discovery.fractal import drill_windows, merge_windows
from stratforge.discovery.patterns import oracle_lookahead
from stratforge.errors import ConfigError
from stratforge.features.cache import read_states
from stratforge.instruments import get_instrument
from stratforge.sessions import Session
from stratforge.timeframes import parse_timeframe

SPAN_COLUMNS: tuple[str, ...] = ("pattern_id", "timeframe", "ts", "bar")
"""Columns ``training_patterns`` needs (``parent_chain`` is read when present)."""

EXCLUSION_REASONS: tuple[str, ...] = ("starts_at_or_after", "lookahead", "drill_parent")
"""Why a pattern is left out: its bar starts at or after ``T``; its own bar or its oracle
lookahead ends after ``T``; no training-span parent's drill-down window holds it."""
_REASON_TEXT = {"starts_at_or_after": "start at or after T",
                "lookahead": "read bars after T (own bar or oracle lookahead)",
                "drill_parent": "lie in no window of a parent known before T"}


@dataclass(frozen=True)
class TrainingPatterns:
    """The patterns of the training span and what was left out.

    Attributes:
        patterns: the rows of the input whose inputs all end by ``train_end`` (input order,
            index reset).
        train_end: the training end (UTC).
        total: rows in the input.
        excluded: reason (``EXCLUSION_REASONS``) -> rows left out for it (first reason that
            applies, in that order).
    """

    patterns: pd.DataFrame
    train_end: pd.Timestamp
    total: int
    excluded: dict[str, int] = field(default_factory=dict)

    def metadata(self) -> dict[str, Any]:
        """A JSON-ready summary for a library's metadata (``training_span``). It holds only
        what the bars before ``train_end`` decide (the counts of patterns left out depend
        on later bars too, so they are not part of it: see ``describe``)."""
        return {"train_end": self.train_end.isoformat(), "used": len(self.patterns),
                "rule": "every bar a pattern reads (own bar, oracle lookahead, drill-down "
                        "parents) ends by train_end"}

    def describe(self) -> str:
        """One line: 'training span to T: 361 of 515 patterns (154 left out: 140 start at or
        after T, 14 read bars after T)'."""
        left = self.total - len(self.patterns)
        parts = ", ".join(f"{n:,} {_REASON_TEXT[reason]}"
                          for reason, n in self.excluded.items() if n)
        return (f"training span to {self.train_end.isoformat()}: {len(self.patterns):,} of "
                f"{self.total:,} patterns" + (f" ({left:,} left out: {parts})" if left else ""))


def utc_time(value: Any, what: str = "train_end") -> pd.Timestamp:
    """``value`` as a UTC Timestamp (naive times are UTC); ConfigError for unreadable text."""
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{what}: cannot read {value!r} as a time; use ISO-8601, e.g. "
                          "2024-03-01 or 2024-03-01T14:30:00Z") from exc
    if pd.isna(stamp):
        raise ConfigError(f"{what}: {value!r} is not a time")
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def bar_starts(symbol: str, timeframes: list[str], *, home: Path | str | None = None
               ) -> dict[str, np.ndarray]:
    """Bar start times (UTC ns) of each timeframe's whole series, from the states cache (the
    series the patterns' ``bar`` positions index)."""
    return {tf: read_states(symbol, tf, columns=("ts",), home=home)["ts"].array.asi8
            for tf in timeframes}


def _checked(patterns: pd.DataFrame, starts: Mapping[str, np.ndarray]
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    missing = [c for c in SPAN_COLUMNS if c not in patterns.columns]
    if missing:
        raise ConfigError(f"training_patterns: the patterns frame lacks column(s) "
                          f"{', '.join(missing)} (docs/discovery.md, patterns frame)")
    tfs = patterns["timeframe"].astype(str).to_numpy(dtype=object)
    ts = pd.to_datetime(patterns["ts"], utc=True).dt.as_unit("ns").array.asi8
    bars = patterns["bar"].to_numpy(dtype=np.int64)
    for tf in sorted(set(tfs.tolist())):
        if tf not in starts:
            raise ConfigError(f"training_patterns: no bars given for timeframe {tf}")
        rows = tfs == tf
        series = starts[tf]
        at = bars[rows]
        inside = (at >= 0) & (at < len(series))
        if not inside.all() or (series[at] != ts[rows]).any():
            raise ConfigError(f"training_patterns: patterns of {tf} do not match the {tf} bars "
                              "(bar positions or times differ); rerun discovery on the "
                              "current data")
    return tfs, ts, bars


def label_ends(patterns: pd.DataFrame, starts: Mapping[str, np.ndarray],
               session: Session) -> np.ndarray:
    """UTC ns by which every bar each pattern reads for itself has ended: the end
    (``bar_end_times``) of the bar ``ORACLE_LOOKAHEAD[tf]`` bars after the pattern bar, or of
    the series' last bar when that comes sooner. ``starts`` holds each timeframe's bar starts
    (the series ``bar`` indexes)."""
    tfs, _ts, bars = _checked(patterns, starts)
    ends = np.empty(len(patterns), dtype=np.int64)
    for tf in sorted(set(tfs.tolist())):
        rows = tfs == tf
        series = starts[tf]
        last = np.minimum(bars[rows] + oracle_lookahead(tf), len(series) - 1)
        ends[rows] = bar_end_times(series[last], parse_timeframe(tf), session)
    return ends


def _parent_timeframes(patterns: pd.DataFrame) -> np.ndarray:
    """The nearest ancestor's timeframe of each row ("" for a full-scan row)."""
    if "parent_chain" not in patterns.columns:
        return np.full(len(patterns), "", dtype=object)
    cache: dict[str, str] = {}
    out = []
    for chain in patterns["parent_chain"].astype(str):
        if chain not in cache:
            entries = json.loads(chain) if chain and chain != "[]" else []
            cache[chain] = str(entries[0]["timeframe"]) if entries else ""
        out.append(cache[chain])
    return np.asarray(out, dtype=object)


def _known_by(patterns: pd.DataFrame, tfs: np.ndarray, ts: np.ndarray,
              starts: Mapping[str, np.ndarray], session: Session, end_ns: int) -> np.ndarray:
    """Whether each row would be a pattern of a discovery that saw only the bars before
    ``end_ns``: its own bar ends by then and, for a drill-down row, it lies in the window of a
    parent row that passes the same test (coarser timeframes first)."""
    own_end = np.empty(len(patterns), dtype=np.int64)
    for tf in sorted(set(tfs.tolist())):
        rows = tfs == tf
        own_end[rows] = bar_end_times(ts[rows], parse_timeframe(tf), session)
    known = own_end <= end_ns
    parent_tf = _parent_timeframes(patterns)
    drilled = parent_tf != ""
    for tf in sorted(set(tfs[drilled].tolist()), key=lambda t: -parse_timeframe(t).seconds):
        for parent in sorted(set(parent_tf[drilled & (tfs == tf)].tolist())):
            rows = np.flatnonzero(drilled & (tfs == tf) & (parent_tf == parent))
            parents = np.flatnonzero((tfs == parent) & known)
            if len(parents) == 0:
                known[rows] = False
                continue
            w_start, w_end, _ = merge_windows(*drill_windows(
                ts[parents], parse_timeframe(parent), starts[tf], parse_timeframe(tf),
                session))
            window = np.searchsorted(w_start, ts[rows], side="right") - 1
            inside = (window >= 0) & (ts[rows] < w_end[np.maximum(window, 0)])
            known[rows] &= inside
    return known


def training_patterns(patterns: pd.DataFrame, train_end: Any, *, symbol: str | None = None,
                      home: Path | str | None = None,
                      starts: Mapping[str, np.ndarray] | None = None,
                      session: Session | None = None) -> TrainingPatterns:
    """The patterns whose every input ends by ``train_end`` (module docstring).

    Args:
        patterns: the pattern finder's frame (needs ``SPAN_COLUMNS``; ``parent_chain`` marks
            drill-down rows).
        train_end: the training end (a naive time is UTC).
        symbol, home: where the bars are (bar starts from the states cache, the session from
            the instrument) when ``starts`` / ``session`` are not given; ``symbol`` defaults
            to the frame's ``symbol`` column.
        starts: bar starts (UTC ns) of each timeframe's whole series, the series that the
            ``bar`` column indexes.
        session: the instrument's session (bar ends clip to trade dates).

    A drill-down level whose parent patterns all end after ``T`` contributes nothing: a
    discovery on the bars before ``T`` alone would have drilled it from a higher level (or
    scanned it whole), which the frame cannot tell; docs/discovery.md, "Training span".
    """
    end = utc_time(train_end)
    if symbol is None and "symbol" in patterns.columns and len(patterns):
        symbol = str(patterns["symbol"].iloc[0])
    if (starts is None or session is None) and symbol is None:
        raise ConfigError("training_patterns: name the symbol (or pass starts and session)")
    timeframes = sorted(set(patterns["timeframe"].astype(str))) \
        if "timeframe" in patterns.columns else []
    if session is None:
        session = get_instrument(str(symbol), home).session
    if starts is None:
        starts = bar_starts(str(symbol), timeframes, home=home)
    tfs, ts, _bars = _checked(patterns, starts)
    end_ns = int(end.value)
    before = ts < end_ns
    label_ok = label_ends(patterns, starts, session) <= end_ns
    known = _known_by(patterns, tfs, ts, starts, session, end_ns)
    keep = before & label_ok & known
    excluded = {"starts_at_or_after": int((~before).sum()),
                "lookahead": int((before & ~label_ok).sum()),
                "drill_parent": int((before & label_ok & ~known).sum())}
    return TrainingPatterns(patterns[keep].reset_index(drop=True), end, len(patterns),
                            excluded)
