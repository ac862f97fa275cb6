"""The ATLAS store on disk: month partitions, the manifest, and journaled atomic commits.

Layout under ``<home>/atlas/<SYMBOL>/``::

    manifest.json               base timeframe; per file: rows, first, last, sha256; per
                                derived timeframe and month: the source signature it was
                                built from (see stratforge.data.atlas)
    <tf>/<YYYY>-<MM>.parquet    bars of one timeframe whose start falls in that UTC month

Every change is one transaction: new files are written to a staging folder, a journal naming
them and the next manifest is written atomically, then files are moved into place and the
manifest replaced. A crash before the journal leaves the store as it was; a crash after it is
rolled forward by the next writer, so readers never see half a change.

Locks (``flock``, released by the kernel when a process dies):

- ``.lock``: the writer lock, held for a whole transaction; a second writer is refused.
- ``.commit.lock``: readers hold it shared while they read the manifest and the bar files;
  a commit holds it exclusively while it writes the journal, moves files into place and
  replaces the manifest (milliseconds). ``.gate.lock`` in front of it keeps a stream of
  readers from starving a waiting commit.

Readers never change the store: they see the manifest before or after a commit, never a mix.
A journal a reader finds while holding its shared lock was left by a writer that died
mid-commit; the reader then reads the state that journal commits (each moved file from the
staging folder until it has been moved) and leaves the roll-forward to the next writer, which
does it under the writer lock.
"""

from __future__ import annotations

import copy
import fcntl
import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stratforge.config import resolve_home
from stratforge.data.atomic import atomic_write_bytes, atomic_write_json, read_json, sha256_bytes
from stratforge.data.parquet_io import decode_bars
from stratforge.data.resample import BarArrays
from stratforge.data.timeframe_choice import missing_timeframes_message
from stratforge.errors import DataError
from stratforge.names import check_symbol
from stratforge.timeframes import Timeframe, parse_timeframe

MANIFEST = "manifest.json"
JOURNAL = ".journal.json"
STAGING = ".staging"
WRITER_LOCK = ".lock"
COMMIT_LOCK = ".commit.lock"
GATE_LOCK = ".gate.lock"
LOCK_FILES = (WRITER_LOCK, COMMIT_LOCK, GATE_LOCK)
MANIFEST_FORMAT = 1

# Store folders this thread holds the shared commit lock of. A second shared lock taken while
# the first is held could wait behind a commit that waits for the first: a deadlock.
_held_reads = threading.local()


def months_of(ts: np.ndarray) -> np.ndarray:
    """UTC calendar month of each timestamp, as months since 1970-01."""
    return ts.view("datetime64[ns]").astype("datetime64[M]").astype(np.int64)


def month_name(month: int) -> str:
    """'YYYY-MM' of a month counted from 1970-01."""
    return str(np.datetime64(int(month), "M"))


def month_number(name: str) -> int:
    """Months since 1970-01 of a 'YYYY-MM' name."""
    return int(np.datetime64(name, "M").astype(np.int64))


def file_name(timeframe: Timeframe | str, month: int) -> str:
    """Relative path of a partition, such as '1m/2024-03.parquet'."""
    return f"{timeframe}/{month_name(month)}.parquet"


def iso(ts: int) -> str:
    """ISO-8601 UTC text of epoch nanoseconds."""
    return pd.Timestamp(int(ts), tz="UTC").isoformat()


def file_entry(data: bytes, bars: BarArrays) -> dict[str, Any]:
    """Manifest entry of a partition holding ``bars`` encoded as ``data``."""
    return {"rows": len(bars), "first": iso(bars.ts[0]), "last": iso(bars.ts[-1]),
            "sha256": sha256_bytes(data)}


class AtlasStore:
    """One symbol's multi-timeframe store (see the module docstring)."""

    def __init__(self, root: Path, symbol: str) -> None:
        self.symbol = symbol.upper()
        self.root = root
        self._manifest: dict[str, Any] | None = None
        self._pending: tuple[Path, frozenset[str]] | None = None  # a dead writer's journal
        self._reading = 0

    @classmethod
    def open(cls, symbol: str, home: Path | str | None = None) -> AtlasStore:
        """The store of ``symbol`` under the home folder (it may not exist yet).

        ``symbol`` must follow ``stratforge.names.SYMBOL_PATTERN`` (a ConfigError otherwise),
        so the store is always a folder directly under ``<home>/atlas/``."""
        symbol = check_symbol(symbol)
        return cls(resolve_home(home) / "atlas" / symbol, symbol)

    @property
    def exists(self) -> bool:
        """True once the store has a manifest (or a commit of its first one is pending)."""
        return (self.root / MANIFEST).exists() or (self.root / JOURNAL).exists()

    @property
    def manifest(self) -> dict[str, Any]:
        """The committed manifest (an empty one for a new store)."""
        if self._manifest is None:
            with self.reading():
                pass
        assert self._manifest is not None
        return self._manifest

    def reload(self) -> None:
        """Forget the cached manifest so the next access reads it from disk."""
        self._manifest = None
        self._pending = None

    @contextmanager
    def reading(self) -> Iterator[AtlasStore]:
        """Hold a consistent view of the store for the block: the manifest is read afresh
        and no commit changes the files until the block ends (see the module docstring).
        Nested blocks on the same folder in the same thread (through this store or another
        ``AtlasStore`` of it) share the outer one's lock. Never writes to the store."""
        if self._reading:
            if self._manifest is None:
                self._load_view()
            yield self
            return
        held = _held_reads.__dict__.setdefault("roots", {})
        key = str(self.root)
        outer = held.get(key, 0) == 0
        with _shared_lock(self.root) if outer else nullcontext():
            held[key] = held.get(key, 0) + 1
            self._load_view()
            self._reading += 1
            try:
                yield self
            finally:
                self._reading -= 1
                held[key] -= 1

    def _load_view(self) -> None:
        journal_path = self.root / JOURNAL
        manifest_path = self.root / MANIFEST
        self._pending = None
        if journal_path.exists():  # under the shared lock: a writer died mid-commit
            journal = read_json(journal_path)
            self._manifest = journal["manifest"]
            self._pending = (self.root / journal["staging"], frozenset(journal["moves"]))
        elif manifest_path.exists():
            self._manifest = read_json(manifest_path)
        else:
            self._manifest = {"format": MANIFEST_FORMAT, "symbol": self.symbol,
                              "base_timeframe": None, "files": {}}

    def path_of(self, rel: str) -> Path:
        """Where the committed file ``rel`` is now: in the store, or (while a dead writer's
        commit waits to be rolled forward) still in that commit's staging folder."""
        if self._pending is not None and rel in self._pending[1]:
            staged = self._pending[0] / rel
            if staged.exists():
                return staged
        return self.root / rel

    @property
    def base_timeframe(self) -> Timeframe | None:
        """Resolution of the ingested bars, or None for an empty store."""
        name = self.manifest.get("base_timeframe")
        return parse_timeframe(name) if name else None

    def timeframes(self) -> list[Timeframe]:
        """Timeframes with at least one partition, finest first."""
        return sorted({parse_timeframe(rel.split("/")[0]) for rel in self.manifest["files"]
                       if "/" in rel})

    def row_counts(self) -> dict[str, int]:
        """Rows per timeframe present (from the manifest, no file is read), finest first."""
        counts: dict[str, int] = {}
        for tf in self.timeframes():
            counts[str(tf)] = sum(int(e["rows"]) for e in self.entries(tf).values())
        return counts

    def entries(self, timeframe: Timeframe | str) -> dict[int, dict[str, Any]]:
        """Manifest entries of one timeframe, by month number, in month order."""
        prefix = f"{timeframe}/"
        found = {month_number(rel[len(prefix):-len(".parquet")]): entry
                 for rel, entry in self.manifest["files"].items() if rel.startswith(prefix)}
        return dict(sorted(found.items()))

    def read_month(self, timeframe: Timeframe | str, month: int) -> BarArrays:
        """The bars of one partition."""
        with self.reading():
            return decode_bars(self.path_of(file_name(timeframe, month)))

    def read_range(self, timeframe: Timeframe, start: int | None, end: int | None) -> BarArrays:
        """Bars of ``timeframe`` with ``start <= ts < end`` (UTC ns; None leaves a side open)."""
        with self.reading():
            return self._read_range(timeframe, start, end)

    def _read_range(self, timeframe: Timeframe, start: int | None, end: int | None) -> BarArrays:
        entries = self.entries(timeframe)
        if not entries:
            raise DataError(missing_timeframes_message(
                self.symbol, [timeframe], self.timeframes(), self.base_timeframe))
        parts = []
        for month, entry in entries.items():
            if start is not None and pd.Timestamp(entry["last"]).value < start:
                continue
            if end is not None and pd.Timestamp(entry["first"]).value >= end:
                continue
            parts.append(self.read_month(timeframe, month))
        joined = BarArrays.concat(parts)
        lo = 0 if start is None else int(np.searchsorted(joined.ts, start, side="left"))
        hi = len(joined) if end is None else int(np.searchsorted(joined.ts, end, side="left"))
        return joined if (lo, hi) == (0, len(joined)) else joined.take(slice(lo, hi))

    @contextmanager
    def transaction(self, staging: Path | None = None) -> Iterator[Transaction]:
        """Hold the store's write lock and yield a transaction to stage and commit changes."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / WRITER_LOCK).open("w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise DataError(f"another process is writing the {self.symbol} store at "
                                f"{self.root}; wait for it to finish and try again") from exc
            if (self.root / JOURNAL).exists():  # a writer died mid-commit: finish its commit
                with _exclusive_lock(self.root):
                    self._roll_forward()
            self.reload()
            self._drop_abandoned_staging()
            yield Transaction(self, staging or self.root / STAGING / uuid.uuid4().hex)

    def _drop_abandoned_staging(self) -> None:
        shutil.rmtree(self.root / STAGING, ignore_errors=True)

    def _roll_forward(self) -> None:
        """Apply the journal. Only under the writer lock and the exclusive commit lock."""
        journal = read_json(self.root / JOURNAL)
        staging = self.root / journal["staging"]
        for rel in journal["moves"]:
            source = staging / rel
            if source.exists():
                target = self.root / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(source, target)
        for rel in journal["deletes"]:
            (self.root / rel).unlink(missing_ok=True)
        atomic_write_json(self.root / MANIFEST, journal["manifest"])
        shutil.rmtree(staging, ignore_errors=True)
        (self.root / JOURNAL).unlink()
        self.reload()


def _open_lock_file(path: Path) -> int | None:
    """A descriptor of a lock file, created when missing; None on a read-only store that
    lacks it (no writer can change such a store, so there is nothing to wait for)."""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:
        try:
            return os.open(path, os.O_RDONLY)
        except OSError:
            return None


@contextmanager
def _shared_lock(root: Path) -> Iterator[None]:
    """Hold the commit lock shared (a reader), entering through the gate."""
    if not root.is_dir():
        yield
        return
    gate, commit = _open_lock_file(root / GATE_LOCK), _open_lock_file(root / COMMIT_LOCK)
    try:
        if gate is not None:
            fcntl.flock(gate, fcntl.LOCK_SH)
        if commit is not None:
            fcntl.flock(commit, fcntl.LOCK_SH)
        if gate is not None:
            fcntl.flock(gate, fcntl.LOCK_UN)
        yield
    finally:
        for fd in (commit, gate):
            if fd is not None:
                os.close(fd)


@contextmanager
def _exclusive_lock(root: Path) -> Iterator[None]:
    """Hold the gate and the commit lock exclusively (a commit), once current readers end."""
    if getattr(_held_reads, "roots", {}).get(str(root)):
        raise RuntimeError(f"a commit to {root} inside a reading() block of the same store "
                           "would wait for itself; commit after the block")
    gate = os.open(root / GATE_LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(gate, fcntl.LOCK_EX)
        commit = os.open(root / COMMIT_LOCK, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(commit, fcntl.LOCK_EX)
            yield
        finally:
            os.close(commit)
    finally:
        os.close(gate)


class Transaction:
    """Staged changes to a store, applied all at once by ``commit``."""

    def __init__(self, store: AtlasStore, staging: Path) -> None:
        self.store = store
        self.staging = staging
        self.manifest: dict[str, Any] = copy.deepcopy(store.manifest)
        self.moves: set[str] = set()
        self.deletes: set[str] = set()

    def put(self, rel: str, data: bytes, entry: dict[str, Any] | None) -> None:
        """Stage a file; ``entry`` (for partitions) goes into the manifest's file list."""
        atomic_write_bytes(self.staging / rel, data)
        self.adopt(rel, entry)

    def adopt(self, rel: str, entry: dict[str, Any] | None) -> None:
        """Include a file already present in the staging folder."""
        self.moves.add(rel)
        self.deletes.discard(rel)
        if entry is not None:
            self.manifest["files"][rel] = entry

    def delete(self, rel: str) -> None:
        """Remove a file (and its manifest entry) at commit."""
        self.moves.discard(rel)
        self.deletes.add(rel)
        self.manifest["files"].pop(rel, None)

    def commit(self) -> None:
        """Apply every staged change atomically (see the module docstring)."""
        root = self.store.root
        self.manifest["files"] = dict(sorted(self.manifest["files"].items()))
        with _exclusive_lock(root):
            atomic_write_json(root / JOURNAL, {
                "staging": os.path.relpath(self.staging, root),
                "moves": sorted(self.moves), "deletes": sorted(self.deletes),
                "manifest": self.manifest})
            self.store._roll_forward()
