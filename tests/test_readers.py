"""Reading bar files (CSV, Parquet, Databento DBN) into canonical columns.

Expected instants are written by hand or computed with zoneinfo/datetime, never with the
reader's own conversion code.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stratforge.data.bars import BAR_COLUMNS, TS_DTYPE, validate_bars
from stratforge.data.readers import READ_FORMATS, read_bar_file
from stratforge.errors import DataError

dbn = pytest.importorskip("databento_dbn")

CHICAGO = ZoneInfo("America/Chicago")
# 2024-01-02 09:30, 09:31, 09:32 UTC: epoch seconds written out by hand.
EPOCH_S = (1704187800, 1704187860, 1704187920)
UTC_ISO = ("2024-01-02T09:30:00Z", "2024-01-02T09:31:00Z", "2024-01-02T09:32:00Z")
PRICES = "1.5,2.0,1.0,1.75,10\n"


def instants(*iso: str) -> list[pd.Timestamp]:
    return [pd.Timestamp(s).tz_convert("UTC") for s in iso]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def csv_rows(header: str, stamps: list[str], sep: str = ",") -> str:
    body = "".join(f"{s}{sep}{PRICES.replace(',', sep)}" for s in stamps)
    return header + "\n" + body


def assert_canonical(frame: pd.DataFrame) -> None:
    assert list(frame.columns) == list(BAR_COLUMNS)
    assert frame["ts"].dtype == TS_DTYPE
    for column in BAR_COLUMNS[1:]:
        assert frame[column].dtype == np.float64


def ts_list(frame: pd.DataFrame) -> list[pd.Timestamp]:
    return list(frame["ts"])


def check_names_file(info: pytest.ExceptionInfo[DataError], path: Path) -> None:
    assert str(path) in str(info.value)
    assert info.value.source == str(path)


# --- CSV column spellings ------------------------------------------------------------------

@pytest.mark.parametrize("header", [
    "timestamp,open,high,low,close,volume",
    "Timestamp,Open,High,Low,Close,Volume",
    "TS,OPEN,HIGH,LOW,CLOSE,VOLUME",
    "ts,o,h,l,c,v",
    " time , Open , High , Low , Close , Vol ",
    "_date_,open,high,low,close,qty",
    "datetime,open,high,low,last,size",
    "Date_Time,price_open,price_high,price_low,price_close,tick_volume",
    "ts_event,open,high,low,close,volume",
    "Gmt time,Open,High,Low,Close,Volume",
    "<DATETIME>,<OPEN>,<HIGH>,<LOW>,<CLOSE>,<TICKVOL>",
])
def test_csv_column_spellings(tmp_path: Path, header: str) -> None:
    path = write(tmp_path, "bars.csv", csv_rows(header, list(UTC_ISO)))
    frame = read_bar_file(path)
    assert_canonical(frame)
    assert ts_list(frame) == instants(*UTC_ISO)
    assert frame.loc[0, ["open", "high", "low", "close", "volume"]].tolist() == \
        [1.5, 2.0, 1.0, 1.75, 10.0]
    validate_bars(frame, source=str(path))


def test_volume_preferred_over_tick_volume(tmp_path: Path) -> None:
    path = write(tmp_path, "bars.csv", "time,open,high,low,close,tick_volume,volume\n"
                                       "2024-01-02 09:30,1,2,0.5,1.5,99,7\n")
    assert read_bar_file(path)["volume"].tolist() == [7.0]


@pytest.mark.parametrize(("header", "rows", "sep"), [
    ("Date,Time,Open,High,Low,Close,Volume",
     ["2024-01-02,09:30:00", "2024-01-02,09:31:00"], ","),
    ("<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>",
     ["2024.01.02\t09:30", "2024.01.02\t09:31"], "\t"),
    ("Date;Time;Open;High;Low;Close;Volume", ["02/01/2024;09:30", "13/01/2024;09:31"], ";"),
    ("date,time,open,high,low,close,volume", ["20240102,930", "20240102,0931"], ","),
    ("Date,Time,Open,High,Low,Close,Volume", ["20240102,093000", "20240102,093100"], ","),
])
def test_separate_date_and_time_columns(tmp_path: Path, header: str, rows: list[str],
                                        sep: str) -> None:
    path = write(tmp_path, "bars.txt", csv_rows(header, rows, sep=sep))
    frame = read_bar_file(path)
    assert_canonical(frame)
    first_day = "2024-01-02"
    second_day = "2024-01-13" if "13/01" in rows[1] else first_day
    assert ts_list(frame) == instants(f"{first_day}T09:30Z", f"{second_day}T09:31Z")


def test_dukascopy_day_first_dots(tmp_path: Path) -> None:
    # Dukascopy exports 'Gmt time' as dd.mm.yyyy; 01.02 must be 1 February.
    path = write(tmp_path, "EURUSD.csv", csv_rows(
        "Gmt time,Open,High,Low,Close,Volume",
        ["01.02.2024 22:00:00.000", "01.02.2024 22:01:00.500"]))
    assert ts_list(read_bar_file(path)) == \
        instants("2024-02-01T22:00:00Z", "2024-02-01T22:01:00.5Z")


def test_month_first_slashes_switch_to_day_first_when_needed(tmp_path: Path) -> None:
    us = write(tmp_path, "us.csv", csv_rows("Date,o,h,l,c,v", ["01/02/2024 09:30"]))
    assert ts_list(read_bar_file(us)) == instants("2024-01-02T09:30Z")
    eu = write(tmp_path, "eu.csv", csv_rows("Date,o,h,l,c,v",
                                            ["01/02/2024 09:30", "13/02/2024 09:30"]))
    assert ts_list(read_bar_file(eu)) == instants("2024-02-01T09:30Z", "2024-02-13T09:30Z")


def test_gzip_semicolon_and_bom(tmp_path: Path) -> None:
    import gzip

    text = "\ufeff" + csv_rows("Timestamp;Open;High;Low;Close;Volume", list(UTC_ISO), sep=";")
    path = tmp_path / "bars.csv.gz"
    path.write_bytes(gzip.compress(text.encode("utf-8")))
    assert ts_list(read_bar_file(path)) == instants(*UTC_ISO)


# --- epochs ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("unit", "factor"), [("s", 1), ("ms", 10**3), ("us", 10**6),
                                              ("ns", 10**9)])
def test_epoch_units_decode_to_the_same_instants(tmp_path: Path, unit: str,
                                                 factor: int) -> None:
    stamps = [str(s * factor) for s in EPOCH_S]
    path = write(tmp_path, f"{unit}.csv", csv_rows("ts,open,high,low,close,volume", stamps))
    assert ts_list(read_bar_file(path)) == instants(*UTC_ISO)


def test_epoch_keeps_sub_unit_precision(tmp_path: Path) -> None:
    path = write(tmp_path, "frac.csv", csv_rows(
        "ts,o,h,l,c,v", ["1704187800.5", "1704187860.25"]))
    assert ts_list(read_bar_file(path)) == \
        instants("2024-01-02T09:30:00.5Z", "2024-01-02T09:31:00.25Z")
    ns = write(tmp_path, "ns.csv", csv_rows("ts,o,h,l,c,v", ["1704187800123456789"]))
    assert read_bar_file(ns)["ts"].iat[0] == pd.Timestamp("2024-01-02T09:30:00.123456789Z")


def test_missing_epoch_is_nat_and_validation_names_the_row(tmp_path: Path) -> None:
    path = write(tmp_path, "gap.csv", "ts,o,h,l,c,v\n1704187800,1,1,1,1,1\n,1,1,1,1,1\n")
    frame = read_bar_file(path)
    assert frame["ts"].iat[0] == pd.Timestamp(UTC_ISO[0]) and pd.isna(frame["ts"].iat[1])
    with pytest.raises(DataError) as info:
        validate_bars(frame, source=str(path))
    assert info.value.row == 2


def test_calendar_digit_dates(tmp_path: Path) -> None:
    path = write(tmp_path, "daily.csv", csv_rows("Date,Open,High,Low,Close,Volume",
                                                 ["20240102", "20240103"]))
    assert ts_list(read_bar_file(path)) == instants("2024-01-02T00:00Z", "2024-01-03T00:00Z")


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seconds=st.lists(st.integers(min_value=100_000_000, max_value=7_000_000_000),
                        min_size=1, max_size=20))
def test_epoch_property_every_unit_matches_datetime(tmp_path: Path,
                                                    seconds: list[int]) -> None:
    expected = [pd.Timestamp(datetime.fromtimestamp(s, tz=UTC)) for s in seconds]
    for unit, factor in (("s", 1), ("ms", 10**3), ("us", 10**6), ("ns", 10**9)):
        path = write(tmp_path, f"p_{unit}.csv", csv_rows(
            "ts,o,h,l,c,v", [str(s * factor) for s in seconds]))
        assert ts_list(read_bar_file(path)) == expected  # same order and count as the file


# --- ISO text and time zones ------------------------------------------------------------------

@pytest.mark.parametrize("stamps", [
    ["2024-01-02T10:30:00+01:00", "2024-01-02T04:31:00-05:00", "2024-01-02T09:32:00+00:00"],
    list(UTC_ISO),
    ["2024-01-02 09:30:00", "2024-01-02 09:31:00", "2024-01-02 09:32:00"],
    ["2024-01-02T09:30", "2024-01-02 09:31:00", "2024-01-02 09:32:00.000"],
])
def test_iso_text(tmp_path: Path, stamps: list[str]) -> None:
    path = write(tmp_path, "iso.csv", csv_rows("timestamp,open,high,low,close,volume", stamps))
    assert ts_list(read_bar_file(path)) == instants(*UTC_ISO)


def test_offsets_changing_with_dst_are_converted(tmp_path: Path) -> None:
    path = write(tmp_path, "cst.csv", csv_rows(
        "time,o,h,l,c,v", ["2024-03-09T12:00:00-06:00", "2024-03-11T12:00:00-05:00"]))
    assert ts_list(read_bar_file(path, tz="Asia/Tokyo")) == \
        instants("2024-03-09T18:00Z", "2024-03-11T17:00Z")  # tz ignored: offsets win


def test_mixing_naive_and_offset_text_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "mixed.csv", csv_rows(
        "time,o,h,l,c,v", ["2024-03-09T12:00:00-06:00", "2024-03-11T12:00:00"]))
    with pytest.raises(DataError, match="row 2") as info:
        read_bar_file(path)
    check_names_file(info, path)


def chicago(*parts: int, fold: int = 0) -> pd.Timestamp:
    local = datetime(*parts, tzinfo=CHICAGO, fold=fold)
    return pd.Timestamp(local.astimezone(UTC))


def test_naive_local_times_across_spring_forward(tmp_path: Path) -> None:
    path = write(tmp_path, "spring.csv", csv_rows("time,o,h,l,c,v", [
        "2024-03-09 23:00", "2024-03-10 01:30", "2024-03-10 02:30", "2024-03-10 03:00",
        "2024-03-10 04:15"]))
    got = ts_list(read_bar_file(path, tz="America/Chicago"))
    assert got[:2] == [chicago(2024, 3, 9, 23), chicago(2024, 3, 10, 1, 30)]
    # 02:30 does not exist that night: moved forward to the end of the gap, 03:00 CDT.
    assert got[2] == pd.Timestamp("2024-03-10T08:00Z")
    assert got[3:] == [chicago(2024, 3, 10, 3), chicago(2024, 3, 10, 4, 15)]
    assert got[1] == pd.Timestamp("2024-03-10T07:30Z")  # CST, UTC-6
    assert got[3] == pd.Timestamp("2024-03-10T08:00Z")  # CDT, UTC-5


def test_naive_local_times_across_fall_back(tmp_path: Path) -> None:
    path = write(tmp_path, "fall.csv", csv_rows("time,o,h,l,c,v", [
        "2024-11-03 00:30", "2024-11-03 01:00", "2024-11-03 01:30", "2024-11-03 01:00",
        "2024-11-03 01:30", "2024-11-03 02:00"]))
    got = ts_list(read_bar_file(path, tz="America/Chicago"))
    assert got == [chicago(2024, 11, 3, 0, 30), chicago(2024, 11, 3, 1, 0),
                   chicago(2024, 11, 3, 1, 30), chicago(2024, 11, 3, 1, 0, fold=1),
                   chicago(2024, 11, 3, 1, 30, fold=1), chicago(2024, 11, 3, 2, 0)]
    assert got[1] == pd.Timestamp("2024-11-03T06:00Z")
    assert got[3] == pd.Timestamp("2024-11-03T07:00Z")


def test_ambiguous_local_time_without_repeat_names_the_row(tmp_path: Path) -> None:
    path = write(tmp_path, "hourly.csv", csv_rows("time,o,h,l,c,v", [
        "2024-11-03 00:00", "2024-11-03 01:00", "2024-11-03 02:00"]))
    with pytest.raises(DataError, match=r"row 2: local time 2024-11-03 01:00:00") as info:
        read_bar_file(path, tz="America/Chicago")
    check_names_file(info, path)
    assert info.value.row == 2


def test_unknown_time_zone(tmp_path: Path) -> None:
    path = write(tmp_path, "bars.csv", csv_rows("ts,o,h,l,c,v", list(UTC_ISO)))
    with pytest.raises(DataError, match="Mars/Olympus") as info:
        read_bar_file(path, tz="Mars/Olympus")
    check_names_file(info, path)


# --- Parquet -----------------------------------------------------------------------------------

def write_parquet(path: Path, ts: pa.Array, names: tuple[str, ...] = (
        "Timestamp", "Open", "High", "Low", "Close", "Volume")) -> Path:
    n = len(ts)
    columns = [ts] + [pa.array(np.full(n, v)) for v in (1.5, 2.0, 1.0, 1.75)] + \
        [pa.array(np.full(n, 10, dtype=np.int64))]
    pq.write_table(pa.table(columns, names=list(names)), path)
    return path


def test_parquet_tz_aware_timestamps(tmp_path: Path) -> None:
    local = [datetime(2024, 1, 2, 10, 30 + i) for i in range(3)]  # Berlin, UTC+1 in winter
    ts = pa.array(pd.DatetimeIndex(local).tz_localize("Europe/Berlin"))
    frame = read_bar_file(write_parquet(tmp_path / "aware.parquet", ts))
    assert_canonical(frame)
    assert ts_list(frame) == instants(*UTC_ISO)
    assert frame["volume"].tolist() == [10.0] * 3


def test_parquet_naive_timestamps(tmp_path: Path) -> None:
    naive = pa.array([datetime(2024, 1, 2, 9, 30 + i) for i in range(3)], pa.timestamp("us"))
    path = write_parquet(tmp_path / "naive.pq", naive)
    assert ts_list(read_bar_file(path)) == instants(*UTC_ISO)
    as_chicago = ts_list(read_bar_file(path, tz="America/Chicago"))
    assert as_chicago == [chicago(2024, 1, 2, 9, 30 + i) for i in range(3)]


def test_parquet_epoch_ms_and_spellings(tmp_path: Path) -> None:
    ms = pa.array([s * 1000 for s in EPOCH_S], pa.int64())
    path = write_parquet(tmp_path / "ms.parquet", ms, ("ts_event", "o", "h", "l", "c", "qty"))
    assert ts_list(read_bar_file(path)) == instants(*UTC_ISO)


def test_parquet_date_and_time_columns(tmp_path: Path) -> None:
    table = pa.table({
        "Date": pa.array([datetime(2024, 1, 2).date()] * 2, pa.date32()),
        "Time": pa.array(["09:30:00", "09:31:00"]),
        "Open": [1.0, 1.0], "High": [2.0, 2.0], "Low": [0.5, 0.5], "Close": [1.0, 1.0],
        "Volume": [5, 6],
    })
    pq.write_table(table, tmp_path / "dt.parquet")
    assert ts_list(read_bar_file(tmp_path / "dt.parquet")) == instants(*UTC_ISO[:2])


# --- row order -------------------------------------------------------------------------------

def test_unsorted_csv_comes_back_unsorted(tmp_path: Path) -> None:
    order = [UTC_ISO[2], UTC_ISO[0], UTC_ISO[1], UTC_ISO[0]]
    path = write(tmp_path, "unsorted.csv", csv_rows("ts,o,h,l,c,v", order))
    frame = read_bar_file(path)
    assert ts_list(frame) == instants(*order)
    with pytest.raises(DataError) as info:
        validate_bars(frame, source=str(path))
    assert info.value.row == 2


def test_unsorted_parquet_comes_back_unsorted(tmp_path: Path) -> None:
    ts = pa.array([s * 10**9 for s in (EPOCH_S[1], EPOCH_S[0], EPOCH_S[2])], pa.int64())
    frame = read_bar_file(write_parquet(tmp_path / "u.parquet", ts))
    assert ts_list(frame) == instants(UTC_ISO[1], UTC_ISO[0], UTC_ISO[2])


def test_unreadable_price_becomes_nan_at_its_row(tmp_path: Path) -> None:
    path = write(tmp_path, "junk.csv", "ts,o,h,l,c,v\n"
                 f"{UTC_ISO[0]},1,2,0.5,1,3\n{UTC_ISO[1]},1,n/a?,0.5,1,3\n")
    frame = read_bar_file(path)
    assert np.isnan(frame["high"].iat[1]) and frame["high"].iat[0] == 2.0
    with pytest.raises(DataError, match="row 2") as info:
        validate_bars(frame, source=str(path))
    assert info.value.row == 2


# --- DBN ---------------------------------------------------------------------------------------

SCALE = 1_000_000_000
T0 = 1_704_187_800 * SCALE  # 2024-01-02 09:30 UTC


def ohlcv(instrument_id: int = 42, i: int = 0, rtype: int = 0x21, *, open_: int | None = None,
          ts_out: int | None = None) -> bytes:
    price = 100 * SCALE + 250_000_000 + i * SCALE  # 100.25 + i
    args = (rtype, 1, instrument_id, T0 + i * 60 * SCALE,
            price if open_ is None else open_, price + SCALE, price - SCALE, price, 7 + i)
    msg = dbn.OHLCVMsg(*args) if ts_out is None else dbn.OHLCVMsg(*args, ts_out=ts_out)
    return bytes(msg)


def write_dbn(path: Path, records: list[bytes], schema: object = None, *,
              compress: bool = False, ts_out: bool = False) -> Path:
    metadata = dbn.Metadata(dataset="GLBX.MDP3", start=T0, stype_in=dbn.SType.RAW_SYMBOL,
                            stype_out=dbn.SType.INSTRUMENT_ID,
                            schema=schema if schema is not None else dbn.Schema.OHLCV_1M,
                            symbols=["MNQ.FUT"], ts_out=ts_out)
    data = metadata.encode() + b"".join(records)
    if compress:
        with pa.CompressedOutputStream(str(path), "zstd") as stream:
            stream.write(data)
    else:
        path.write_bytes(data)
    return path


@pytest.mark.parametrize(("schema", "rtype"), [("OHLCV_1S", 0x20), ("OHLCV_1M", 0x21),
                                               ("OHLCV_1H", 0x22), ("OHLCV_1D", 0x23)])
def test_dbn_prices_are_scaled(tmp_path: Path, schema: str, rtype: int) -> None:
    path = write_dbn(tmp_path / "bars.dbn", [ohlcv(i=i, rtype=rtype) for i in range(3)],
                     getattr(dbn.Schema, schema))
    frame = read_bar_file(path)
    assert_canonical(frame)
    assert ts_list(frame) == instants(*UTC_ISO)
    assert frame["open"].tolist() == [100.25, 101.25, 102.25]
    assert frame["high"].tolist() == [101.25, 102.25, 103.25]
    assert frame["low"].tolist() == [99.25, 100.25, 101.25]
    assert frame["close"].tolist() == [100.25, 101.25, 102.25]
    assert frame["volume"].tolist() == [7.0, 8.0, 9.0]
    validate_bars(frame, source=str(path))


def test_dbn_zstd_matches_plain(tmp_path: Path) -> None:
    records = [ohlcv(i=i) for i in range(3)]
    plain = read_bar_file(write_dbn(tmp_path / "bars.dbn", records))
    packed = read_bar_file(write_dbn(tmp_path / "bars.dbn.zst", records, compress=True))
    pd.testing.assert_frame_equal(plain, packed)


def test_dbn_sniffed_without_suffix(tmp_path: Path) -> None:
    records = [ohlcv(i=i) for i in range(2)]
    assert len(read_bar_file(write_dbn(tmp_path / "a.bin", records))) == 2
    assert len(read_bar_file(write_dbn(tmp_path / "b.bin", records, compress=True))) == 2
    assert len(read_bar_file(write_dbn(tmp_path / "c.data", records), fmt="dbn")) == 2


def test_dbn_with_ts_out_records(tmp_path: Path) -> None:
    path = write_dbn(tmp_path / "out.dbn", [ohlcv(i=i, ts_out=T0 + 5) for i in range(2)],
                     ts_out=True)
    assert ts_list(read_bar_file(path)) == instants(*UTC_ISO[:2])


def test_dbn_several_instruments_need_an_id(tmp_path: Path) -> None:
    records = [ohlcv(42, 0), ohlcv(43, 1), ohlcv(42, 2), ohlcv(43, 3), ohlcv(42, 4)]
    path = write_dbn(tmp_path / "multi.dbn", records)
    with pytest.raises(DataError) as info:
        read_bar_file(path)
    check_names_file(info, path)
    message = str(info.value)
    assert "id 42 (3 rows)" in message and "id 43 (2 rows)" in message
    assert "--instrument-id" in message
    only = read_bar_file(path, instrument_id=43)
    assert only["open"].tolist() == [101.25, 103.25]
    assert only["ts"].tolist() == [pd.Timestamp(T0 + k * 60 * SCALE, tz="UTC") for k in (1, 3)]
    with pytest.raises(DataError, match="no records for instrument id 7") as info:
        read_bar_file(path, instrument_id=7)
    check_names_file(info, path)


def test_dbn_undefined_price_is_nan(tmp_path: Path) -> None:
    path = write_dbn(tmp_path / "undef.dbn", [ohlcv(i=0), ohlcv(i=1, open_=dbn.UNDEF_PRICE)])
    frame = read_bar_file(path)
    assert frame["open"].iat[0] == 100.25 and np.isnan(frame["open"].iat[1])
    with pytest.raises(DataError) as info:
        validate_bars(frame, source=str(path))
    assert info.value.row == 2


def test_dbn_truncated_mid_record(tmp_path: Path) -> None:
    path = write_dbn(tmp_path / "cut.dbn", [ohlcv(i=0), ohlcv(i=1)[:30]])
    with pytest.raises(DataError, match="truncated") as info:
        read_bar_file(path)
    check_names_file(info, path)


def test_dbn_truncated_metadata(tmp_path: Path) -> None:
    full = write_dbn(tmp_path / "full.dbn", [ohlcv()]).read_bytes()
    path = tmp_path / "meta.dbn"
    path.write_bytes(full[:40])
    with pytest.raises(DataError, match="metadata") as info:
        read_bar_file(path)
    check_names_file(info, path)


def test_dbn_schema_not_ohlcv(tmp_path: Path) -> None:
    path = write_dbn(tmp_path / "trades.dbn", [], dbn.Schema.TRADES)
    with pytest.raises(DataError, match="trades") as info:
        read_bar_file(path)
    check_names_file(info, path)


def test_dbn_foreign_record(tmp_path: Path) -> None:
    path = write_dbn(tmp_path / "mix.dbn", [ohlcv(i=0), ohlcv(i=1, rtype=0x20)])
    with pytest.raises(DataError, match=r"record 2: rtype 0x20") as info:
        read_bar_file(path)
    check_names_file(info, path)


def test_dbn_not_a_dbn_file(tmp_path: Path) -> None:
    path = write(tmp_path, "fake.dbn", "ts,open\n")
    with pytest.raises(DataError, match="not a DBN file") as info:
        read_bar_file(path)
    check_names_file(info, path)


def test_dbn_without_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_dbn(tmp_path / "bars.dbn", [ohlcv()])
    monkeypatch.setitem(sys.modules, "databento_dbn", None)
    with pytest.raises(DataError, match=r'pip install "stratforge\[dbn\]"') as info:
        read_bar_file(path)
    check_names_file(info, path)


# --- errors name the file ----------------------------------------------------------------------

def test_read_formats_constant() -> None:
    assert READ_FORMATS == ("auto", "csv", "parquet", "dbn")


@pytest.mark.parametrize(("name", "content", "kwargs", "match"), [
    ("missing.csv", None, {}, "file not found"),
    ("bars.csv", "ts,o,h,l,c,v\n", {"fmt": "xlsx"}, "unknown format 'xlsx'"),
    ("bad.parquet", "this is not parquet", {}, "cannot read the file as Parquet"),
    ("bad.csv.gz", b"\x1f\x8b\x08\x00garbage", {}, "cannot read the file as CSV"),
    ("ragged.csv", "ts,o,h,l,c,v\n2024-01-02,1,1,1,1,1\n2024-01-03,1,1,1,1,1,9,9\n", {},
     "cannot read the file as CSV"),
    ("empty.csv", "", {}, "empty"),
    ("blob", b"\x00\x01\x02\xff\xfe", {}, "cannot tell the file's format"),
    ("nots.csv", "when,open,high,low,close,volume\n1,1,1,1,1,1\n", {}, "no timestamp column"),
    ("novol.csv", "Date,Open,High,Low,Close,Adj Close\n2024-01-02,1,1,1,1,1\n", {},
     r"missing column\(s\) volume.*found ts, open, high, low, close, Adj Close"),
    ("bad_ts.csv", f"ts,o,h,l,c,v\n{UTC_ISO[0]},1,1,1,1,1\nyesterday,1,1,1,1,1\n", {},
     "row 2: cannot read timestamp 'yesterday'"),
    ("bad_epoch.csv", "ts,o,h,l,c,v\n1704187800,1,1,1,1,1\n17041878xx,1,1,1,1,1\n", {},
     "row 2: cannot read timestamp '17041878xx'"),
    ("far.csv", "ts,o,h,l,c,v\n2999-01-01 00:00,1,1,1,1,1\n", {}, "row 1: .*outside 1677-2262"),
])
def test_errors_name_the_file(tmp_path: Path, name: str, content: str | bytes | None,
                              kwargs: dict[str, str], match: str) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(DataError, match=match) as info:
        read_bar_file(path, **kwargs)
    check_names_file(info, path)


def test_directory_is_not_a_bar_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not a regular file") as info:
        read_bar_file(tmp_path)
    check_names_file(info, tmp_path)


def test_header_only_file_gives_no_rows(tmp_path: Path) -> None:
    frame = read_bar_file(write(tmp_path, "h.csv", "ts,open,high,low,close,volume\n"))
    assert_canonical(frame)
    assert len(frame) == 0


def test_string_path_and_timedelta_sanity(tmp_path: Path) -> None:
    path = write(tmp_path, "bars.csv", csv_rows("ts,o,h,l,c,v", list(UTC_ISO)))
    frame = read_bar_file(str(path))
    steps = frame["ts"].diff().dropna().tolist()
    assert steps == [timedelta(minutes=1)] * 2
