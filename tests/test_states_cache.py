"""The states cache: served from disk when current, equal to compute_states, invalidated by a
changed ATLAS month or changed parameters, never left naming a stale file."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd
import pytest

from stratforge.data import build_atlas, load_bars
from stratforge.data.demo import synthesize_into_store
from stratforge.data.ingest import write_base_bars
from stratforge.data.resample import BarArrays
from stratforge.data.store import AtlasStore
from stratforge.errors import ConfigError, DataError
from stratforge.features import STATE_COLUMNS, compute_states
from stratforge.features import cache as states_cache
from stratforge.features.cache import (
    cache_folder,
    cache_stats,
    ensure_states,
    load_states,
    read_states,
    reset_cache_stats,
)
from stratforge.timeframes import parse_timeframe


@pytest.fixture
def market(home):
    """A 1m synthetic market spanning January and February 2024 in the test's home."""
    synthesize_into_store("MNQ", days=20, seed=2, resolution="1m", start=date(2024, 1, 22))
    build_atlas("MNQ")
    return home


def _file_state(folder):
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in folder.glob("*.parquet")}


@pytest.mark.parametrize("tf", ["1m", "15m", "1D", "1W"])
def test_states_equal_compute_states_and_second_load_is_a_hit(market, tf):
    reset_cache_stats()
    expected = compute_states(load_bars("MNQ", tf))
    first = load_states("MNQ", tf)
    assert first.attrs["cache"] == "miss"
    pd.testing.assert_frame_equal(first, expected)
    second = load_states("MNQ", tf)
    assert second.attrs["cache"] == "hit"
    pd.testing.assert_frame_equal(second, expected)
    assert cache_stats() == {"hit": 1, "miss": 1}
    assert list(first.columns) == list(STATE_COLUMNS)


def test_cache_layout_is_one_file_per_month_plus_index(market):
    load_states("MNQ", "1m")
    folder = cache_folder("MNQ", "1m", market)
    assert folder == market / "cache" / "states" / "MNQ" / "1m"
    assert sorted(p.name for p in folder.glob("*.parquet")) == ["2024-01.parquet",
                                                                "2024-02.parquet"]
    index = json.loads((folder / "index.json").read_text())
    assert index["features_version"] == states_cache.FEATURES_VERSION
    rows = [entry["rows"] for entry in index["months"].values()]
    assert sum(rows) == len(load_bars("MNQ", "1m"))
    assert [e["first_row"] for e in index["months"].values()] == [0, rows[0]]


def test_read_states_serves_rows_and_columns_of_the_full_frame(market):
    full = compute_states(load_bars("MNQ", "5m"))
    rows = np.array([0, 7, 100, len(full) // 2, len(full) - 1])
    part = read_states("MNQ", "5m", rows=rows, columns=["z", "ts", "zone", "cascade_detected"])
    pd.testing.assert_frame_equal(part, full.loc[rows, ["z", "ts", "zone", "cascade_detected"]],
                                  check_index_type=False)
    assert list(part.index) == list(rows)
    assert len(read_states("MNQ", "5m", rows=np.empty(0, dtype=np.int64))) == 0
    with pytest.raises(ConfigError, match="unknown state column"):
        read_states("MNQ", "5m", columns=["nope"])
    with pytest.raises(ConfigError, match="sorted, distinct"):
        read_states("MNQ", "5m", rows=np.array([5, 3]))


def test_changed_atlas_month_invalidates_that_month_and_later_only(market):
    load_states("MNQ", "1m")
    folder = cache_folder("MNQ", "1m", market)
    before = _file_state(folder)

    bars = load_bars("MNQ", "1m")
    february = bars[bars["ts"] >= pd.Timestamp("2024-02-01", tz="UTC")].copy()
    february.loc[february.index[50], "volume"] *= 7.0
    write_base_bars(AtlasStore.open("MNQ", market), BarArrays.from_frame(february),
                    parse_timeframe("1m"), replace=True)
    build_atlas("MNQ")

    states = load_states("MNQ", "1m")
    assert states.attrs["cache"] == "miss"
    pd.testing.assert_frame_equal(states, compute_states(load_bars("MNQ", "1m")))
    after = _file_state(folder)
    assert after["2024-01.parquet"] == before["2024-01.parquet"]      # untouched
    assert after["2024-02.parquet"][1] != before["2024-02.parquet"][1]
    assert load_states("MNQ", "1m").attrs["cache"] == "hit"


def test_changed_parameters_invalidate(market):
    bars = load_bars("MNQ", "15m")
    assert load_states("MNQ", "15m").attrs["cache"] == "miss"
    custom = load_states("MNQ", "15m", parameters={"structure_z": 1.5})
    assert custom.attrs["cache"] == "miss"
    pd.testing.assert_frame_equal(custom, compute_states(bars, structure_z=1.5))
    assert load_states("MNQ", "15m", parameters={"structure_z": 1.5}).attrs["cache"] == "hit"
    default = load_states("MNQ", "15m")
    assert default.attrs["cache"] == "miss"
    pd.testing.assert_frame_equal(default, compute_states(bars))
    with pytest.raises(ConfigError, match="unknown compute_states parameter"):
        load_states("MNQ", "15m", parameters={"bogus": 1})


def test_crash_while_rewriting_never_leaves_a_stale_month(market, monkeypatch):
    assert ensure_states("MNQ", "1m") == "miss"
    bars = load_bars("MNQ", "1m")
    changed = bars.copy()
    changed.loc[changed.index[30], "volume"] *= 9.0           # January: every month changes
    write_base_bars(AtlasStore.open("MNQ", market), BarArrays.from_frame(changed),
                    parse_timeframe("1m"), replace=True)
    build_atlas("MNQ")

    real_write = states_cache.atomic_write_bytes
    calls = {"n": 0}

    def crash_on_second_month(path, data):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("simulated crash")
        real_write(path, data)

    monkeypatch.setattr(states_cache, "atomic_write_bytes", crash_on_second_month)
    with pytest.raises(KeyboardInterrupt):
        load_states("MNQ", "1m")
    monkeypatch.setattr(states_cache, "atomic_write_bytes", real_write)
    states = load_states("MNQ", "1m")
    assert states.attrs["cache"] == "miss"
    pd.testing.assert_frame_equal(states, compute_states(load_bars("MNQ", "1m")))


def test_missing_data_is_a_data_error(home):
    with pytest.raises(DataError, match="no store for ES"):
        load_states("ES", "1m")
    synthesize_into_store("MNQ", days=3, seed=1, resolution="1m")
    with pytest.raises(DataError, match="no 1h bars"):
        load_states("MNQ", "1h")
