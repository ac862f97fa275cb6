"""Read Parquet bar files: columns mapped by spelling, only those columns loaded."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from stratforge.data.readers.columns import frame_from_columns, map_columns, unreadable


def read_parquet_bars(path: Path, *, tz: str | None, source: str) -> pd.DataFrame:
    """Canonical bars from a Parquet file, rows in file order, not validated.

    Timestamp columns may be typed (with or without a zone), dates, epoch integers or text;
    separate date and time columns are combined.
    """
    try:
        parquet = pq.ParquetFile(path)
        columns = map_columns(parquet.schema_arrow.names, source)
        table = parquet.read(columns=columns.needed)
    except (pa.ArrowException, OSError) as exc:
        raise unreadable(source, "Parquet", exc) from exc
    data = {name: table.column(name) for name in columns.needed}
    for name in columns.ts:
        data[name] = _timestamp_input(data[name], paired=len(columns.ts) == 2)
    return frame_from_columns(data, columns, tz=tz, source=source)


def _timestamp_input(values: pa.ChunkedArray, *, paired: bool) -> pa.ChunkedArray:
    """Dates and times as text when they are combined; a lone date column as midnight."""
    kind = values.type
    if paired and (pa.types.is_date(kind) or pa.types.is_time(kind)):
        return values.cast(pa.string())
    if pa.types.is_date(kind):
        return values.cast(pa.timestamp("s"))
    return values
