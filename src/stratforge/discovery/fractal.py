"""Fractal discovery: patterns from the top timeframe down, one checkpointed level at a time.

The top level of the hierarchy scans every bar. Each lower level scans only the drill-down
windows opened by the patterns of the last level that had any: a window starts at the parent
bar's start and ends at the later of the parent bar's end and the end of the 30th bar of the
child timeframe from there (so it always holds at least 30 child bars while the series lasts);
overlapping windows merge. States come from the states cache, computed on each timeframe's
whole series, so a window never lacks warm-up bars. See docs/discovery.md, "Fractal
drill-down".
"""

from __future__ import annotations

import fcntl
import io
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from stratforge.config import resolve_home
from stratforge.data.atomic import atomic_write_bytes, atomic_write_json, read_json, sha256_bytes
from stratforge.data.resample import bar_end_times
from stratforge.data.store import AtlasStore, month_number
from stratforge.data.timeframe_choice import missing_timeframes_message
from stratforge.discovery.patterns import (
    ORACLE_LOOKAHEAD,
    child_chains,
    coerce_patterns,
    empty_patterns,
    make_patterns,
    oracle_excursions,
    oracle_lookahead,
    oracle_sides,
)
from stratforge.errors import ConfigError, DataError
from stratforge.features.cache import (
    FEATURES_VERSION,
    atlas_fingerprint,
    atlas_months,
    ensure_states,
    read_states,
)
from stratforge.features.ticks import prices_in_ticks
from stratforge.features.vectors import feature_vectors
from stratforge.instruments import Instrument, get_instrument
from stratforge.progress import ProgressCallback, no_progress
from stratforge.sessions import Session
from stratforge.timeframes import Timeframe, parse_timeframe

DEFAULT_HIERARCHY: tuple[Timeframe, ...] = tuple(
    parse_timeframe(name) for name in ("1W", "1D", "4h", "1h", "15m", "5m", "1m", "15s", "5s",
                                       "1s"))
"""Every timeframe discovery knows, from the top down."""

WINDOW_MIN_CHILD_BARS = 30
"""A drill-down window holds at least this many bars of the child timeframe."""
DISCOVERY_VERSION = "3"
"""Bump when the drill-down changes its result for the same data (invalidates checkpoints)."""
SCAN_MODES: tuple[str, ...] = ("drill", "full")
"""``drill``: lower levels scan the parents' windows; ``full``: every level scans all bars."""
PATTERNS_FILE = "patterns.parquet"
CHECKPOINT_DIR = "checkpoint"
STATE_FILE = "state.json"

VECTOR_INPUTS: tuple[str, ...] = ("ts", "z", "velocity_sigma", "momentum_strength", "coherence",
                                  "adx", "hurst", "dmi_diff", "cascade_detected")
"""State columns ``feature_vectors`` reads from each timeframe of the hierarchy."""


@dataclass
class LevelReport:
    """What one level of the drill-down did."""

    timeframe: str
    depth: int
    bars_scanned: int      # bars of the timeframe inside the (merged) windows, or all of them
    windows: int           # merged drill-down windows (0 on a full scan)
    patterns: int
    skipped: bool          # no pattern: the next level drills from the last level that had some
    seconds: float
    full_scan: bool        # True while no level above had patterns (the level acts as the top)
    states_cache: str      # "hit" or "miss" for this timeframe's states
    resumed: bool = False  # read back from the checkpoint instead of computed

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


@dataclass
class DiscoveryResult:
    """Patterns of every level and the per-level reports."""

    symbol: str
    hierarchy: list[str]
    patterns: pd.DataFrame
    levels: list[LevelReport] = field(default_factory=list)
    folder: Path | None = None

    @property
    def resumed_levels(self) -> int:
        """Levels read back from a checkpoint."""
        return sum(level.resumed for level in self.levels)


def resolve_hierarchy(symbol: str, timeframes: Sequence[str | Timeframe] | str | None = None,
                      *, home: Path | str | None = None) -> list[Timeframe]:
    """The hierarchy in use, top down: the ``DEFAULT_HIERARCHY`` timeframes present in the
    ATLAS of ``symbol``, narrowed to ``timeframes`` when given (names or Timeframes, or a
    comma-separated string)."""
    store = AtlasStore.open(symbol, home)
    if not store.exists:
        raise DataError(f"no store for {symbol.upper()} under {store.root.parent}; ingest data "
                        "with `stratforge data ingest` or `stratforge data synth`")
    present = set(store.timeframes())
    known = ", ".join(map(str, DEFAULT_HIERARCHY))
    if timeframes is None:
        chosen = [tf for tf in DEFAULT_HIERARCHY if tf in present]
    else:
        names = timeframes.split(",") if isinstance(timeframes, str) else list(timeframes)
        wanted = {t if isinstance(t, Timeframe) else parse_timeframe(str(t))
                  for t in names if str(t).strip()}
        odd = sorted(tf for tf in wanted if tf not in DEFAULT_HIERARCHY)
        if odd:
            raise ConfigError(f"discovery: timeframe(s) {', '.join(map(str, odd))} are not in "
                              f"the discovery hierarchy ({known})")
        absent = sorted(tf for tf in wanted if tf not in present)
        if absent:
            raise DataError(missing_timeframes_message(symbol, absent, store.row_counts(),
                                                       store.base_timeframe))
        chosen = [tf for tf in DEFAULT_HIERARCHY if tf in wanted]
    if not chosen:
        raise DataError(f"{symbol.upper()} has none of the discovery timeframes ({known}) in its "
                        f"ATLAS; run `stratforge data atlas --symbol {symbol.upper()}`")
    return chosen


def drill_windows(parent_ts: np.ndarray, parent_tf: Timeframe, child_ts: np.ndarray,
                  child_tf: Timeframe, session: Session) -> tuple[np.ndarray, np.ndarray]:
    """The drill-down window ``[start, end)`` (UTC ns) each parent bar opens on the child
    timeframe, before merging.

    ``start`` is the parent bar's start; ``end`` the later of the parent bar's end
    (``bar_end_times``) and the end of the ``WINDOW_MIN_CHILD_BARS``-th child bar starting at
    or after ``start`` (the last child bar when the series ends sooner). ``child_ts`` is the
    child timeframe's whole series of bar starts.
    """
    starts = np.asarray(parent_ts, dtype=np.int64)
    ends = bar_end_times(starts, parent_tf, session)
    if len(child_ts) and len(starts):
        first = np.searchsorted(child_ts, starts, side="left")
        last = np.minimum(first + WINDOW_MIN_CHILD_BARS - 1, len(child_ts) - 1)
        ends = np.maximum(ends, bar_end_times(child_ts[last], child_tf, session))
    return starts, ends


def merge_windows(starts: np.ndarray, ends: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge overlapping half-open windows ``[start, end)``.

    Returns the merged starts and ends (sorted, disjoint) and, per merged window, the index of
    the input window that keeps the parent chain: the longest one (``end - start``); on a tie
    the earliest start, then the lowest input index. Windows that only touch (one ends where
    the next starts) do not overlap and stay apart.
    """
    starts = np.asarray(starts, dtype=np.int64)
    ends = np.asarray(ends, dtype=np.int64)
    if len(starts) == 0:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty.copy(), empty.copy()
    order = np.argsort(starts, kind="stable")
    s, e = starts[order], ends[order]
    reach = np.maximum.accumulate(e)
    new = np.ones(len(s), dtype=bool)
    new[1:] = s[1:] >= reach[:-1]
    firsts = np.flatnonzero(new)
    group = np.cumsum(new) - 1
    length = e - s
    longest = np.maximum.reduceat(length, firsts)
    candidates = np.flatnonzero(length == longest[group])
    _, pick = np.unique(group[candidates], return_index=True)
    return s[firsts], np.maximum.reduceat(e, firsts), order[candidates[pick]]


def _empty_context() -> pd.DataFrame:
    columns: dict[str, Any] = {name: np.empty(0) for name in VECTOR_INPUTS}
    columns["ts"] = pd.DatetimeIndex([], dtype="datetime64[ns, UTC]").array
    columns["cascade_detected"] = np.empty(0, dtype=bool)
    return pd.DataFrame(columns)


def _vectors(symbol: str, hierarchy: list[Timeframe], depth: int, own: pd.DataFrame,
             session: Session, home: Path | str | None) -> pd.DataFrame:
    """Feature vectors of the rows ``own`` of level ``depth`` over the whole hierarchy.

    Each row's vector depends only on its own state row and on the parent (one level up) and
    root timeframes, so those are read whole and the other levels are left empty.
    """
    needed = {hierarchy[0], hierarchy[max(depth - 1, 0)]} - {hierarchy[depth]}
    frames = {tf: (read_states(symbol, tf, columns=VECTOR_INPUTS, home=home) if tf in needed
                   else _empty_context()) for tf in hierarchy}
    frames[hierarchy[depth]] = own
    return feature_vectors(frames, hierarchy, session=session)[hierarchy[depth]]


def _oracle(symbol: str, tf: Timeframe, rows: np.ndarray, sides: np.ndarray,
            tick_size: float, home: Path | str | None
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Close, MFE and MAE of the bars at positions ``rows``, reading only the ATLAS months
    that hold them and their lookahead. The excursions are measured on prices in ticks (whole
    ticks on the grid, so exact) and returned in price units."""
    lookahead = oracle_lookahead(tf)
    months = atlas_months(symbol, tf, home=home)
    firsts = np.array([m.first_row for m in months], dtype=np.int64)
    total = months[-1].first_row + months[-1].rows
    first_month = np.searchsorted(firsts, rows, side="right") - 1
    last_month = np.searchsorted(firsts, np.minimum(rows + lookahead, total - 1),
                                 side="right") - 1
    needed = np.zeros(len(months) + 1, dtype=np.int64)
    np.add.at(needed, first_month, 1)
    np.add.at(needed, last_month + 1, -1)
    wanted = np.flatnonzero(np.cumsum(needed)[:-1] > 0)
    store = AtlasStore.open(symbol, home)
    parts = [store.read_month(tf, month_number(months[i].name)) for i in wanted]
    offset = np.zeros(len(months), dtype=np.int64)
    offset[wanted] = np.cumsum([0] + [len(p) for p in parts[:-1]])
    local = rows - firsts[first_month] + offset[first_month]
    high, low, close = (np.concatenate([getattr(p, name) for p in parts])
                        for name in ("high", "low", "close"))
    high, low, ticks = (prices_in_ticks(a, tick_size) for a in (high, low, close))
    mfe, mae = oracle_excursions(high, low, ticks, local, sides, lookahead)
    return close[local], mfe * tick_size, mae * tick_size


def _scan_level(symbol: str, hierarchy: list[Timeframe], depth: int,
                parents: pd.DataFrame | None, parent_tf: Timeframe | None,
                instrument: Instrument, home: Path | str | None,
                progress: ProgressCallback, scan: str = "drill"
                ) -> tuple[pd.DataFrame, LevelReport]:
    started = time.perf_counter()
    tf = hierarchy[depth]
    session = instrument.session
    status = ensure_states(symbol, tf, home=home, progress=progress)
    flags = read_states(symbol, tf, columns=("ts", "cascade_detected", "structure_confirmed"),
                        home=home)
    child_ts = flags["ts"].array.asi8
    candidates = np.flatnonzero(flags["cascade_detected"].to_numpy()
                                | flags["structure_confirmed"].to_numpy())
    del flags
    full_scan = scan == "full" or parents is None or parent_tf is None
    if full_scan:
        rows, windows, scanned = candidates, 0, len(child_ts)
        chains = ["[]"] * len(rows)
    else:
        starts, ends = drill_windows(parents["ts"].array.asi8, parent_tf, child_ts, tf,
                                     session)
        w_start, w_end, owner = merge_windows(starts, ends)
        lo = np.searchsorted(child_ts, w_start, side="left")
        hi = np.searchsorted(child_ts, w_end, side="left")
        window = np.searchsorted(lo, candidates, side="right") - 1
        inside = (window >= 0) & (candidates < hi[np.maximum(window, 0)])
        rows, window = candidates[inside], window[inside]
        windows, scanned = len(w_start), int((hi - lo).sum())
        parent_chain = child_chains(parents)
        chains = [parent_chain[i] for i in owner[window]]
    if len(rows) == 0:
        frame = empty_patterns()
    else:
        states = read_states(symbol, tf, rows=rows, home=home)
        vectors = _vectors(symbol, hierarchy, depth, states, session, home)
        sides = oracle_sides(states["z"].to_numpy())
        close, mfe, mae = _oracle(symbol, tf, rows, sides, instrument.tick_size, home)
        frame = make_patterns(symbol, tf, depth, states, vectors, close, chains, mfe, mae,
                              instrument.tick_size)
    report = LevelReport(str(tf), depth, scanned, windows, len(frame), len(frame) == 0,
                         round(time.perf_counter() - started, 3), full_scan, status)
    return frame, report


def _encode_patterns(frame: pd.DataFrame) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink, compression="zstd")
    return sink.getvalue()


def _decode_patterns(path: Path) -> pd.DataFrame:
    return coerce_patterns(pq.read_table(path).to_pandas())


def _checkpoint_key(symbol: str, hierarchy: list[Timeframe], instrument: Instrument,
                    home: Path | str | None, scan: str = "drill") -> dict[str, Any]:
    key = {"discovery_version": DISCOVERY_VERSION, "features_version": FEATURES_VERSION,
           "symbol": symbol, "hierarchy": [str(tf) for tf in hierarchy],
           "atlas": {str(tf): atlas_fingerprint(symbol, tf, home=home) for tf in hierarchy},
           "tick_size": instrument.tick_size, "session": instrument.session.describe(),
           "window_min_child_bars": WINDOW_MIN_CHILD_BARS,
           "lookahead": {str(tf): ORACLE_LOOKAHEAD[str(tf)] for tf in hierarchy}}
    if scan != "drill":  # keeps the keys of existing drill-down checkpoints valid
        key["scan"] = scan
    return key


def _resume(checkpoint: Path, key: dict[str, Any]
            ) -> tuple[list[LevelReport], list[pd.DataFrame], list[dict[str, Any]]]:
    """Levels of a matching checkpoint (each file checked against its sha256); a checkpoint
    of other data or settings is deleted."""
    path = checkpoint / STATE_FILE
    try:
        state = read_json(path) if path.exists() else None
    except (OSError, ValueError):
        state = None
    if state is None or state.get("key") != key:
        shutil.rmtree(checkpoint, ignore_errors=True)
        return [], [], []
    reports, frames, records = [], [], []
    for record in state.get("levels", []):
        file = checkpoint / record["file"]
        if not file.exists() or sha256_bytes(file.read_bytes()) != record["sha256"]:
            break
        reports.append(LevelReport(**{**record["report"], "resumed": True}))
        frames.append(_decode_patterns(file))
        records.append(record)
    return reports, frames, records


@contextmanager
def _exclusive(folder: Path, symbol: str) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise DataError(f"another discovery of {symbol} is running in {folder}; wait for it "
                            "to finish and try again") from exc
        yield


def discover_patterns(symbol: str, *, timeframes: Sequence[str | Timeframe] | str | None = None,
                      home: Path | str | None = None, fresh: bool = False,
                      scan: str = "drill",
                      progress: ProgressCallback = no_progress) -> DiscoveryResult:
    """Find the patterns of ``symbol`` from the top timeframe down (the fractal drill-down).

    ``timeframes`` narrows the hierarchy (default: every ``DEFAULT_HIERARCHY`` timeframe in
    the ATLAS). Levels scan top down; a level with no pattern is skipped and the next one
    drills from the last level that had patterns; until some level has patterns, each level
    scans all its bars. After each level its patterns and a state file are checkpointed under
    ``<home>/discovery/<SYMBOL>/checkpoint/`` (atomically), and ``progress("discover", done,
    total, message)`` is called; a later run with the same symbol, hierarchy, ATLAS files and
    settings resumes at the next level and gives the same result. ``fresh`` deletes the
    checkpoint and starts over. ``scan="full"`` scans every bar of every level instead of
    drilling down (each level is then a full scan; the research pipeline uses it, because a
    narrow funnel misses short-lived edges of the lower timeframes). The patterns of all
    levels (``PATTERN_COLUMNS``, ordered by depth then time) are also written to
    ``<home>/discovery/<SYMBOL>/patterns.parquet``.
    """
    if scan not in SCAN_MODES:
        raise ConfigError(f"scan must be one of {', '.join(SCAN_MODES)}, got {scan!r}")
    symbol = symbol.upper()
    instrument = get_instrument(symbol, home)
    hierarchy = resolve_hierarchy(symbol, timeframes, home=home)
    folder = resolve_home(home) / "discovery" / symbol
    checkpoint = folder / CHECKPOINT_DIR
    with _exclusive(folder, symbol):
        if fresh:
            shutil.rmtree(checkpoint, ignore_errors=True)
            (folder / PATTERNS_FILE).unlink(missing_ok=True)
        key = _checkpoint_key(symbol, hierarchy, instrument, home, scan)
        reports, frames, records = _resume(checkpoint, key)
        for depth in range(len(reports), len(hierarchy)):
            last = next((i for i in range(len(frames) - 1, -1, -1) if len(frames[i])), None)
            parents = None if last is None else frames[last]
            parent_tf = None if last is None else hierarchy[last]
            frame, report = _scan_level(symbol, hierarchy, depth, parents, parent_tf,
                                        instrument, home, progress, scan)
            data = _encode_patterns(frame)
            name = f"level-{depth:02d}-{hierarchy[depth]}.parquet"
            atomic_write_bytes(checkpoint / name, data)
            records.append({"file": name, "sha256": sha256_bytes(data),
                            "report": report.to_dict()})
            atomic_write_json(checkpoint / STATE_FILE, {"key": key, "levels": records})
            frames.append(_decode_patterns(checkpoint / name))
            reports.append(report)
            progress("discover", depth + 1, len(hierarchy),
                     f"{symbol} {hierarchy[depth]}: {report.patterns} patterns")
        found = [frame for frame in frames if len(frame)]
        patterns = coerce_patterns(pd.concat(found, ignore_index=True)) if found \
            else empty_patterns()
        atomic_write_bytes(folder / PATTERNS_FILE, _encode_patterns(patterns))
    return DiscoveryResult(symbol, [str(tf) for tf in hierarchy], patterns, reports, folder)


def load_patterns(symbol: str, *, home: Path | str | None = None) -> pd.DataFrame:
    """The patterns of the last finished discovery of ``symbol`` (``patterns.parquet``)."""
    path = resolve_home(home) / "discovery" / symbol.upper() / PATTERNS_FILE
    if not path.exists():
        raise DataError(f"no patterns for {symbol.upper()} in {path.parent}; run "
                        f"`stratforge discover --symbol {symbol.upper()}` first")
    return _decode_patterns(path)
