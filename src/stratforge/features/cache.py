"""The states cache: ``compute_states`` of a timeframe's whole ATLAS series, on disk by month.

Layout under ``<home>/cache/states/<SYMBOL>/<tf>/``::

    <YYYY>-<MM>.parquet   the states rows of the bars of that ATLAS month partition
    index.json            the cache key of every month file, its first row and size

States are always computed on the timeframe's **whole** series, so a narrow window never lacks
warm-up, and from prices in ticks of the symbol's instrument (``tick_size``, part of the key),
so the same market at another price level gets bit-identical scale-free states. Row ``t`` of
``compute_states`` depends only on bars ``0..t``, so the key of month ``m`` chains the
``compute_states`` parameters, ``FEATURES_VERSION`` and the sha256 of every ATLAS partition up
to and including ``m``: appending a month rewrites only the months whose chain changed, and a
changed partition invalidates its month and every later one. Files are written atomically; the
index drops the entries of the months about to be rewritten before they are, so a crash never
leaves an index naming a stale file. One writer at a time holds an exclusive lock on the
folder; readers hold a shared one.

``load_states`` returns the whole frame; ``read_states`` a subset of columns and rows (the
frame's index is always the row's position in the full series). Both set
``frame.attrs["cache"]`` to ``"hit"`` or ``"miss"``; ``cache_stats()`` counts them per process.
"""

from __future__ import annotations

import fcntl
import hashlib
import inspect
import io
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from stratforge.config import resolve_home
from stratforge.data.atomic import atomic_write_bytes, atomic_write_json, read_json
from stratforge.data.store import AtlasStore, month_name
from stratforge.errors import ConfigError, DataError
from stratforge.features.states import STATE_COLUMNS, TRENDS, ZONES, compute_states
from stratforge.instruments import get_instrument
from stratforge.progress import ProgressCallback, no_progress
from stratforge.timeframes import Timeframe, parse_timeframe

FEATURES_VERSION = "2"
"""Bump when ``compute_states`` changes its output for the same bars and parameters."""

INDEX = "index.json"
INDEX_FORMAT = 1
_CATEGORIES = {"zone": ZONES, "trend": TRENDS}
_BOOL_COLUMNS = ("structure_confirmed", "cascade_detected", "ready")
_stats = {"hit": 0, "miss": 0}
_WRITERS = min(4, os.cpu_count() or 1)


def cache_stats() -> dict[str, int]:
    """Counts of cache hits and misses served by this process (``load_states``/``read_states``
    and ``ensure_states`` calls)."""
    return dict(_stats)


def reset_cache_stats() -> None:
    """Set the hit and miss counters back to zero."""
    _stats.update(hit=0, miss=0)


def states_parameters(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The effective ``compute_states`` parameters: its defaults updated with ``overrides``
    (``tick_size`` stays None unless given; the cache fills it in, see ``_symbol_parameters``)."""
    defaults = {name: p.default for name, p in inspect.signature(compute_states).parameters.items()
                if p.kind is inspect.Parameter.KEYWORD_ONLY}
    unknown = sorted(set(overrides or {}) - set(defaults))
    if unknown:
        raise ConfigError(f"unknown compute_states parameter(s) {', '.join(unknown)}; known: "
                          f"{', '.join(sorted(defaults))}")
    return {**defaults, **(overrides or {})}


def _symbol_parameters(symbol: str, home: Path | str | None,
                       overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """The parameters the cache computes ``symbol``'s states with: ``states_parameters`` with
    ``tick_size`` set to the instrument's tick unless given. The states then come from prices
    in ticks, so a market and the same market with all prices and the tick multiplied by one
    constant get bit-identical scale-free states (docs/features.md, "Scale-free")."""
    params = states_parameters(overrides)
    if params.get("tick_size") is None:
        params["tick_size"] = get_instrument(symbol, home).tick_size
    return params


def cache_folder(symbol: str, timeframe: Timeframe | str, home: Path | str | None = None) -> Path:
    """``<home>/cache/states/<SYMBOL>/<tf>``."""
    return resolve_home(home) / "cache" / "states" / symbol.upper() / str(_tf(timeframe))


@dataclass(frozen=True)
class AtlasMonth:
    """One ATLAS partition of a timeframe: month name, first row in the series, rows, sha256."""

    name: str
    first_row: int
    rows: int
    sha256: str


def atlas_months(symbol: str, timeframe: Timeframe | str, *,
                 home: Path | str | None = None) -> list[AtlasMonth]:
    """The ATLAS partitions of ``symbol`` at ``timeframe`` in time order, with the position of
    each partition's first bar in the whole series. DataError when there are none."""
    tf = _tf(timeframe)
    store = AtlasStore.open(symbol, home)
    if not store.exists:
        raise DataError(f"no store for {symbol.upper()} under {store.root.parent}; ingest data "
                        "with `stratforge data ingest` or `stratforge data synth`")
    entries = store.entries(tf)
    if not entries:
        store.read_range(tf, None, None)  # raises the store's DataError naming what exists
    months, first = [], 0
    for month, entry in entries.items():
        months.append(AtlasMonth(month_name(month), first, int(entry["rows"]), entry["sha256"]))
        first += int(entry["rows"])
    return months


def atlas_fingerprint(symbol: str, timeframe: Timeframe | str, *,
                      home: Path | str | None = None) -> str:
    """sha256 over the ATLAS partitions (month, rows, file sha256) of one timeframe."""
    payload = [[m.name, m.rows, m.sha256] for m in atlas_months(symbol, timeframe, home=home)]
    return hashlib.sha256(json.dumps(payload).encode()).hexdigest()


def _tf(timeframe: Timeframe | str) -> Timeframe:
    return timeframe if isinstance(timeframe, Timeframe) else parse_timeframe(str(timeframe))


def _month_keys(symbol: str, tf: Timeframe, months: list[AtlasMonth],
                parameters: dict[str, Any]) -> list[str]:
    chain = hashlib.sha256(json.dumps(
        {"features_version": FEATURES_VERSION, "parameters": parameters,
         "symbol": symbol.upper(), "timeframe": str(tf)}, sort_keys=True).encode()).hexdigest()
    keys = []
    for month in months:
        chain = hashlib.sha256(f"{chain}|{month.name}|{month.rows}|{month.sha256}".encode()
                               ).hexdigest()
        keys.append(chain)
    return keys


@contextmanager
def _locked(folder: Path, exclusive: bool) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read_index(folder: Path) -> dict[str, Any]:
    path = folder / INDEX
    try:
        index = read_json(path) if path.exists() else {}
    except (OSError, ValueError):
        index = {}
    if index.get("format") != INDEX_FORMAT:
        index = {}
    index.setdefault("months", {})
    return index


def _valid_months(folder: Path, index: dict[str, Any], months: list[AtlasMonth],
                  keys: list[str]) -> set[str]:
    """Names of the months whose file is on disk under the expected key."""
    valid = set()
    for month, key in zip(months, keys, strict=True):
        entry = index["months"].get(month.name)
        path = folder / f"{month.name}.parquet"
        if (entry and entry.get("key") == key and entry.get("rows") == month.rows
                and path.exists() and path.stat().st_size == entry.get("bytes")):
            valid.add(month.name)
    return valid


def _encode(states: pd.DataFrame, lo: int, hi: int) -> bytes:
    arrays, fields = [], []
    for name in STATE_COLUMNS:
        column = states[name]
        if name == "ts":
            values = pa.array(column.array.asi8[lo:hi]).cast(pa.timestamp("ns", tz="UTC"))
        elif name in _CATEGORIES:
            values = pa.array(column.cat.codes.to_numpy()[lo:hi].astype(np.int8))
        else:
            values = pa.array(column.to_numpy()[lo:hi])
        arrays.append(values)
        fields.append(pa.field(name, values.type, nullable=False))
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_arrays(arrays, schema=pa.schema(fields)), sink,
                   compression="snappy", use_dictionary=list(_CATEGORIES),
                   write_statistics=["ts"], store_schema=False)
    return sink.getvalue()


def ensure_states(symbol: str, timeframe: Timeframe | str, *, home: Path | str | None = None,
                  parameters: Mapping[str, Any] | None = None,
                  progress: ProgressCallback = no_progress) -> str:
    """Make the cached states of ``symbol`` at ``timeframe`` current; ``"hit"`` or ``"miss"``.

    On a miss the states of the whole series are computed from ``load_bars`` and the month
    files whose key changed are (re)written; nothing is loaded into memory on a hit. The
    states use the instrument's tick size unless ``parameters`` names a ``tick_size``.
    """
    tf = _tf(timeframe)
    params = _symbol_parameters(symbol, home, parameters)
    status, _ = _ensure(symbol, tf, home, params, progress)
    return status


def _ensure(symbol: str, tf: Timeframe, home: Path | str | None, params: dict[str, Any],
            progress: ProgressCallback) -> tuple[str, list[tuple[AtlasMonth, str]]]:
    months = atlas_months(symbol, tf, home=home)
    keys = _month_keys(symbol, tf, months, params)
    folder = cache_folder(symbol, tf, home)
    plan = list(zip(months, keys, strict=True))
    with _locked(folder, exclusive=True):
        index = _read_index(folder)
        valid = _valid_months(folder, index, months, keys)
        if len(valid) == len(months) and set(index["months"]) == valid:
            _stats["hit"] += 1
            return "hit", plan
        _stats["miss"] += 1
        _rebuild(symbol, tf, home, params, folder, index, plan, valid, progress)
    return "miss", plan


def _rebuild(symbol: str, tf: Timeframe, home: Path | str | None, params: dict[str, Any],
             folder: Path, index: dict[str, Any], plan: list[tuple[AtlasMonth, str]],
             valid: set[str], progress: ProgressCallback) -> None:
    progress("states", 0, len(plan), f"{symbol.upper()} {tf}: computing states")
    bars = AtlasStore.open(symbol, home).read_range(tf, None, None).to_frame()
    expected = sum(m.rows for m, _ in plan)
    if len(bars) != expected:
        raise DataError(f"{symbol.upper()} {tf}: the ATLAS manifest lists {expected} bars but "
                        f"the files hold {len(bars)}; rebuild it with `stratforge data atlas`")
    states = compute_states(bars, **params)
    del bars
    index = {"format": INDEX_FORMAT, "features_version": FEATURES_VERSION,
             "parameters": params, "symbol": symbol.upper(), "timeframe": str(tf),
             "months": {name: index["months"][name] for name in sorted(valid)}}
    atomic_write_json(folder / INDEX, index)  # forget every month about to be rewritten

    def write(month: AtlasMonth) -> None:
        data = _encode(states, month.first_row, month.first_row + month.rows)
        atomic_write_bytes(folder / f"{month.name}.parquet", data)

    todo = [month for month, _ in plan if month.name not in valid]
    with ThreadPoolExecutor(max_workers=max(1, min(_WRITERS, len(todo)))) as pool:
        # encoding and compression release the GIL: months are written in parallel
        for done, future in enumerate(as_completed([pool.submit(write, m) for m in todo]),
                                      start=len(plan) - len(todo) + 1):
            future.result()
            progress("states", done, len(plan), f"{symbol.upper()} {tf}")
    for month, key in plan:
        index["months"][month.name] = {
            "key": key, "first_row": month.first_row, "rows": month.rows,
            "bytes": (folder / f"{month.name}.parquet").stat().st_size}
    index["months"] = dict(sorted(index["months"].items()))
    atomic_write_json(folder / INDEX, index)
    names = {f"{m.name}.parquet" for m, _ in plan}
    for stale in folder.glob("*.parquet"):
        if stale.name not in names:
            stale.unlink(missing_ok=True)


def _empty_column(name: str, size: int) -> np.ndarray:
    if name == "ts":
        return np.empty(size, dtype=np.int64)
    if name in _CATEGORIES:
        return np.empty(size, dtype=np.int8)
    return np.empty(size, dtype=bool if name in _BOOL_COLUMNS else np.float64)


def read_states(symbol: str, timeframe: Timeframe | str, *,
                columns: Sequence[str] | None = None, rows: np.ndarray | None = None,
                home: Path | str | None = None, parameters: Mapping[str, Any] | None = None,
                progress: ProgressCallback = no_progress) -> pd.DataFrame:
    """Cached states of ``symbol`` at ``timeframe``: ``columns`` (default all, in
    ``STATE_COLUMNS`` order) of the rows at the sorted positions ``rows`` (default all).

    The frame's index is each row's position in the whole series (the index of
    ``load_bars(symbol, timeframe)``). Only the month files holding requested rows are read.
    ``frame.attrs["cache"]`` says whether the cache was current (``"hit"``) or was rebuilt.
    """
    tf = _tf(timeframe)
    wanted = list(STATE_COLUMNS) if columns is None else list(columns)
    unknown = [c for c in wanted if c not in STATE_COLUMNS]
    if unknown:
        raise ConfigError(f"read_states: unknown state column(s) {', '.join(unknown)}; "
                          f"known: {', '.join(STATE_COLUMNS)}")
    params = _symbol_parameters(symbol, home, parameters)
    status, plan = _ensure(symbol, tf, home, params, progress)
    folder = cache_folder(symbol, tf, home)
    total = sum(m.rows for m, _ in plan)
    positions = None if rows is None else np.asarray(rows, dtype=np.int64)
    if positions is not None and len(positions) and (
            positions[0] < 0 or positions[-1] >= total or np.any(np.diff(positions) <= 0)):
        raise ConfigError(f"read_states: rows must be sorted, distinct positions in 0..{total - 1}")
    size = total if positions is None else len(positions)
    out = {name: _empty_column(name, size) for name in wanted}
    with _locked(folder, exclusive=False):
        at = 0
        for month, _ in plan:
            lo, hi = month.first_row, month.first_row + month.rows
            local = None
            if positions is not None:
                a, b = np.searchsorted(positions, [lo, hi])
                if a == b:
                    continue
                local = positions[a:b] - lo
            count = month.rows if local is None else len(local)
            table = pq.read_table(folder / f"{month.name}.parquet", columns=wanted)
            for name in wanted:
                column = table.column(name)
                values = (column.cast(pa.int64()) if name == "ts" else column).to_numpy()
                out[name][at:at + count] = values if local is None else values[local]
            at += count
    index = pd.RangeIndex(total) if positions is None else pd.Index(positions)
    frame = _frame(out, index)
    frame.attrs["cache"] = status
    return frame


def _frame(arrays: dict[str, np.ndarray], index: pd.Index) -> pd.DataFrame:
    out: dict[str, Any] = {}
    for name, values in arrays.items():
        if name == "ts":
            out[name] = pd.DatetimeIndex(values.view("datetime64[ns]"), tz="UTC").array
        elif name in _CATEGORIES:
            out[name] = pd.Categorical.from_codes(values, categories=list(_CATEGORIES[name]))
        else:
            out[name] = values
    return pd.DataFrame(out, index=index, copy=False)


def load_states(symbol: str, timeframe: Timeframe | str, *, home: Path | str | None = None,
                parameters: Mapping[str, Any] | None = None,
                progress: ProgressCallback = no_progress) -> pd.DataFrame:
    """``compute_states`` of the whole ATLAS series of ``symbol`` at ``timeframe``, from the
    cache when its key matches (else computed, stored and returned).

    The key chains the sha256 of the timeframe's ATLAS partitions, the effective
    ``compute_states`` parameters (its defaults updated with ``parameters``, ``tick_size``
    the instrument's unless given) and ``FEATURES_VERSION``. The frame equals
    ``compute_states(load_bars(symbol, timeframe), tick_size=instrument.tick_size)`` (same
    index, columns and dtypes); ``frame.attrs["cache"]`` is ``"hit"`` or ``"miss"``.
    """
    return read_states(symbol, timeframe, home=home, parameters=parameters, progress=progress)
