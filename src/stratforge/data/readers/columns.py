"""Recognise the timestamp, price and volume columns of a bar file by their common spellings.

A column name is compared by its *key*: lower case, with everything but letters and digits
removed, so ``" Open "``, ``"<OPEN>"``, ``"date_time"`` and ``"Gmt time"`` match ``open``,
``open``, ``datetime`` and ``gmttime``. For each role the first alias in the lists below that
some column matches wins, so ``volume`` beats ``tick_volume`` when a file has both.

A file written by pandas' ``DataFrame.to_csv()`` or ``to_parquet()`` carries the frame's index
as an unnamed column: an empty first CSV header cell (``Unnamed: 0`` after a round trip through
``read_csv``), or ``__index_level_0__`` last in Parquet. When no column is named like a
timestamp, the first such index column that holds times is taken as the timestamps (a
DatetimeIndex written out); a plain row counter (0, 1, 2, ...) is refused, since row numbers
are not times.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from stratforge.data.bars import bars_from_arrays, check_columns
from stratforge.data.readers.timestamps import combine_date_time, timestamps_to_utc_ns
from stratforge.errors import DataError

#: Keys of a single column holding the whole date and time, most specific first.
TIMESTAMP_ALIASES: tuple[str, ...] = (
    "timestamp", "ts", "datetime", "tsevent", "gmttime", "utctime", "timeutc", "datetimeutc",
    "timestamputc", "localtime", "opentime", "bartime",
)
#: Keys of a date-only column; with a time column beside it the two are combined.
DATE_ALIASES: tuple[str, ...] = ("date", "day", "tradedate")
#: Keys of a time-of-day column (or, without a date column, a whole timestamp).
TIME_ALIASES: tuple[str, ...] = ("time",)
#: Keys of the price and volume columns, per canonical column, in order of preference.
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "open": ("open", "o", "openprice", "priceopen", "first"),
    "high": ("high", "h", "highprice", "pricehigh", "max"),
    "low": ("low", "l", "lowprice", "pricelow", "min"),
    "close": ("close", "c", "last", "closeprice", "priceclose", "closelast", "lastprice"),
    "volume": ("volume", "vol", "v", "qty", "quantity", "size", "tickvolume", "tickvol", "ticks"),
}
_NOT_KEY = re.compile(r"[^a-z0-9]")
_INDEX_NAME = re.compile(r"(\s*|Unnamed: \d+|__index_level_\d+__)(\.\d+)?")


def column_key(name: object) -> str:
    """The spelling-insensitive key of a column name (``" Tick_Volume"`` -> ``tickvolume``)."""
    return _NOT_KEY.sub("", str(name).lower())


@dataclass(frozen=True)
class ColumnMap:
    """Which file columns feed the canonical bars columns.

    ``ts`` is one column name, or two (date, time) that are combined; ``fields`` maps each of
    open/high/low/close/volume to the file's column name.
    """

    ts: tuple[str, ...]
    fields: Mapping[str, str]
    index_columns: tuple[str, ...] = ()
    header: str = ""

    @property
    def ts_from_index(self) -> bool:
        """True when the timestamps come from an unnamed pandas index column."""
        return bool(self.index_columns)

    @property
    def needed(self) -> list[str]:
        """The file columns to read, each once."""
        return list(dict.fromkeys([*self.ts, *self.index_columns, *self.fields.values()]))


def _first_match(names: Sequence[str], aliases: Sequence[str]) -> str | None:
    keys = [column_key(n) for n in names]
    for alias in aliases:
        if alias in keys:
            return names[keys.index(alias)]
    return None


def is_index_column(name: str) -> bool:
    """True for the name pandas gives a written-out index: empty, ``Unnamed: 0`` or
    ``__index_level_0__``."""
    return _INDEX_NAME.fullmatch(name) is not None


def _timestamp_columns(names: Sequence[str]) -> tuple[str, ...] | None:
    single = _first_match(names, TIMESTAMP_ALIASES)
    if single is not None:
        return (single,)
    date, time = _first_match(names, DATE_ALIASES), _first_match(names, TIME_ALIASES)
    if date is not None and time is not None:
        return (date, time)
    found = date if date is not None else time
    return None if found is None else (found,)


def map_columns(names: Sequence[str], source: str, header: str | None = None) -> ColumnMap:
    """Find the timestamp, price and volume columns among ``names``.

    ``header`` is the file's header as written (for CSV its first line), quoted in errors;
    by default the names joined by commas. Without a timestamp-like name, a column that is
    pandas' unnamed index is taken as the timestamps (see the module docstring).

    Raises DataError when no timestamp column is recognisable, or (through ``check_columns``,
    listing the columns as renamed) when a price or volume column is missing.
    """
    names = [str(n) for n in names]
    shown = header if header is not None else ",".join(names)
    ts = _timestamp_columns(names)
    index = tuple(n for n in names if is_index_column(n)) if ts is None else ()
    if index:
        ts = (index[0],)
    if ts is None:
        raise DataError(
            f"{source}: no timestamp column; the file's header is {_quote(shown)} (rule: "
            "timestamp column). Name the time column one of timestamp, ts, time, date, datetime, "
            "ts_event, date_time or 'Gmt time', or give separate Date and Time columns; the "
            "file needs a header row", source=source, rule="timestamp column")
    fields = {role: col for role, aliases in FIELD_ALIASES.items()
              if (col := _first_match([n for n in names if n not in ts], aliases)) is not None}
    renamed = {col: role for role, col in fields.items()} | dict.fromkeys(ts[:1], "ts")
    stand_in = [renamed.get(n, n) for n in names if n not in ts[1:]]
    check_columns(pd.DataFrame(columns=stand_in), source)
    return ColumnMap(ts=ts, fields=fields, index_columns=index, header=shown)


def _quote(header: str, limit: int = 200) -> str:
    text = header if len(header) <= limit else header[:limit] + "..."
    return repr(text)


def float_column(values: pd.Series | pa.ChunkedArray) -> np.ndarray:
    """A float64 array of ``values``; missing or non-numeric entries become NaN."""
    if isinstance(values, pa.ChunkedArray):
        kind = values.type
        if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
            return values.cast(pa.float64(), safe=False).to_numpy(zero_copy_only=False)
        values = values.to_pandas()
    numbers = pd.to_numeric(values, errors="coerce")
    return np.asarray(pd.Series(numbers).to_numpy(dtype=np.float64, na_value=np.nan))


def frame_from_columns(data: Mapping[str, pd.Series | pa.ChunkedArray], columns: ColumnMap, *,
                       tz: str | None, source: str) -> pd.DataFrame:
    """Canonical bars (unvalidated, in file order) from the columns ``columns`` names."""
    if len(columns.ts) == 2:
        stamps = combine_date_time(_series(data[columns.ts[0]]), _series(data[columns.ts[1]]))
    else:
        stamps = _series(data[columns.ts[0]])
        if columns.ts_from_index:
            stamps = _index_timestamps(data, columns, source)
    ts_ns = timestamps_to_utc_ns(stamps, tz=tz, source=source)
    prices = [float_column(data[columns.fields[role]]) for role in FIELD_ALIASES]
    return bars_from_arrays(ts_ns, *prices)


def _index_timestamps(data: Mapping[str, pd.Series | pa.ChunkedArray], columns: ColumnMap,
                      source: str) -> pd.Series:
    """The first unnamed index column that holds times rather than row numbers."""
    for name in columns.index_columns:
        stamps = _series(data[name])
        if not _is_row_counter(stamps):
            return stamps
    raise DataError(
        f"{source}: no timestamp column; the file's header is {_quote(columns.header)} and its "
        "unnamed column (a pandas index) holds row numbers 0, 1, 2, ... rather than times "
        "(rule: timestamp column). Write the file with the times as the index "
        "(df.set_index('ts').to_csv(...)) or as a column named ts",
        source=source, rule="timestamp column")


def _is_row_counter(stamps: pd.Series) -> bool:
    if pd.api.types.is_datetime64_any_dtype(stamps.dtype):
        return False
    numbers = pd.to_numeric(stamps, errors="coerce")
    if len(numbers) == 0 or numbers.isna().any():
        return False
    start = float(numbers.iloc[0])
    return start in (0.0, 1.0) and np.array_equal(numbers.to_numpy(dtype=np.float64),
                                                  start + np.arange(len(numbers)))


def _series(values: pd.Series | pa.ChunkedArray) -> pd.Series:
    if isinstance(values, pd.Series):
        return values.reset_index(drop=True)
    if pa.types.is_integer(values.type):
        return values.to_pandas(types_mapper=lambda _: pd.Int64Dtype())
    return values.to_pandas()


def unreadable(source: str, kind: str, exc: BaseException) -> DataError:
    """The DataError for a file its reader could not parse, quoting the reader's complaint."""
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return DataError(f"{source}: cannot read the file as {kind}: {detail} (rule: readable "
                     f"file). Check that it is a complete {kind} file, or name its format",
                     source=source, rule="readable file")
