"""Read bar files (CSV, Parquet, Databento DBN) into canonical bars columns.

``read_bar_file`` only reads: rows come back in the file's order and number, unsorted and
unvalidated, so that ``validate_bars(frame, source=str(path))`` can report each bad row by its
position. Column spellings are described in ``readers.columns``, timestamp encodings and time
zones in ``readers.timestamps``, DBN specifics in ``readers.dbn_reader``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from stratforge.data.readers.csv_reader import read_csv_bars
from stratforge.data.readers.dbn_reader import ZSTD_MAGIC, read_dbn_bars
from stratforge.data.readers.parquet_reader import read_parquet_bars
from stratforge.data.readers.timestamps import check_timezone
from stratforge.errors import DataError

__all__ = ["READ_FORMATS", "read_bar_file"]

READ_FORMATS: tuple[str, ...] = ("auto", "csv", "parquet", "dbn")
SUFFIX_FORMATS: tuple[tuple[str, str], ...] = (
    (".csv", "csv"), (".txt", "csv"), (".tsv", "csv"),
    (".csv.gz", "csv"), (".txt.gz", "csv"), (".tsv.gz", "csv"),
    (".parquet", "parquet"), (".pq", "parquet"),
    (".dbn", "dbn"), (".dbn.zst", "dbn"),
)
MAGIC_FORMATS: tuple[tuple[bytes, str], ...] = (
    (b"PAR1", "parquet"), (b"DBN", "dbn"), (ZSTD_MAGIC, "dbn"),
)
_SNIFF_BYTES = 4096


def read_bar_file(path: Path | str, *, fmt: str = "auto", tz: str | None = None,
                  instrument_id: int | None = None) -> pd.DataFrame:
    """Read a bar file into a frame with columns ts, open, high, low, close, volume.

    ``ts`` is datetime64[ns, UTC], the others float64; rows keep the file's order and count
    (no sorting, deduplication or OHLC checks: run ``validate_bars`` next).

    Args:
        path: the file.
        fmt: one of ``READ_FORMATS``; ``"auto"`` goes by the suffix (.csv .txt .tsv, optionally
            .gz; .parquet .pq; .dbn .dbn.zst), else by the first bytes (Parquet, DBN or zstd
            magic; otherwise UTF-8 text is read as CSV).
        tz: IANA zone of naive timestamps (default UTC). Zone-aware text, typed zone-aware
            columns, epochs and DBN files already name their instants and ignore it.
        instrument_id: DBN files only: keep this instrument's records. Needed when the file
            holds several instruments; ignored for CSV and Parquet.

    Raises:
        DataError: naming the file and what to do, for a missing or unreadable file, an
            unknown format, no timestamp column, a missing price or volume column, an
            unreadable or ambiguous timestamp, a DBN file that is not OHLCV, truncated, or
            mixes instruments without ``instrument_id``.
    """
    path = Path(path)
    source = str(path)
    if fmt not in READ_FORMATS:
        raise DataError(f"{source}: unknown format {fmt!r} (rule: format one of "
                        f"{', '.join(READ_FORMATS)}). Pass one of these",
                        source=source, rule="format")
    check_timezone(tz, source)
    _check_file(path, source)
    kind = detect_format(path, source) if fmt == "auto" else fmt
    if kind == "csv":
        return read_csv_bars(path, tz=tz, source=source)
    if kind == "parquet":
        return read_parquet_bars(path, tz=tz, source=source)
    return read_dbn_bars(path, instrument_id=instrument_id, source=source)


def _check_file(path: Path, source: str) -> None:
    if not path.exists():
        raise DataError(f"{source}: file not found (rule: file exists). Check the path",
                        source=source, rule="file exists")
    if not path.is_file():
        raise DataError(f"{source}: not a regular file (rule: file exists). Give the path of "
                        "a bar file", source=source, rule="file exists")


def detect_format(path: Path, source: str) -> str:
    """'csv', 'parquet' or 'dbn' for ``path``, from its suffix or else its first bytes."""
    name = path.name.lower()
    for suffix, kind in SUFFIX_FORMATS:
        if name.endswith(suffix):
            return kind
    try:
        with path.open("rb") as handle:
            head = handle.read(_SNIFF_BYTES)
    except OSError as exc:
        raise DataError(f"{source}: cannot read the file: {exc} (rule: readable file). Check "
                        "its permissions", source=source, rule="readable file") from exc
    for magic, kind in MAGIC_FORMATS:
        if head.startswith(magic):
            return kind
    if head and b"\x00" not in head and _is_utf8(head):
        return "csv"
    raise DataError(f"{source}: cannot tell the file's format from its name or first bytes "
                    f"(rule: known format). Name it .csv, .parquet or .dbn(.zst), or pass the "
                    "format (csv, parquet or dbn)", source=source, rule="format")


def _is_utf8(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 3  # a character cut at the sniffing boundary
    return True
