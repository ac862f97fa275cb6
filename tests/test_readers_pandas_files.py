"""Files as pandas writes them: an unnamed index column, float epoch timestamps, and the error
that quotes the file's real header.

Expected instants are written by hand (epoch numbers) or built with datetime, never with the
reader's own conversion code.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stratforge.data.readers import read_bar_file
from stratforge.errors import DataError

# 2024-01-02 09:30, 09:31, 09:32 UTC as epoch seconds, written out by hand.
EPOCH_S = (1704187800, 1704187860, 1704187920)
EXPECTED = [datetime(2024, 1, 2, 9, 30 + i, tzinfo=UTC) for i in range(3)]
# Two very different markets: MNQ-like (tick 0.25 near 18000) and EURUSD-like (1e-5 near 1.08).
PRICE_LEVELS = {"MNQ": (18_000.25, 0.25), "EURUSD": (1.08123, 0.00001)}


def _frame(market: str) -> pd.DataFrame:
    level, tick = PRICE_LEVELS[market]
    close = level + tick * np.array([0.0, 3.0, -2.0])
    return pd.DataFrame({"Open": close - tick, "High": close + 2 * tick, "Low": close - 2 * tick,
                         "Close": close, "Volume": [5.0, 7.0, 9.0]})


def _check(frame: pd.DataFrame, source: pd.DataFrame) -> None:
    assert list(frame["ts"]) == [pd.Timestamp(t) for t in EXPECTED]
    for ours, theirs in (("open", "Open"), ("high", "High"), ("low", "Low"), ("close", "Close"),
                         ("volume", "Volume")):
        np.testing.assert_array_equal(frame[ours].to_numpy(), source[theirs].to_numpy())


@pytest.mark.parametrize("market", sorted(PRICE_LEVELS))
def test_to_csv_with_an_unnamed_datetime_index_is_read(tmp_path: Path, market: str) -> None:
    source = _frame(market)
    indexed = source.set_index(pd.DatetimeIndex(EXPECTED))
    path = tmp_path / "bars.csv"
    indexed.to_csv(path)
    assert path.read_text().startswith(",Open,High,Low,Close,Volume\n")
    _check(read_bar_file(path), source)


@pytest.mark.parametrize("market", sorted(PRICE_LEVELS))
def test_a_second_round_trip_with_unnamed_0_is_read(tmp_path: Path, market: str) -> None:
    source = _frame(market)
    first = tmp_path / "first.csv"
    source.set_index(pd.DatetimeIndex(EXPECTED)).to_csv(first)
    second = tmp_path / "second.csv"
    pd.read_csv(first).to_csv(second)  # header ",Unnamed: 0,Open,...": a row counter, then times
    assert second.read_text().startswith(",Unnamed: 0,Open")
    _check(read_bar_file(second), source)


@pytest.mark.parametrize("market", sorted(PRICE_LEVELS))
def test_to_parquet_with_a_datetime_index_is_read(tmp_path: Path, market: str) -> None:
    source = _frame(market)
    path = tmp_path / "bars.parquet"
    source.set_index(pd.DatetimeIndex(EXPECTED)).to_parquet(path)
    _check(read_bar_file(path), source)


def test_a_named_time_column_wins_over_the_index(tmp_path: Path) -> None:
    source = _frame("MNQ")
    source.insert(0, "ts", [f"{s}" for s in EPOCH_S])
    path = tmp_path / "bars.csv"
    source.to_csv(path)  # index 0, 1, 2 beside a real ts column
    _check(read_bar_file(path), source)


@pytest.mark.parametrize("header", [",Open,High,Low,Close,Volume", "Unnamed: 0,Open,High,Low,"
                                    "Close,Volume"])
def test_a_row_counter_index_is_refused_quoting_the_real_header(tmp_path: Path,
                                                                header: str) -> None:
    path = tmp_path / "counter.csv"
    path.write_text(header + "\n0,1,1,1,1,1\n1,1,1,1,1,1\n")
    with pytest.raises(DataError, match="row numbers") as info:
        read_bar_file(path)
    assert repr(header) in str(info.value)
    assert "column1" not in str(info.value)


def test_no_time_column_error_quotes_the_header_as_written(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv"
    path.write_text("when, Open ,High,Low,Close,Volume\n1,1,1,1,1,1\n")
    with pytest.raises(DataError, match="no timestamp column") as info:
        read_bar_file(path)
    assert "'when, Open ,High,Low,Close,Volume'" in str(info.value)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(("unit", "scale"), [("s", 1), ("ms", 10**3), ("us", 10**6),
                                             ("ns", 10**9)])
def test_float_epochs_as_pandas_writes_them(tmp_path: Path, unit: str, scale: int) -> None:
    stamps = np.array(EPOCH_S, dtype=np.float64) * scale
    stamps[1] = np.nan  # a missing value is what turns an int64 column into float
    frame = _frame("EURUSD")
    frame.insert(0, "ts", stamps)
    path = tmp_path / f"float_{unit}.csv"
    frame.iloc[[0, 2]].to_csv(path, index=False)
    text = path.read_text()
    if unit == "ns":
        assert "e+18" in text
    got = read_bar_file(path)
    assert list(got["ts"]) == [pd.Timestamp(EXPECTED[0]), pd.Timestamp(EXPECTED[2])]


def test_float_epoch_ns_in_parquet(tmp_path: Path) -> None:
    frame = _frame("MNQ")
    frame.insert(0, "ts", np.array(EPOCH_S, dtype=np.float64) * 1e9)
    path = tmp_path / "float.parquet"
    frame.to_parquet(path)
    assert list(read_bar_file(path)["ts"]) == [pd.Timestamp(t) for t in EXPECTED]


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
# whole seconds as float nanoseconds are exact up to 2**53 / 5**9 s (year 2116)
@given(seconds=st.integers(min_value=100_000_000, max_value=4_000_000_000),
       unit=st.sampled_from(["s", "ms", "us", "ns"]), exponent=st.booleans())
def test_float_epoch_text_is_read_by_magnitude(tmp_path: Path, seconds: int, unit: str,
                                               exponent: bool) -> None:
    scale = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}[unit]
    value = float(seconds * scale)
    text = f"{value:.15e}" if exponent else repr(value)
    path = tmp_path / "one.csv"
    path.write_text(f"ts,open,high,low,close,volume\n{text},1,1,1,1,1\n")
    expected = pd.Timestamp(datetime.fromtimestamp(seconds, tz=UTC))
    assert read_bar_file(path)["ts"].iloc[0] == expected
