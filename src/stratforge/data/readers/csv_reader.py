"""Read delimited text bar files (``.csv``, ``.txt``, ``.tsv``, gzip-compressed ``.gz``).

The header row is read here (delimiter sniffed among ``, ; TAB |``), the columns are mapped by
their spellings, and only the needed columns are parsed, with ``pyarrow.csv`` (multi-threaded,
fast on millions of rows). Files pyarrow refuses (stray text in a price column, invalid UTF-8)
are read again with pandas' C parser, which turns unreadable prices into NaN for validation to
report.
"""

from __future__ import annotations

import csv
import gzip
import zlib
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from stratforge.data.readers.columns import (
    ColumnMap,
    frame_from_columns,
    map_columns,
    unreadable,
)
from stratforge.errors import DataError

DELIMITERS: tuple[str, ...] = (",", ";", "\t", "|")
_HEADER_LIMIT = 1 << 20


def read_csv_bars(path: Path, *, tz: str | None, source: str) -> pd.DataFrame:
    """Canonical bars from a delimited text file, rows in file order, not validated."""
    names, delimiter, line = read_header(path, source)
    columns = map_columns(names, source, header=line)
    try:
        data = _read_with_pyarrow(path, names, delimiter, columns)
    except (pa.ArrowException, OSError, EOFError, UnicodeDecodeError):
        data = _read_with_pandas(path, names, delimiter, columns, source)
    return frame_from_columns(data, columns, tz=tz, source=source)


def read_header(path: Path, source: str) -> tuple[list[str], str, str]:
    """The column names of the first line of ``path``, the delimiter they are split by and the
    line itself.

    An empty name (the index column ``DataFrame.to_csv()`` writes) is called ``Unnamed: <i>``
    (0-based position), as pandas does; repeated names get ``.1``, ``.2`` suffixes.
    """
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            first = handle.readline(_HEADER_LIMIT)
    except (OSError, EOFError, zlib.error) as exc:
        raise unreadable(source, "CSV", exc) from exc
    line = first.decode("utf-8-sig", errors="replace").rstrip("\r\n")
    if not line.strip():
        raise DataError(f"{source}: the file is empty or starts with a blank line (rule: "
                        "header row). Put the column names (ts, open, high, low, close, "
                        "volume) on the first line", source=source, rule="header row")
    delimiter = max(DELIMITERS, key=line.count)
    try:
        names = next(csv.reader([line], delimiter=delimiter))
    except csv.Error as exc:  # a field over csv.field_size_limit(), a stray carriage return
        fix = ("end lines with a line feed (the file has carriage returns alone, as old Mac "
               "files do)" if "\r" in line else
               f"keep each column name under {csv.field_size_limit() // 1024} KiB")
        raise DataError(
            f"{source}: cannot split the first line into column names: {exc} (rule: header "
            f"row; the line is {len(line):,} characters). Put the column names (ts, open, high, "
            f"low, close, volume) on the first line and {fix}, or check that this is a bar "
            "file", source=source, rule="header row") from exc
    named = [name.strip() or f"Unnamed: {i}" for i, name in enumerate(names)]
    return _unique(named), delimiter, line


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        count = seen.get(name, 0)
        seen[name] = count + 1
        out.append(name if count == 0 else f"{name}.{count}")
    return out


def _read_with_pyarrow(path: Path, names: list[str], delimiter: str,
                       columns: ColumnMap) -> dict[str, pa.ChunkedArray]:
    types = {name: pa.string() for name in columns.ts}
    types |= {name: pa.float64() for name in columns.fields.values()}
    table = pacsv.read_csv(
        path,
        read_options=pacsv.ReadOptions(column_names=names, skip_rows=1),
        parse_options=pacsv.ParseOptions(delimiter=delimiter),
        convert_options=pacsv.ConvertOptions(include_columns=columns.needed,
                                             column_types=types))
    return {name: table.column(name) for name in columns.needed}


def _read_with_pandas(path: Path, names: list[str], delimiter: str, columns: ColumnMap,
                      source: str) -> dict[str, pd.Series]:
    """The fallback reader: every column as text, a row with extra fields is an error."""
    try:
        frame = pd.read_csv(path, sep=delimiter, header=0, dtype=str, engine="c",
                            encoding_errors="replace")
    except (ValueError, OSError, EOFError, zlib.error) as exc:  # ParserError is a ValueError
        raise unreadable(source, "CSV", exc) from exc
    if len(frame.columns) != len(names):
        raise unreadable(source, "CSV", ValueError(
            f"the header has {len(names)} columns, pandas found {len(frame.columns)}"))
    frame.columns = names
    return {name: frame[name] for name in columns.needed}
