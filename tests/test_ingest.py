"""Ingest: every validation rule refuses a bad file and leaves the store unchanged; incremental
appends, overlaps and repairs behave as documented."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import random_bars
from stratforge.data import ingest_files, load_bars
from stratforge.data.store import AtlasStore
from stratforge.errors import DataError


def _write_csv(path, frame: pd.DataFrame) -> str:
    out = frame.copy()
    out["ts"] = out["ts"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    out.to_csv(path, index=False)
    return str(path)


def _snapshot(home) -> dict[str, bytes]:
    root = home / "atlas"
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != ".lock"}


def _break(frame: pd.DataFrame, rule: str, row: int) -> pd.DataFrame:
    bad = frame.copy()
    if rule == "high":
        bad.loc[row, "high"] = max(bad.loc[row, "open"], bad.loc[row, "close"]) - 0.25
    elif rule == "low":
        bad.loc[row, "low"] = min(bad.loc[row, "open"], bad.loc[row, "close"]) + 0.25
    elif rule == "volume":
        bad.loc[row, "volume"] = -1.0
    elif rule == "nan":
        bad.loc[row, "close"] = np.nan
    elif rule == "duplicate":
        bad.loc[row, "ts"] = bad.loc[row - 1, "ts"]
    elif rule == "unsorted":
        bad.loc[row, "ts"], bad.loc[row - 1, "ts"] = bad.loc[row - 1, "ts"], bad.loc[row, "ts"]
    elif rule == "missing":
        bad = bad.drop(columns=["volume"])
    return bad


@pytest.mark.parametrize(("rule", "message"), [
    ("high", r"row 41: high .* is below max\(open, close\).*rule: high >= max\(open, close\)"),
    ("low", r"row 41: low .* is above min\(open, close\).*rule: low <= min\(open, close\)"),
    ("volume", r"row 41: volume is -1.0 \(rule: volume >= 0\)"),
    ("nan", r"row 41: close is nan \(rule: prices are finite numbers\)"),
    ("duplicate", r"row 41: timestamp .* repeats row 40's \(rule: timestamps strictly"),
    ("unsorted", r"row 41: timestamp .* is earlier than row 40's .*rule: timestamps strictly"),
    ("missing", r"missing column\(s\) volume"),
])
def test_each_rule_refuses_the_file_and_leaves_the_store_unchanged(home, tmp_path, rule,
                                                                   message):
    good = random_bars(21, "2024-01-02", "2024-01-04")
    ingest_files([_write_csv(tmp_path / "good.csv", good)], "MNQ")
    before = _snapshot(home)
    later = random_bars(22, "2024-02-01", "2024-02-03")
    bad_path = _write_csv(tmp_path / "bad.csv", _break(later, rule, 40))
    with pytest.raises(DataError, match=message) as caught:
        ingest_files([bad_path], "MNQ")
    assert str(tmp_path / "bad.csv") in str(caught.value)
    assert _snapshot(home) == before


def test_repair_drops_duplicates_clips_and_reports(home, tmp_path):
    frame = random_bars(23, "2024-01-02", "2024-01-04")
    bad = _break(_break(_break(frame, "duplicate", 10), "high", 20), "low", 30)
    report = ingest_files([_write_csv(tmp_path / "fixable.csv", bad)], "MNQ", repair=True)
    note = report.repairs[str(tmp_path / "fixable.csv")]
    assert "dropped 1 duplicate" in note and "raised 1 highs" in note and "lowered 1 lows" in note
    stored = load_bars("MNQ", "1m")
    assert len(stored) == len(frame) - 1
    assert (stored["high"] >= stored[["open", "close"]].max(axis=1)).all()
    assert (stored["low"] <= stored[["open", "close"]].min(axis=1)).all()


def test_repair_does_not_hide_missing_prices(home, tmp_path):
    bad = _break(random_bars(24, "2024-01-02", "2024-01-03"), "nan", 5)
    with pytest.raises(DataError, match="finite"):
        ingest_files([_write_csv(tmp_path / "nan.csv", bad)], "MNQ", repair=True)


def test_incremental_append_overlap_refused_and_replace(home, tmp_path):
    jan = random_bars(25, "2024-01-02", "2024-02-01")
    feb = random_bars(26, "2024-02-01", "2024-03-01")
    ingest_files([_write_csv(tmp_path / "jan.csv", jan)], "MNQ")
    report = ingest_files([_write_csv(tmp_path / "feb.csv", feb)], "MNQ")
    assert report.months_written == ["2024-02"]
    pd.testing.assert_frame_equal(load_bars("MNQ", "1m"), pd.concat([jan, feb],
                                                                      ignore_index=True))
    before = _snapshot(home)

    patch = random_bars(27, "2024-01-20", "2024-02-10")
    path = _write_csv(tmp_path / "patch.csv", patch)
    with pytest.raises(DataError, match=r"overlap bars already stored.*--replace"):
        ingest_files([path], "MNQ")
    assert _snapshot(home) == before

    report = ingest_files([path], "MNQ", replace=True)
    first, last = patch["ts"].iloc[0], patch["ts"].iloc[-1]
    old = pd.concat([jan, feb], ignore_index=True)
    expected = pd.concat([old[(old["ts"] < first) | (old["ts"] > last)], patch])
    expected = expected.sort_values("ts").reset_index(drop=True)
    pd.testing.assert_frame_equal(load_bars("MNQ", "1m"), expected)
    assert report.rows_replaced == int(((old["ts"] >= first) & (old["ts"] <= last)).sum())


def test_files_overlapping_each_other_are_named(home, tmp_path):
    a = _write_csv(tmp_path / "a.csv", random_bars(28, "2024-01-02", "2024-01-05", keep=1.0))
    b = _write_csv(tmp_path / "b.csv", random_bars(29, "2024-01-04", "2024-01-08", keep=1.0))
    with pytest.raises(DataError, match=r"a\.csv and .*b\.csv both hold a bar"):
        ingest_files([a, b], "MNQ")
    assert not AtlasStore.open("MNQ", home).exists


def test_base_timeframe_is_inferred_and_enforced(home, tmp_path):
    five = random_bars(30, "2024-01-02", "2024-01-05", step_seconds=300, keep=0.8)
    assert ingest_files([_write_csv(tmp_path / "five.csv", five)], "MNQ").base_timeframe == "5m"
    one = random_bars(31, "2024-02-02", "2024-02-05", step_seconds=60, keep=0.8)
    with pytest.raises(DataError, match=r"are 1m bars .* holds 5m bars"):
        ingest_files([_write_csv(tmp_path / "one.csv", one)], "MNQ")
    off_grid = five.copy()
    off_grid.loc[3, "ts"] += pd.Timedelta(seconds=30)
    off_grid = off_grid.sort_values("ts").reset_index(drop=True)
    with pytest.raises(DataError, match=r"not on the 5m grid"):
        ingest_files([_write_csv(tmp_path / "off.csv", off_grid)], "MNQ", timeframe="5m")


def test_multiple_files_in_one_ingest(home, tmp_path):
    parts = [random_bars(32 + i, f"2024-0{i + 1}-02", f"2024-0{i + 1}-20") for i in range(3)]
    paths = [_write_csv(tmp_path / f"p{i}.csv", p) for i, p in enumerate(parts)]
    report = ingest_files(list(reversed(paths)), "MNQ")
    assert report.months_written == ["2024-01", "2024-02", "2024-03"]
    pd.testing.assert_frame_equal(load_bars("MNQ", "1m"), pd.concat(parts, ignore_index=True))


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_infinite_volume_is_refused_like_an_infinite_price(home, tmp_path, kind):
    good = random_bars(31, "2024-01-02", "2024-01-04")
    ingest_files([_write_csv(tmp_path / "good.csv", good)], "MNQ")
    before = _snapshot(home)
    later = random_bars(32, "2024-02-01", "2024-02-03")
    if kind == "csv":  # the text 1e400 overflows to inf when read
        path = tmp_path / "bad.csv"
        lines = _write_csv_text(later).splitlines()
        cells = lines[8].split(",")
        cells[-1] = "1e400"
        lines[8] = ",".join(cells)
        path.write_text("\n".join(lines) + "\n")
    else:
        path = tmp_path / "bad.parquet"
        later.assign(volume=later["volume"].where(later.index != 7, np.inf)).to_parquet(path)
    with pytest.raises(DataError, match=r"row 8: volume is inf \(rule: volume is a finite "
                                        r"number\)") as caught:
        ingest_files([path], "MNQ")
    assert str(path) in str(caught.value)
    assert _snapshot(home) == before


def _write_csv_text(frame: pd.DataFrame) -> str:
    out = frame.copy()
    out["ts"] = out["ts"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return out.to_csv(index=False)
