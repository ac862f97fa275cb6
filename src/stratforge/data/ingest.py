"""Ingest: validated bars from files (or a generator) into a symbol's base partitions.

Rules: every file is validated on its own (errors name the file and row) before anything is
written; files may not overlap each other; new bars that overlap bars already stored are
refused unless ``replace`` is given, in which case the stored bars inside the new span are
replaced. Later data appends. All partitions touched are committed in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stratforge.data.bars import RepairReport, repair_bars, validate_bars
from stratforge.data.parquet_io import decode_bars, encode_bars
from stratforge.data.readers import read_bar_file
from stratforge.data.resample import BarArrays
from stratforge.data.store import AtlasStore, Transaction, file_entry, file_name, iso, months_of
from stratforge.errors import DataError
from stratforge.progress import ProgressCallback, no_progress
from stratforge.timeframes import Timeframe, parse_timeframe

NS = 1_000_000_000


@dataclass
class IngestReport:
    """What an ingest did."""

    symbol: str
    base_timeframe: str
    files: list[str]
    rows_read: int = 0
    rows_written: int = 0
    rows_replaced: int = 0
    repairs: dict[str, str] = field(default_factory=dict)
    months_written: list[str] = field(default_factory=list)
    first: str = ""
    last: str = ""


def infer_timeframe(ts: np.ndarray, source: str) -> Timeframe:
    """The bar resolution of sorted timestamps: their smallest step, which must divide a day
    and be a whole number of seconds."""
    steps = np.diff(ts)
    if len(steps) == 0:
        raise DataError(f"{source}: one bar is not enough to tell the bar size; pass "
                        "--timeframe", source=source, rule="timeframe")
    step = int(steps.min())
    if step % NS or 86_400 % (step // NS):
        raise DataError(f"{source}: smallest step between bars is {step / NS:g} s, which is not "
                        "a bar size that divides a day; pass --timeframe", source=source,
                        rule="timeframe")
    seconds = step // NS
    name = f"{seconds // 3600}h" if seconds % 3600 == 0 else (
        f"{seconds // 60}m" if seconds % 60 == 0 else f"{seconds}s")
    return parse_timeframe(name)


def check_grid(bars: BarArrays, timeframe: Timeframe, source: str) -> None:
    """Raise unless every timestamp is a whole multiple of an intraday ``timeframe``."""
    if not timeframe.intraday:
        raise DataError(f"{source}: base bars must be intraday (1h or finer), got {timeframe}",
                        source=source, rule="timeframe")
    off = bars.ts % timeframe.nanoseconds
    if off.any():
        i = int(np.argmax(off != 0))
        raise DataError(
            f"{source} row {i + 1}: timestamp {iso(bars.ts[i])} is not on the {timeframe} grid "
            f"(rule: bar timestamps are bar start times on the {timeframe} grid). Check the "
            "bar size (--timeframe) and that the file stamps bars with their start time",
            source=source, row=i + 1, rule="timeframe grid")


def read_validated(path: Path, *, fmt: str, tz: str | None, repair: bool,
                   instrument_id: int | None) -> tuple[BarArrays, RepairReport | None]:
    """One file's bars, validated (after repair when asked)."""
    frame = read_bar_file(path, fmt=fmt, tz=tz, instrument_id=instrument_id)
    report = None
    if repair:
        frame, report = repair_bars(frame, str(path))
    bars = validate_bars(frame, str(path))
    return BarArrays.from_frame(bars), report


def _merge_files(parts: list[tuple[str, BarArrays]], repair: bool) -> BarArrays:
    parts = sorted(parts, key=lambda p: int(p[1].ts[0]) if len(p[1]) else 0)
    owner = np.concatenate([np.full(len(b), i) for i, (_, b) in enumerate(parts)])
    merged = BarArrays.concat([b for _, b in parts])
    order = np.argsort(merged.ts, kind="stable")
    merged, owner = merged.take(order), owner[order]
    repeated = np.flatnonzero(np.diff(merged.ts) == 0)
    if len(repeated) and not repair:
        i = int(repeated[0])
        raise DataError(
            f"{parts[owner[i]][0]} and {parts[owner[i + 1]][0]} both hold a bar at "
            f"{iso(merged.ts[i])} ({len(repeated)} shared timestamps); ingest overlapping files "
            "separately with --replace, or pass --repair to keep the later file's bars",
            rule="files overlap")
    if len(repeated):
        keep = np.ones(len(merged), dtype=bool)
        keep[repeated] = False  # keep the last of each run of equal timestamps
        merged = merged.take(keep)
    return merged


def ingest_files(paths: list[Path | str], symbol: str, *, fmt: str = "auto",
                 tz: str | None = None, repair: bool = False, replace: bool = False,
                 timeframe: str | None = None, instrument_id: int | None = None,
                 home: Path | str | None = None,
                 progress: ProgressCallback = no_progress) -> IngestReport:
    """Read, validate and store bar files as the base timeframe of ``symbol``."""
    if not paths:
        raise DataError("no files given; name one or more CSV, Parquet or DBN files")
    parts: list[tuple[str, BarArrays]] = []
    repairs: dict[str, str] = {}
    for done, path in enumerate(paths, start=1):
        bars, fixed = read_validated(Path(path), fmt=fmt, tz=tz, repair=repair,
                                     instrument_id=instrument_id)
        if fixed is not None:
            repairs[str(path)] = fixed.describe()
        parts.append((str(path), bars))
        progress("read", done, len(paths), str(path))
    merged = _merge_files(parts, repair)
    if len(merged) == 0:
        raise DataError(f"{', '.join(map(str, paths))}: no bars to ingest")
    source = ", ".join(str(p) for p in paths)
    store = AtlasStore.open(symbol, home)
    tf = parse_timeframe(timeframe) if timeframe else (
        store.base_timeframe or infer_timeframe(merged.ts, source))
    check_grid(merged, tf, source)
    report = write_base_bars(store, merged, tf, replace=replace, source=source)
    report.files = [str(p) for p in paths]
    report.rows_read = sum(len(b) for _, b in parts)
    report.repairs = repairs
    return report


def write_base_bars(store: AtlasStore, bars: BarArrays, timeframe: Timeframe, *,
                    replace: bool = False, replace_all: bool = False, source: str = "bars",
                    extra_files: dict[str, bytes] | None = None) -> IngestReport:
    """Store sorted, validated ``bars`` as the base timeframe in one transaction.

    ``replace`` replaces stored bars inside the new span; ``replace_all`` empties the store
    first (derived timeframes included). ``extra_files`` (relative path -> bytes) are
    committed alongside, e.g. a synthetic market's specification.
    """
    with store.transaction() as txn:
        if replace_all:
            for rel in list(txn.manifest["files"]):
                txn.delete(rel)
        else:
            _check_base_timeframe(txn, timeframe, source)
        first, last = int(bars.ts[0]), int(bars.ts[-1])
        replaced = 0
        months = np.unique(months_of(bars.ts))
        bounds = np.searchsorted(months_of(bars.ts), np.append(months, months[-1] + 1))
        written = []
        for k, month in enumerate(months):
            rel = file_name(timeframe, int(month))
            new = bars.take(slice(int(bounds[k]), int(bounds[k + 1])))
            if rel in txn.manifest["files"]:
                new, overlap = _merge_with_stored(store, rel, new, first, last)
                if overlap and not replace:
                    raise DataError(
                        f"{source}: {overlap} bars overlap bars already stored for "
                        f"{store.symbol} between {iso(first)} and {iso(last)}; pass --replace "
                        "to replace the stored bars in that span", rule="no overlap")
                replaced += overlap
            data = encode_bars(new)
            txn.put(rel, data, file_entry(data, new))
            written.append(rel)
        for rel, data in (extra_files or {}).items():
            txn.put(rel, data, None)
        txn.manifest["base_timeframe"] = str(timeframe)
        txn.manifest["symbol"] = store.symbol
        txn.commit()
    return IngestReport(store.symbol, str(timeframe), [source], rows_read=len(bars),
                        rows_written=len(bars), rows_replaced=replaced,
                        months_written=[r.split("/")[1][:-8] for r in written],
                        first=iso(first), last=iso(last))


def _check_base_timeframe(txn: Transaction, timeframe: Timeframe, source: str) -> None:
    current: Any = txn.manifest.get("base_timeframe")
    if current and current != str(timeframe):
        raise DataError(f"{source}: bars are {timeframe} but {txn.store.symbol} is stored at "
                        f"{current}; resample the file to {current} or use another symbol name",
                        rule="base timeframe")


def _merge_with_stored(store: AtlasStore, rel: str, new: BarArrays, first: int,
                       last: int) -> tuple[BarArrays, int]:
    stored = decode_bars(store.root / rel)
    inside = (stored.ts >= first) & (stored.ts <= last)
    kept = stored.take(~inside)
    merged = BarArrays.concat([kept, new])
    return merged.take(np.argsort(merged.ts, kind="stable")), int(inside.sum())
