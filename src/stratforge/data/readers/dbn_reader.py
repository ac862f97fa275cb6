"""Read Databento DBN files (``.dbn``, zstd-compressed ``.dbn.zst``) of an OHLCV schema.

Only the metadata goes through ``databento_dbn``; the records, fixed-size OHLCV structs, are
read in one go with ``numpy.frombuffer`` (13 million records in a few seconds, mostly disk
reading, rather than minutes of per-record Python objects). Every record's length and rtype
are checked. Zstandard is decompressed with pyarrow's codec, so the ``dbn`` extra needs only
``databento-dbn``.

Layout (DBN versions 1-3): ``b"DBN"``, a version byte, a little-endian uint32 metadata length,
the metadata, then records. An OHLCV record is 56 bytes: header (length in 4-byte words = 14,
rtype, publisher_id u2, instrument_id u4, ts_event u8), open/high/low/close i8 fixed-point
(1e-9), volume u8; with ``ts_out`` in the metadata each record carries 8 more bytes.
"""

from __future__ import annotations

import struct
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pyarrow as pa

from stratforge.data.bars import bars_from_arrays
from stratforge.data.readers.columns import unreadable
from stratforge.errors import DataError

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
OHLCV_SCHEMAS: tuple[str, ...] = ("ohlcv-1s", "ohlcv-1m", "ohlcv-1h", "ohlcv-1d", "ohlcv-eod")
OHLCV_DTYPE = np.dtype([
    ("length", "u1"), ("rtype", "u1"), ("publisher_id", "<u2"), ("instrument_id", "<u4"),
    ("ts_event", "<u8"), ("open", "<i8"), ("high", "<i8"), ("low", "<i8"), ("close", "<i8"),
    ("volume", "<u8"),
])
OHLCV_TS_OUT_DTYPE = np.dtype([*OHLCV_DTYPE.descr, ("ts_out", "<u8")])
_LEGACY_OHLCV_RTYPE = 0x11
_PRICE_FIELDS = ("open", "high", "low", "close")


def read_dbn_bars(path: Path, *, instrument_id: int | None, source: str) -> pd.DataFrame:
    """Canonical bars from a DBN OHLCV file, rows in file order, not validated.

    ``ts`` is ``ts_event``; prices are scaled by ``FIXED_PRICE_SCALE`` and undefined prices
    become NaN (so validation rejects them). A file holding several instruments needs
    ``instrument_id``; with it, only that instrument's records are kept.
    """
    dbn = _import_databento_dbn(source)
    data = _file_bytes(path, source)
    metadata, body = _split_metadata(dbn, data, source)
    dtype = OHLCV_TS_OUT_DTYPE if metadata.ts_out else OHLCV_DTYPE
    schema = str(metadata.schema) if metadata.schema is not None else "mixed (no schema)"
    if schema not in OHLCV_SCHEMAS:
        raise DataError(f"{source}: DBN schema is {schema}, not OHLCV (rule: schema one of "
                        f"{', '.join(OHLCV_SCHEMAS)}). Download the data as ohlcv-1s or "
                        "ohlcv-1m bars", source=source, rule="dbn schema")
    rtype = dbn.RType.from_schema(metadata.schema).value
    records = _records(body, dtype, rtype, source)
    records = _one_instrument(records, instrument_id, source)
    return _bars(dbn, records)


def _import_databento_dbn(source: str) -> ModuleType:
    try:
        import databento_dbn
    except ImportError as exc:
        raise DataError(f"{source}: reading DBN files needs the databento-dbn package (rule: "
                        'dbn support). Install it with: pip install "stratforge[dbn]"',
                        source=source, rule="dbn support") from exc
    return databento_dbn


def _file_bytes(path: Path, source: str) -> bytes:
    try:
        with path.open("rb") as handle:
            compressed = handle.read(4) == ZSTD_MAGIC
        if not compressed:
            return path.read_bytes()
        if not pa.Codec.is_available("zstd"):
            raise DataError(f"{source}: this pyarrow build cannot decompress zstd (rule: "
                            "zstd support). Decompress the file first (zstd -d FILE) and read "
                            "the .dbn", source=source, rule="zstd support")
        with pa.input_stream(str(path), compression="zstd") as stream:
            return stream.read()
    except (pa.ArrowException, OSError) as exc:
        raise unreadable(source, "DBN", exc) from exc


def _split_metadata(dbn: ModuleType, data: bytes, source: str) -> tuple[object, memoryview]:
    if len(data) < 8 or data[:3] != b"DBN":
        raise DataError(f"{source}: not a DBN file (it does not start with b'DBN') (rule: "
                        "DBN prelude). Check the file, or name its format",
                        source=source, rule="dbn prelude")
    (length,) = struct.unpack_from("<I", data, 4)
    end = 8 + length
    try:
        if len(data) < end:
            raise ValueError(f"metadata needs {length} bytes, only {len(data) - 8} present")
        metadata = dbn.Metadata.decode(data[:end])
    except Exception as exc:  # databento_dbn raises its own DBNError type
        raise DataError(f"{source}: cannot read the DBN metadata (DBN version {data[3]}): "
                        f"{exc} (rule: DBN metadata). The file may be truncated, or newer "
                        "than the installed databento-dbn (upgrade it)",
                        source=source, rule="dbn metadata") from exc
    return metadata, memoryview(data)[end:]


def _records(body: memoryview, dtype: np.dtype, rtype: int, source: str) -> np.ndarray:
    count, leftover = divmod(len(body), dtype.itemsize)
    records = np.frombuffer(body, dtype=dtype, count=count)
    bad = (records["length"] != dtype.itemsize // 4) | (
        (records["rtype"] != rtype) & (records["rtype"] != _LEGACY_OHLCV_RTYPE))
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(
            f"{source} record {i + 1}: rtype 0x{records['rtype'][i]:02x}, length "
            f"{records['length'][i] * 4} bytes, where every record should be an OHLCV record "
            f"(rtype 0x{rtype:02x}, {dtype.itemsize} bytes) (rule: OHLCV records only). "
            "Download the data as a single OHLCV schema", source=source, row=i + 1,
            rule="dbn records")
    if leftover:
        raise DataError(f"{source}: the file ends {leftover} bytes into record {count + 1} "
                        f"(rule: whole records). The file is truncated; download it again",
                        source=source, row=count + 1, rule="dbn records")
    return records


def _one_instrument(records: np.ndarray, instrument_id: int | None, source: str) -> np.ndarray:
    ids = records["instrument_id"]
    if instrument_id is None:
        if len(ids) == 0 or (ids == ids[0]).all():
            return records
        found, counts = np.unique(ids, return_counts=True)
        raise DataError(f"{source}: holds {len(found)} instruments, {_id_list(found, counts)} "
                        "(rule: one instrument per file). Pass --instrument-id with one of "
                        "these ids", source=source, rule="one instrument")
    keep = ids == instrument_id
    if not keep.any():
        found, counts = np.unique(ids, return_counts=True)
        listed = _id_list(found, counts) if len(found) else "no records at all"
        raise DataError(f"{source}: no records for instrument id {instrument_id}; the file "
                        f"holds {listed} (rule: instrument present). Pass one of these ids",
                        source=source, rule="instrument present")
    return records if keep.all() else records[keep]


def _id_list(ids: np.ndarray, counts: np.ndarray, limit: int = 20) -> str:
    parts = [f"id {i} ({c:,} row{'' if c == 1 else 's'})"
             for i, c in zip(ids[:limit], counts[:limit], strict=True)]
    more = f" and {len(ids) - limit} more" if len(ids) > limit else ""
    return ", ".join(parts) + more


def _bars(dbn: ModuleType, records: np.ndarray) -> pd.DataFrame:
    raw_ts = records["ts_event"]
    ts = raw_ts.astype(np.int64)
    ts[raw_ts > np.iinfo(np.int64).max] = np.iinfo(np.int64).min  # UNDEF_TIMESTAMP -> NaT
    prices = []
    for field in _PRICE_FIELDS:
        fixed = records[field]
        price = fixed / dbn.FIXED_PRICE_SCALE
        price[fixed == dbn.UNDEF_PRICE] = np.nan
        prices.append(price)
    return bars_from_arrays(ts, *prices, records["volume"].astype(np.float64))
