"""Patterns: the bars of one timeframe whose state is a cascade or a confirmed structure.

``PATTERN_COLUMNS`` fixes the columns of the patterns frame (docs/discovery.md). This module
turns selected state rows into pattern rows (``make_patterns``) and computes the *oracle*
statistics that later reports use to describe a pattern's aftermath: the maximum favourable
and adverse excursion over a fixed lookahead, on the mean-reversion side ``-sign(z)``
(``oracle_excursions``), and a MEGA/SCALP/NOISE label (``oracle_labels``). Oracle values look
into the future by design: they are never matching features.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pandas as pd

from stratforge.features.ticks import prices_in_ticks
from stratforge.features.vectors import FEATURE_NAMES
from stratforge.timeframes import Timeframe

CASCADE = "ROCHE_SNAP"
"""Type of a pattern whose bar is a cascade (``cascade_detected``)."""
STRUCTURE = "STRUCTURAL_DRIVE"
"""Type of a pattern whose bar is a confirmed structure (``structure_confirmed``)."""
BOTH = f"{CASCADE}+{STRUCTURE}"
"""Type of a pattern whose bar is both."""

STATE_VALUES: tuple[str, ...] = ("close", "z", "velocity", "momentum", "momentum_strength",
                                 "coherence", "sigma", "adx", "dmi_diff", "hurst")
"""Float state values copied into each pattern (``close`` comes from the bars)."""

PATTERN_COLUMNS: tuple[str, ...] = (
    "pattern_id", "symbol", "timeframe", "depth", "ts", "bar", "is_cascade", "is_structure",
    "type", *STATE_VALUES, "zone", "trend",
    *(name for name in FEATURE_NAMES if name not in STATE_VALUES),
    "parent_chain", "oracle_side", "oracle_mfe", "oracle_mae", "oracle_win", "oracle_label",
)
"""Columns of the patterns frame, in order. ``coherence`` and ``hurst`` are both state values
and features; they appear once (every name of ``FEATURE_NAMES`` is a column)."""

CHAIN_FIELDS: tuple[str, ...] = ("timeframe", "type", "z", "momentum", "coherence", "ts")
"""Fields of each ancestor in ``parent_chain`` (a JSON list, nearest ancestor first)."""

ORACLE_LOOKAHEAD: dict[str, int] = {
    "1s": 300, "5s": 120, "15s": 60, "1m": 60, "5m": 24, "15m": 16, "1h": 8, "4h": 6,
    "1D": 5, "1W": 4,
}
"""Bars after the pattern bar over which the oracle excursions are measured."""

MEGA_RATIO = 3.0
"""MFE/MAE ratio at or above which a pattern is MEGA."""
SCALP_RATIO = 1.2
"""MFE/MAE ratio at or above which a pattern is SCALP."""
MIN_MOVE_TICKS = 5
"""MEGA and SCALP also need an MFE of at least this many ticks."""

_STR_COLUMNS = ("pattern_id", "symbol", "timeframe", "type", "zone", "trend", "parent_chain",
                "oracle_label")
_INT_COLUMNS = {"depth": np.int64, "bar": np.int64, "oracle_side": np.int8}
_BOOL_COLUMNS = ("is_cascade", "is_structure", "oracle_win")
_CHUNK_CELLS = 4_000_000


def oracle_lookahead(timeframe: Timeframe | str) -> int:
    """Lookahead bars of the oracle for ``timeframe`` (``ORACLE_LOOKAHEAD``); KeyError names
    the known timeframes."""
    try:
        return ORACLE_LOOKAHEAD[str(timeframe)]
    except KeyError:
        raise KeyError(f"no oracle lookahead for timeframe {timeframe}; known: "
                       f"{', '.join(ORACLE_LOOKAHEAD)}") from None


def pattern_types(is_cascade: np.ndarray, is_structure: np.ndarray) -> np.ndarray:
    """``ROCHE_SNAP``, ``STRUCTURAL_DRIVE`` or ``ROCHE_SNAP+STRUCTURAL_DRIVE`` per bar ("" for a
    bar that is neither, which is not a pattern)."""
    cascade = np.asarray(is_cascade, dtype=bool)
    structure = np.asarray(is_structure, dtype=bool)
    return np.where(cascade & structure, BOTH,
                    np.where(cascade, CASCADE, np.where(structure, STRUCTURE, ""))).astype(object)


def oracle_sides(z: np.ndarray) -> np.ndarray:
    """The mean-reversion side ``-sign(z)`` as int8: +1 long below the centre, -1 short above
    it, 0 when z is 0 (or NaN)."""
    side = -np.sign(np.nan_to_num(np.asarray(z, dtype=np.float64), nan=0.0))
    return side.astype(np.int8)


def oracle_excursions(high: np.ndarray, low: np.ndarray, close: np.ndarray,
                      positions: np.ndarray, sides: np.ndarray,
                      lookahead: int) -> tuple[np.ndarray, np.ndarray]:
    """Maximum favourable and adverse excursion (MFE, MAE) of each pattern, in price points.

    For the bar at ``positions[i]`` with side ``sides[i]``, over the next ``lookahead`` bars
    (fewer at the end of the arrays, none after the last bar): a long's MFE is the highest
    high minus the pattern bar's close, its MAE the close minus the lowest low; a short
    mirrors. Both are clipped at 0; side 0, or no bar after the pattern, gives 0 and 0.
    """
    high = np.asarray(high, dtype=np.float64)
    low = np.asarray(low, dtype=np.float64)
    close = np.asarray(close, dtype=np.float64)
    positions = np.asarray(positions, dtype=np.int64)
    sides = np.asarray(sides, dtype=np.int64)
    count, n = len(positions), len(close)
    mfe = np.zeros(count)
    mae = np.zeros(count)
    if count == 0 or lookahead <= 0:
        return mfe, mae
    steps = np.arange(1, lookahead + 1, dtype=np.int64)
    chunk = max(1, _CHUNK_CELLS // lookahead)
    for lo in range(0, count, chunk):
        pos = positions[lo:lo + chunk]
        index = pos[:, None] + steps[None, :]
        valid = index < n
        index = np.minimum(index, n - 1)
        best_high = np.where(valid, high[index], -np.inf).max(axis=1)
        best_low = np.where(valid, low[index], np.inf).min(axis=1)
        up = np.maximum(best_high - close[pos], 0.0)      # -inf (no bar) clips to 0
        down = np.maximum(close[pos] - best_low, 0.0)
        side = sides[lo:lo + chunk]
        mfe[lo:lo + chunk] = np.where(side > 0, up, np.where(side < 0, down, 0.0))
        mae[lo:lo + chunk] = np.where(side > 0, down, np.where(side < 0, up, 0.0))
    return mfe, mae


def oracle_wins(mfe: np.ndarray, mae: np.ndarray, tick_size: float) -> np.ndarray:
    """``mfe > mae``, compared in whole ticks (``prices_in_ticks``), so a tie on the tick grid
    stays a tie (not a win) whatever the price level and its rounding."""
    return prices_in_ticks(mfe, tick_size) > prices_in_ticks(mae, tick_size)


def oracle_labels(mfe: np.ndarray, mae: np.ndarray, tick_size: float) -> np.ndarray:
    """``MEGA`` when mfe / mae >= 3, ``SCALP`` when mfe / mae >= 1.2, else ``NOISE``; MEGA and
    SCALP also need mfe >= 5 ticks. Computed on the excursions in ticks (``prices_in_ticks``:
    snapped to whole ticks on the grid), so the labels do not depend on the price level. An
    MAE of 0 counts as an infinite ratio when mfe > 0."""
    mfe = prices_in_ticks(mfe, tick_size)
    mae = prices_in_ticks(mae, tick_size)
    moved = mfe >= MIN_MOVE_TICKS
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(mae > 0, mfe / mae, np.where(mfe > 0, np.inf, 0.0))
    return np.where(moved & (ratio >= MEGA_RATIO), "MEGA",
                    np.where(moved & (ratio >= SCALP_RATIO), "SCALP", "NOISE")).astype(object)


def chain_entry(timeframe: str, kind: str, z: float, momentum: float, coherence: float,
                ts: pd.Timestamp) -> dict[str, object]:
    """One ancestor of a parent chain (``CHAIN_FIELDS``); ``ts`` as ISO-8601 UTC text."""
    return {"timeframe": str(timeframe), "type": str(kind), "z": float(z),
            "momentum": float(momentum), "coherence": float(coherence),
            "ts": pd.Timestamp(ts).tz_convert("UTC").isoformat()}


def child_chains(parents: pd.DataFrame) -> list[str]:
    """The ``parent_chain`` JSON that a child of each row of ``parents`` (a patterns frame)
    carries: the parent itself, then the parent's own chain."""
    out = []
    for row in parents.itertuples(index=False):
        entry = chain_entry(row.timeframe, row.type, row.z, row.momentum, row.coherence, row.ts)
        out.append(json.dumps([entry, *json.loads(row.parent_chain)]))
    return out


def empty_patterns() -> pd.DataFrame:
    """A patterns frame with no rows and the dtypes of ``PATTERN_COLUMNS``."""
    columns: dict[str, object] = {}
    for name in PATTERN_COLUMNS:
        if name == "ts":
            columns[name] = pd.DatetimeIndex([], dtype="datetime64[ns, UTC]")
        else:
            columns[name] = np.empty(0, dtype=object)
    return coerce_patterns(pd.DataFrame(columns))


def coerce_patterns(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with exactly ``PATTERN_COLUMNS`` in order, their dtypes, and a RangeIndex
    (what a patterns frame looks like in memory and after a Parquet round trip)."""
    missing = [c for c in PATTERN_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"patterns frame lacks column(s) {', '.join(missing)}")
    out: dict[str, object] = {}
    for name in PATTERN_COLUMNS:
        column = frame[name]
        if name == "ts":
            out[name] = pd.to_datetime(column, utc=True).dt.as_unit("ns").array
        elif name in _STR_COLUMNS:
            out[name] = column.astype(object).astype("str").array
        elif name in _INT_COLUMNS:
            out[name] = column.to_numpy(dtype=_INT_COLUMNS[name])
        elif name in _BOOL_COLUMNS:
            out[name] = column.to_numpy(dtype=bool)
        else:
            out[name] = column.to_numpy(dtype=np.float64)
    return pd.DataFrame(out)


def make_patterns(symbol: str, timeframe: Timeframe | str, depth: int, states: pd.DataFrame,
                  vectors: pd.DataFrame, close: np.ndarray, chains: Sequence[str],
                  mfe: np.ndarray, mae: np.ndarray, tick_size: float) -> pd.DataFrame:
    """Pattern rows for the selected bars of one timeframe.

    ``states`` holds the ``compute_states`` rows of the pattern bars (index = position in the
    timeframe's full series), ``vectors`` their ``feature_vectors`` rows (same index),
    ``close`` their closes, ``chains`` their ``parent_chain`` JSON and ``mfe``/``mae`` the
    oracle excursions along ``oracle_sides(z)`` in price units; ``oracle_win`` and
    ``oracle_label`` compare them in ticks of ``tick_size``. Every selected bar must be a
    cascade or a confirmed structure (ValueError otherwise).
    """
    is_cascade = states["cascade_detected"].to_numpy(dtype=bool)
    is_structure = states["structure_confirmed"].to_numpy(dtype=bool)
    if not np.all(is_cascade | is_structure):
        raise ValueError("make_patterns: a selected bar is neither a cascade nor a structure")
    ts = states["ts"]
    ts_ns = ts.array.asi8
    tf = str(timeframe)
    count = len(states)
    mfe = np.asarray(mfe, dtype=np.float64)
    mae = np.asarray(mae, dtype=np.float64)
    columns: dict[str, object] = {
        "pattern_id": [f"{tf}:{t}" for t in ts_ns],
        "symbol": [symbol.upper()] * count,
        "timeframe": [tf] * count,
        "depth": np.full(count, depth, dtype=np.int64),
        "ts": ts.array,
        "bar": states.index.to_numpy(dtype=np.int64),
        "is_cascade": is_cascade,
        "is_structure": is_structure,
        "type": pattern_types(is_cascade, is_structure),
        "close": np.asarray(close, dtype=np.float64),
    }
    for name in STATE_VALUES[1:]:
        columns[name] = states[name].to_numpy(dtype=np.float64)
    for name in ("zone", "trend"):
        columns[name] = states[name].astype(object).fillna("").to_numpy()
    for name in FEATURE_NAMES:
        if name not in columns:
            columns[name] = vectors[name].to_numpy(dtype=np.float64)
    columns["parent_chain"] = list(chains)
    columns["oracle_side"] = oracle_sides(columns["z"])  # type: ignore[arg-type]
    columns["oracle_mfe"] = mfe
    columns["oracle_mae"] = mae
    columns["oracle_win"] = oracle_wins(mfe, mae, tick_size)
    columns["oracle_label"] = oracle_labels(mfe, mae, tick_size)
    return coerce_patterns(pd.DataFrame(columns))
