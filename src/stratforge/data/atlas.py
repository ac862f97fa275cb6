"""Building the multi-timeframe ATLAS from a symbol's base bars, incrementally and resumably.

Output month ``m`` of any timeframe depends only on base months ``m`` and ``m + 1`` (a bar
starts no later than the base bars it aggregates, and at most a week earlier). Each output
month therefore carries a *source signature*: a hash of those two base partitions, the
session and the resampler version. A rebuild recomputes only months whose signature changed
and rewrites only files whose bytes changed.

Work in progress is staged under ``.build/`` with a progress file updated after every month,
so an interrupted build leaves the committed store untouched and the next build picks up where
it stopped; everything is committed in one journaled transaction at the end.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stratforge.data.atomic import atomic_write_json, read_json, sha256_bytes, sha256_file
from stratforge.data.parquet_io import encode_bars
from stratforge.data.resample import BarArrays, resample_chain
from stratforge.data.store import (
    AtlasStore,
    Transaction,
    file_entry,
    file_name,
    month_name,
    months_of,
)
from stratforge.data.timeframe_choice import atlas_targets, can_build
from stratforge.errors import DataError
from stratforge.instruments import Instrument, get_instrument
from stratforge.progress import ProgressCallback, no_progress
from stratforge.sessions import Session
from stratforge.timeframes import ATLAS_TIMEFRAMES, Timeframe

RESAMPLER_VERSION = "1"
BUILD_DIR = ".build"
_LOOKAHEAD_NS = 8 * 86_400 * 1_000_000_000  # a weekly bar never reaches further into month m+1


@dataclass
class BuildReport:
    """What one atlas build did."""

    symbol: str
    base_timeframe: str
    timeframes: list[str]
    skipped_timeframes: list[str] = field(default_factory=list)
    months_total: int = 0
    months_rebuilt: list[str] = field(default_factory=list)
    months_resumed: int = 0
    files_written: int = 0
    files_unchanged: int = 0
    files_deleted: int = 0
    seconds: float = 0.0


def session_fingerprint(session: Session) -> str:
    """A stable text of everything in a session that changes bar boundaries."""
    return json.dumps([session.timezone, str(session.open), str(session.close),
                       list(session.weekdays)])


def source_signature(session: Session, base: dict[int, dict[str, Any]], month: int) -> str:
    """Hash of everything output month ``month`` is built from (see the module docstring)."""
    inputs = [RESAMPLER_VERSION, session_fingerprint(session),
              base.get(month, {}).get("sha256"), base.get(month + 1, {}).get("sha256")]
    return sha256_bytes(json.dumps(inputs).encode())


class _BaseReader:
    """Reads base months once each while the build walks forward."""

    def __init__(self, store: AtlasStore, base_tf: Timeframe, months: set[int]) -> None:
        self.store, self.base_tf, self.months = store, base_tf, months
        self.cache: dict[int, BarArrays] = {}

    def month(self, month: int) -> BarArrays | None:
        if month not in self.months:
            return None
        if month not in self.cache:
            self.cache = {k: v for k, v in self.cache.items() if k >= month - 1}
            self.cache[month] = self.store.read_month(self.base_tf, month)
        return self.cache[month]

    def window(self, month: int) -> BarArrays:
        """Base bars of ``month`` plus the first week of the month after."""
        parts = [p for p in (self.month(month), self.month(month + 1)) if p is not None]
        if len(parts) == 2:
            head = parts[1]
            parts[1] = head.take(slice(0, int(np.searchsorted(
                head.ts, head.ts[0] + _LOOKAHEAD_NS))))
        return BarArrays.concat(parts)


def _staged_record_valid(txn: Transaction, record: dict[str, Any]) -> bool:
    for rel, action in record.items():
        if action["action"] == "write":
            staged = txn.staging / rel
            if not staged.exists() or sha256_file(staged) != action["entry"]["sha256"]:
                return False
        elif action["action"] == "keep":
            current = txn.manifest["files"].get(rel)
            if current is None or current["sha256"] != action["entry"]["sha256"]:
                return False
    return True


def _apply_record(txn: Transaction, record: dict[str, Any], report: BuildReport) -> None:
    for rel, action in record.items():
        if action["action"] == "write":
            txn.adopt(rel, action["entry"])
            report.files_written += 1
        elif action["action"] == "keep":
            txn.manifest["files"][rel] = action["entry"]
            report.files_unchanged += 1
        else:
            txn.delete(rel)
            report.files_deleted += 1


def _build_month(txn: Transaction, reader: _BaseReader, month: int, targets: list[Timeframe],
                 session: Session) -> dict[str, Any]:
    window = reader.window(month)
    outputs = resample_chain(window, reader.base_tf, targets, session)
    record: dict[str, Any] = {}
    for tf, bars in outputs.items():
        rel = file_name(tf, month)
        inside = bars.take(months_of(bars.ts) == month) if len(bars) else bars
        current = txn.manifest["files"].get(rel)
        if len(inside) == 0:
            if current is not None:
                record[rel] = {"action": "delete"}
            continue
        data = encode_bars(inside)
        entry = file_entry(data, inside)
        if current is not None and current["sha256"] == entry["sha256"]:
            record[rel] = {"action": "keep", "entry": entry}
        else:
            txn.put(rel, data, None)
            record[rel] = {"action": "write", "entry": entry}
    return record


def build_atlas(symbol: str, timeframes: list[Timeframe] | None = None, *,
                home: Path | str | None = None, instrument: Instrument | None = None,
                progress: ProgressCallback = no_progress) -> BuildReport:
    """Resample the base bars of ``symbol`` into coarser timeframes.

    ``timeframes`` None builds every ATLAS timeframe the base can make (at or above it; the
    finer ones are listed as skipped in the report: a 1h base gives 4h, 1D, 1W; a 1D base
    gives 1W). Naming a timeframe the base cannot make (finer than the base) is a DataError
    that names the base and what is stored. Only months whose inputs changed are recomputed;
    an interrupted build resumes from its staged work.
    """
    started = time.perf_counter()
    store = AtlasStore.open(symbol, home)
    base_tf = store.base_timeframe
    if not store.exists or base_tf is None:
        raise DataError(f"no bars for {symbol.upper()} in {store.root}; ingest a file with "
                        f"`stratforge data ingest FILE --symbol {symbol.upper()}` or make a "
                        f"synthetic market with `stratforge data synth --symbol {symbol.upper()}`")
    try:
        targets, left_out = atlas_targets(base_tf, timeframes or None)
    except ValueError as exc:
        buildable = [str(t) for t in ATLAS_TIMEFRAMES if can_build(base_tf, t)]
        held = ", ".join(map(str, store.timeframes()))
        raise DataError(
            f"{store.symbol}: cannot build {exc} from its {base_tf} base bars: the ATLAS builds "
            f"only timeframes at or above the base ({', '.join(buildable)}); stored: {held}. "
            "Choose timeframes among those (`stratforge data atlas` without --timeframes "
            "builds them all), or ingest finer bars under another symbol") from None
    session = (instrument or get_instrument(symbol, home)).session
    report = BuildReport(store.symbol, str(base_tf), [str(t) for t in targets],
                         [str(t) for t in left_out])
    build_dir = store.root / BUILD_DIR
    with store.transaction(staging=build_dir / "files") as txn:
        base = store.entries(base_tf)
        out_months = sorted(set(base) | {m - 1 for m in base})
        sources = {m: source_signature(session, base, m) for m in out_months}
        built = txn.manifest.setdefault("built", {})
        for tf in targets:
            for month in store.entries(tf):
                if month not in sources:
                    txn.delete(file_name(tf, month))
                    report.files_deleted += 1
            names = {month_name(m) for m in sources}
            built[str(tf)] = {k: v for k, v in built.get(str(tf), {}).items() if k in names}
        todo = [m for m in out_months if any(
            built[str(tf)].get(month_name(m)) != sources[m] for tf in targets)]
        report.months_total = len(out_months)
        state = _load_progress(build_dir, targets)
        reader = _BaseReader(store, base_tf, set(base))
        for done, month in enumerate(todo, start=1):
            key = month_name(month)
            record = state["months"].get(key)
            if record and record["source"] == sources[month] and \
                    _staged_record_valid(txn, record["files"]):
                report.months_resumed += 1
            else:
                record = {"source": sources[month],
                          "files": _build_month(txn, reader, month, targets, session)}
                state["months"][key] = record
                atomic_write_json(build_dir / "progress.json", state)
            _apply_record(txn, record["files"], report)
            for tf in targets:
                built[str(tf)][key] = sources[month]
            report.months_rebuilt.append(key)
            progress("atlas", done, len(todo), key)
        txn.commit()
    shutil.rmtree(build_dir, ignore_errors=True)
    report.seconds = time.perf_counter() - started
    return report


def _load_progress(build_dir: Path, targets: list[Timeframe]) -> dict[str, Any]:
    names = [str(t) for t in targets]
    path = build_dir / "progress.json"
    if path.exists():
        state = read_json(path)
        if state.get("targets") == names and state.get("version") == RESAMPLER_VERSION:
            return state
    shutil.rmtree(build_dir, ignore_errors=True)
    return {"version": RESAMPLER_VERSION, "targets": names, "months": {}}
