"""The bars contract: canonical OHLCV frames, their validation and an explicit repair.

Canonical bars are a DataFrame with columns ``ts`` (datetime64[ns, UTC], strictly increasing),
``open``, ``high``, ``low``, ``close`` and ``volume`` (float64) and a default RangeIndex.
Validation never fixes anything silently: it raises a DataError naming the source, the row
(1-based, in the order the source gave) and the rule. ``repair_bars`` is the explicit opt-in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from stratforge.errors import DataError

BAR_COLUMNS: tuple[str, ...] = ("ts", "open", "high", "low", "close", "volume")
PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")
TS_DTYPE = pd.DatetimeTZDtype(unit="ns", tz="UTC")


@dataclass(frozen=True)
class RepairReport:
    """What ``repair_bars`` changed, row counts per kind of change."""

    reordered: int = 0
    duplicates_dropped: int = 0
    highs_raised: int = 0
    lows_lowered: int = 0

    @property
    def rows_changed(self) -> int:
        """Total rows dropped, moved or clipped."""
        return self.reordered + self.duplicates_dropped + self.highs_raised + self.lows_lowered

    def describe(self) -> str:
        """A one-line summary such as 'dropped 2 duplicate rows, raised 1 high'."""
        parts = []
        if self.reordered:
            parts.append(f"sorted {self.reordered} out-of-order rows")
        if self.duplicates_dropped:
            parts.append(f"dropped {self.duplicates_dropped} duplicate-timestamp rows (kept last)")
        if self.highs_raised:
            parts.append(f"raised {self.highs_raised} highs to max(open, close)")
        if self.lows_lowered:
            parts.append(f"lowered {self.lows_lowered} lows to min(open, close)")
        return ", ".join(parts) if parts else "nothing to repair"


def empty_bars() -> pd.DataFrame:
    """A canonical bars frame with no rows."""
    frame = pd.DataFrame({c: np.empty(0, dtype=np.float64) for c in BAR_COLUMNS[1:]})
    frame.insert(0, "ts", pd.Series(np.empty(0, dtype="datetime64[ns]")).dt.tz_localize("UTC"))
    return frame


def bars_from_arrays(ts_ns: np.ndarray, open_: np.ndarray, high: np.ndarray, low: np.ndarray,
                     close: np.ndarray, volume: np.ndarray) -> pd.DataFrame:
    """A canonical bars frame from int64 UTC nanoseconds and float arrays (no validation)."""
    ts = pd.DatetimeIndex(np.asarray(ts_ns, dtype=np.int64).view("datetime64[ns]"), tz="UTC")
    return pd.DataFrame({
        "ts": ts,
        "open": np.asarray(open_, dtype=np.float64),
        "high": np.asarray(high, dtype=np.float64),
        "low": np.asarray(low, dtype=np.float64),
        "close": np.asarray(close, dtype=np.float64),
        "volume": np.asarray(volume, dtype=np.float64),
    })


def ts_ns(bars: pd.DataFrame) -> np.ndarray:
    """The ``ts`` column as int64 UTC epoch nanoseconds."""
    return np.asarray(bars["ts"].dt.as_unit("ns").array.asi8, dtype=np.int64)


def _fail(source: str, row_index: int, rule: str, detail: str, count: int, fix: str) -> DataError:
    more = f"; {count} rows break this rule" if count > 1 else ""
    return DataError(f"{source} row {row_index + 1}: {detail} (rule: {rule}){more}. {fix}",
                     source=source, row=row_index + 1, rule=rule)


def check_columns(frame: pd.DataFrame, source: str) -> None:
    """Raise a DataError naming every canonical column that ``frame`` lacks."""
    missing = [c for c in BAR_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(
            f"{source}: missing column(s) {', '.join(missing)} (rule: columns "
            f"{', '.join(BAR_COLUMNS)}); found {', '.join(map(str, frame.columns))}. Rename the "
            "columns in the file (common spellings such as Timestamp/Open/Vol are understood)",
            source=source, rule="columns")


def validate_bars(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """Check ``frame`` against the bars contract and return it in canonical form.

    Raises DataError for a missing column, a missing or non-finite price, a missing timestamp,
    timestamps out of order or repeated, ``high < max(open, close)``,
    ``low > min(open, close)`` or a negative, missing or infinite volume.
    """
    check_columns(frame, source)
    bars = frame.loc[:, list(BAR_COLUMNS)].reset_index(drop=True)
    if not isinstance(bars["ts"].dtype, pd.DatetimeTZDtype):
        raise DataError(f"{source}: column ts must hold UTC timestamps, got {bars['ts'].dtype}",
                        source=source, rule="ts dtype")
    bars["ts"] = bars["ts"].dt.tz_convert("UTC").dt.as_unit("ns")
    for column in BAR_COLUMNS[1:]:
        bars[column] = pd.to_numeric(bars[column], errors="coerce").astype(np.float64)

    bad_ts = bars["ts"].isna().to_numpy()
    if bad_ts.any():
        raise _fail(source, int(np.argmax(bad_ts)), "timestamp present", "timestamp is missing "
                    "or unreadable", int(bad_ts.sum()), "Fix or remove the row")
    for column in PRICE_COLUMNS:
        values = bars[column].to_numpy()
        bad = ~np.isfinite(values)
        if bad.any():
            i = int(np.argmax(bad))
            raise _fail(source, i, "prices are finite numbers", f"{column} is {values[i]}",
                        int(bad.sum()), "Fix or remove the row")
    volume = bars["volume"].to_numpy()
    bad = ~(volume >= 0) | np.isinf(volume)
    if bad.any():
        i = int(np.argmax(bad))
        rule, count = ("volume is a finite number", int(np.isinf(volume).sum())) if np.isinf(
            volume[i]) else ("volume >= 0", int((~(volume >= 0)).sum()))
        raise _fail(source, i, rule, f"volume is {volume[i]}", count, "Fix or remove the row")

    stamps = ts_ns(bars)
    step = np.diff(stamps)
    if (step < 0).any():
        i = int(np.argmax(step < 0)) + 1
        raise _fail(source, i, "timestamps strictly increasing",
                    f"timestamp {bars['ts'].iat[i]} is earlier than row {i}'s "
                    f"{bars['ts'].iat[i - 1]}", int((step < 0).sum()),
                    "Sort the file, or ingest with --repair to sort it")
    if (step == 0).any():
        i = int(np.argmax(step == 0)) + 1
        raise _fail(source, i, "timestamps strictly increasing",
                    f"timestamp {bars['ts'].iat[i]} repeats row {i}'s", int((step == 0).sum()),
                    "Remove the duplicate, or ingest with --repair to keep the last one")

    o, h, lo, c = (bars[k].to_numpy() for k in PRICE_COLUMNS)
    bad = h < np.maximum(o, c)
    if bad.any():
        i = int(np.argmax(bad))
        raise _fail(source, i, "high >= max(open, close)",
                    f"high {h[i]} is below max(open, close) = {max(o[i], c[i])}",
                    int(bad.sum()), "Fix the row, or ingest with --repair to clip high/low")
    bad = lo > np.minimum(o, c)
    if bad.any():
        i = int(np.argmax(bad))
        raise _fail(source, i, "low <= min(open, close)",
                    f"low {lo[i]} is above min(open, close) = {min(o[i], c[i])}",
                    int(bad.sum()), "Fix the row, or ingest with --repair to clip high/low")
    return bars


def repair_bars(frame: pd.DataFrame, source: str) -> tuple[pd.DataFrame, RepairReport]:
    """Sort by time, drop repeated timestamps (keeping the last) and clip high/low to the body.

    Missing prices and negative volumes are not repaired: they still raise in validation.
    Returns the repaired frame and a report of how many rows changed.
    """
    check_columns(frame, source)
    bars = frame.loc[:, list(BAR_COLUMNS)].reset_index(drop=True)
    order = np.argsort(bars["ts"].to_numpy(), kind="stable")
    reordered = int((order != np.arange(len(order))).sum())
    bars = bars.iloc[order].reset_index(drop=True)
    duplicated = bars["ts"].duplicated(keep="last").to_numpy()
    bars = bars.loc[~duplicated].reset_index(drop=True)
    o, h, lo, c = (pd.to_numeric(bars[k], errors="coerce").to_numpy(dtype=np.float64)
                   for k in PRICE_COLUMNS)
    body_high, body_low = np.maximum(o, c), np.minimum(o, c)
    raise_high = h < body_high
    lower_low = lo > body_low
    bars["high"] = np.where(raise_high, body_high, h)
    bars["low"] = np.where(lower_low, body_low, lo)
    report = RepairReport(reordered=reordered, duplicates_dropped=int(duplicated.sum()),
                          highs_raised=int(raise_high.sum()), lows_lowered=int(lower_low.sum()))
    return bars, report
