"""Ingest: validated bars from files (or a generator) into a symbol's base partitions.

The bar size (base timeframe, 1s to 1D) is detected from the bars' spacing; daily bars are
stored at the start of their session trade date, like the 1D bars the ATLAS builds. A store
holds one bar size: bars of another size are refused unless the store is rebuilt (replace).

Rules: every file is validated on its own (errors name the file and row) before anything is
written; files may not overlap each other; new bars that overlap bars already stored are
refused unless ``replace`` is given, in which case the stored bars inside the new span are
replaced. Later data appends. All partitions touched are committed in one transaction. The
symbol must be a known instrument (``known_instrument``) and a name, not a path
(``stratforge.names``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stratforge.data.bars import RepairReport, repair_bars, validate_bars
from stratforge.data.parquet_io import decode_bars, encode_bars
from stratforge.data.readers import read_bar_file
from stratforge.data.resample import BarArrays
from stratforge.data.store import (
    JOURNAL,
    LOCK_FILES,
    MANIFEST,
    AtlasStore,
    Transaction,
    file_entry,
    file_name,
    iso,
    months_of,
)
from stratforge.errors import ConfigError, DataError
from stratforge.instruments import Instrument, get_instrument
from stratforge.names import check_symbol
from stratforge.progress import ProgressCallback, no_progress
from stratforge.sessions import Session
from stratforge.timeframes import Timeframe, parse_timeframe

NS = 1_000_000_000
DAY_NS = 86_400 * NS
DAILY_MIN_NS = 20 * 3600 * NS   # closest bars this far apart are daily (DST days are 23-25 h)
WEEKLY_MIN_NS = 6 * DAY_NS      # closest bars this far apart are weekly or coarser
ONE_DAY = parse_timeframe("1D")


@dataclass
class IngestReport:
    """What an ingest did.

    ``timeframe_source`` says where ``base_timeframe`` came from: ``"detected"`` (the bars'
    spacing), ``"given"`` (the ``timeframe`` argument) or ``"store"`` (the store's base, when a
    single bar cannot show a spacing). ``rebuilt_from`` is the previous base timeframe when
    ``replace`` rebuilt a store of another bar size, else empty.
    """

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
    timeframe_source: str = ""
    rebuilt_from: str = ""

    def describe_timeframe(self) -> str:
        """One line such as 'bar size 1D, detected from the bars' spacing'."""
        how = {"detected": "detected from the bars' spacing", "given": "as given",
               "store": f"the base of the {self.symbol} store (one bar shows no spacing)"}
        text = f"bar size {self.base_timeframe}, {how.get(self.timeframe_source, 'as stored')}"
        if self.base_timeframe == str(ONE_DAY):
            text += "; each daily bar stored at the start of its session trade date"
        return text


def infer_timeframe(ts: np.ndarray, source: str) -> Timeframe:
    """The bar size of sorted timestamps, from the closest two bars.

    Bars at least 20 hours apart are daily (1D): calendar gaps (weekends, holidays) and the
    23- or 25-hour days of a daylight-saving change do not matter. Closer bars give an intraday
    bar size, which must be a whole number of seconds that divides a day. Weekly or coarser
    bars are refused: ingest daily or finer bars and let the ATLAS build 1W.
    """
    steps = np.diff(ts)
    steps = steps[steps > 0]
    if len(steps) == 0:
        raise DataError(f"{source}: one bar is not enough to tell the bar size; pass "
                        "--timeframe", source=source, rule="timeframe")
    step = int(steps.min())
    if step >= WEEKLY_MIN_NS:
        raise DataError(f"{source}: the closest bars are {step / DAY_NS:g} days apart: weekly "
                        "or coarser bars are not a supported base (rule: base bars 1s to 1D). "
                        "Ingest daily or finer bars; the ATLAS builds 1W from them",
                        source=source, rule="timeframe")
    if step >= DAILY_MIN_NS:
        return ONE_DAY
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
    off = bars.ts % timeframe.nanoseconds
    if off.any():
        i = int(np.argmax(off != 0))
        raise DataError(
            f"{source} row {i + 1}: timestamp {iso(bars.ts[i])} is not on the {timeframe} grid "
            f"(rule: bar timestamps are bar start times on the {timeframe} grid). Check the "
            "bar size (--timeframe) and that the file stamps bars with their start time",
            source=source, row=i + 1, rule="timeframe grid")


def book_daily_bars(bars: BarArrays, session: Session, source: str) -> BarArrays:
    """Daily bars restamped at the first instant of their session trade date.

    That is where the ATLAS puts a 1D bar it builds from intraday bars, so a daily-base store
    and a derived 1D look alike (US equities: local midnight New York; CME futures: 17:00
    Chicago the evening before). Bars that all sit at UTC midnight carry dates only: each date
    is the trade date. Other timestamps are booked like intraday bars (a bar stamped at the
    close, or at the session open the evening before, lands on its own trade date). Two bars
    on one trade date are refused.
    """
    calendar = session.trade_days_covering(bars.ts)
    if not (bars.ts % DAY_NS).any():
        day = bars.ts // DAY_NS - calendar.dates[0].astype(np.int64)
    else:
        day = calendar.index_of(bars.ts)
    booked = calendar.day_start[day]
    repeated = np.flatnonzero(np.diff(booked) <= 0)
    if len(repeated):
        i = int(repeated[0])
        raise DataError(
            f"{source} rows {i + 1} and {i + 2}: bars at {iso(bars.ts[i])} and "
            f"{iso(bars.ts[i + 1])} both fall on trade date {calendar.dates[day[i + 1]]} "
            f"(session {session.describe()}) (rule: one daily bar per trade date). Check the "
            "file's time zone (--tz) or that it holds daily bars", source=source, row=i + 2,
            rule="one daily bar per trade date")
    return BarArrays(booked, bars.open, bars.high, bars.low, bars.close, bars.volume)


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
                 home: Path | str | None = None, instrument: Instrument | None = None,
                 progress: ProgressCallback = no_progress) -> IngestReport:
    """Read, validate and store bar files as the base timeframe of ``symbol``.

    The bar size is detected from the bars' spacing (``infer_timeframe``) unless
    ``timeframe`` is given; bars 1s to 1D are accepted. Daily bars are stored at the start of
    their trade date on the instrument's session (``book_daily_bars``; ``instrument`` defaults
    to ``get_instrument(symbol, home)``, and an unknown instrument is refused before any file
    is read: see ``known_instrument``). ``symbol`` follows ``stratforge.names``. Bars whose
    size differs from the store's base are
    refused, naming both, unless ``replace`` is given: then the store is rebuilt from these
    bars alone (every stored timeframe is dropped).
    """
    symbol = check_symbol(symbol)
    if not paths:
        raise DataError("no files given; name one or more CSV, Parquet or DBN files")
    source = ", ".join(str(p) for p in paths)
    instrument = instrument if instrument is not None else known_instrument(symbol, home, source)
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
        raise DataError(f"{source}: no bars to ingest")
    store = AtlasStore.open(symbol, home)
    stored = store.base_timeframe
    tf, how = _bar_size(merged, timeframe, stored, source)
    rebuild = stored is not None and stored != tf
    if rebuild and not replace:
        raise DataError(
            f"{source}: these bars are {tf} bars ({_how_text(how)}) but the {store.symbol} "
            f"store holds {stored} bars (rule: one bar size per store). Ingest them under "
            f"another --symbol, or pass --replace to delete the stored {stored} bars (and "
            f"every timeframe built from them) and rebuild {store.symbol} from these {tf} bars",
            source=source, rule="base timeframe")
    if tf == ONE_DAY:
        merged = book_daily_bars(merged, instrument.session, source)
    else:
        check_grid(merged, tf, source)
    report = write_base_bars(store, merged, tf, replace=replace, replace_all=rebuild,
                             source=source)
    report.files = [str(p) for p in paths]
    report.rows_read = sum(len(b) for _, b in parts)
    report.repairs = repairs
    report.timeframe_source = how
    report.rebuilt_from = str(stored) if rebuild else ""
    return report


def _bar_size(bars: BarArrays, given: str | None, stored: Timeframe | None,
              source: str) -> tuple[Timeframe, str]:
    """The bar size of ``bars`` and where it came from (see ``IngestReport``)."""
    detected = infer_timeframe(bars.ts, source) if len(bars) > 1 else None
    if given is None:
        if detected is not None:
            return detected, "detected"
        if stored is not None:
            return stored, "store"
        infer_timeframe(bars.ts, source)  # raises: one bar shows no spacing
    tf = parse_timeframe(str(given))
    if not (tf.intraday or tf == ONE_DAY):
        raise DataError(f"{source}: --timeframe {tf} is not a supported base (rule: base bars "
                        "1s to 1D). Ingest daily or finer bars; the ATLAS builds 1W from them",
                        source=source, rule="timeframe")
    if detected is not None and (detected == ONE_DAY) != (tf == ONE_DAY):
        raise DataError(f"{source}: --timeframe {tf} but the bars' spacing says {detected} "
                        f"(closest bars {_closest(bars.ts)} apart) (rule: bar size matches the "
                        "bars). Pass the bar size the file holds, or leave --timeframe out",
                        source=source, rule="timeframe")
    return tf, "given"


def _closest(ts: np.ndarray) -> str:
    steps = np.diff(ts)
    step = int(steps[steps > 0].min()) // NS
    return str(pd.Timedelta(seconds=step))


def _how_text(how: str) -> str:
    return {"detected": "detected from their spacing", "given": "as given by --timeframe",
            "store": "the store's base"}[how]


def known_instrument(symbol: str, home: Path | str | None, source: str) -> Instrument:
    """The instrument of ``symbol``, or a DataError saying how to define it.

    The rule for unknown instruments: a symbol is ingested only when it is a known instrument
    (built in, or in ``<home>/instruments.yaml``), because ``data info``, ``run`` and every
    other command need its tick size, point value and session. So whatever ingest accepts,
    they accept too."""
    try:
        return get_instrument(symbol, home)
    except ConfigError as exc:
        raise DataError(
            f"{source}: {symbol.upper()} is not a known instrument ({exc}) (rule: known "
            "instrument; its session books daily bars on their trade dates, and its tick size "
            "and point value price every trade). Add it to instruments.yaml in the stratforge "
            "home (for a US stock: tick_size: 0.01, point_value: 1, session: us_equity_rth; see "
            "docs/instruments.md), then ingest again", source=source,
            rule="known instrument") from exc


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
            for extra in store.root.iterdir():  # e.g. a synthetic market's specification
                if extra.is_file() and extra.name not in (MANIFEST, JOURNAL, *LOCK_FILES):
                    txn.delete(extra.name)
            txn.manifest.pop("built", None)
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
        raise DataError(f"{source}: these bars are {timeframe} bars but the {txn.store.symbol} "
                        f"store holds {current} bars (rule: one bar size per store). Use "
                        "another symbol, or replace the whole store", rule="base timeframe")


def _merge_with_stored(store: AtlasStore, rel: str, new: BarArrays, first: int,
                       last: int) -> tuple[BarArrays, int]:
    stored = decode_bars(store.root / rel)
    inside = (stored.ts >= first) & (stored.ts <= last)
    kept = stored.take(~inside)
    merged = BarArrays.concat([kept, new])
    return merged.take(np.argsort(merged.ts, kind="stable")), int(inside.sum())
