"""Fractal discovery: the drill-down against an independent window count, the pattern
definitions, the parent chains, the oracle against plain Python, checkpoints and resume."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from bisect import bisect_left
from datetime import date

import numpy as np
import pandas as pd
import pytest

from stratforge.data import build_atlas, load_bars
from stratforge.data.demo import synthesize_into_store
from stratforge.discovery.fractal import (
    DEFAULT_HIERARCHY,
    discover_patterns,
    drill_windows,
    load_patterns,
    merge_windows,
)
from stratforge.discovery.patterns import (
    ORACLE_LOOKAHEAD,
    PATTERN_COLUMNS,
    oracle_excursions,
    oracle_labels,
    oracle_wins,
)
from stratforge.errors import ConfigError, DataError
from stratforge.features import FEATURE_NAMES, compute_states, feature_vectors
from stratforge.instruments import get_instrument
from stratforge.timeframes import parse_timeframe

SESSION = get_instrument("MNQ").session


def _market(folder, *, seed, days, resolution, start=None):
    synthesize_into_store("MNQ", days=days, seed=seed, resolution=resolution, start=start,
                          home=folder)
    build_atlas("MNQ", home=folder)
    return folder


_MARKETS = {"seed2": (2, 20, "1m"), "seed4-skips-15m": (4, 20, "1m"), "1s": (1, 3, "1s")}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Markets built on first use and shared by the module: name -> (home, discovery result)."""
    cache = {}

    def get(name):
        if name not in cache:
            seed, days, resolution = _MARKETS[name]
            folder = tmp_path_factory.mktemp(f"disc-{name}")
            start = date(2024, 1, 22) if resolution == "1m" else None
            _market(folder, seed=seed, days=days, resolution=resolution, start=start)
            cache[name] = folder, discover_patterns("MNQ", home=folder)
        return cache[name]
    return get


@pytest.fixture(params=["seed2", "seed4-skips-15m"])
def minute_market(request, built):
    """20 days of 1m bars; seed 4 has no 15m pattern, so 5m drills from the 1h windows."""
    return built(request.param)


@pytest.fixture(params=list(_MARKETS))
def any_market(request, built):
    """The minute markets and 3 days of 1s bars (the whole default hierarchy, down to 1s)."""
    return built(request.param)


def _expected_scans(folder, result):
    """Per level, the set of bar positions an independent reading of the rules scans: every
    bar while no level above had patterns, else for each parent pattern (of the last level
    with patterns) the first 30 child bars from its start plus the child bars inside the
    parent bar (up to the next parent bar). Also, per level, those windows as position sets
    keyed by parent pattern id."""
    scans, windows, last = {}, {}, None
    for level in result.levels:
        tf = level.timeframe
        child = load_bars("MNQ", tf, home=folder)["ts"].tolist()
        if last is None:
            scans[tf] = set(range(len(child)))
        else:
            parent_bars = load_bars("MNQ", last, home=folder)["ts"].tolist()
            parents = result.patterns[result.patterns["timeframe"] == last]
            per_parent = {}
            for pattern in parents.itertuples():
                i0 = bisect_left(child, pattern.ts)
                j = parent_bars.index(pattern.ts)
                stop = (bisect_left(child, parent_bars[j + 1]) if j + 1 < len(parent_bars)
                        else len(child))
                per_parent[pattern.pattern_id] = set(range(i0, min(i0 + 30, len(child)))) \
                    | set(range(i0, stop))
            windows[tf] = per_parent
            scans[tf] = set().union(*per_parent.values())
        if level.patterns:
            last = tf
    return scans, windows


def _full_states(folder, hierarchy):
    return {tf: compute_states(load_bars("MNQ", tf, home=folder)) for tf in hierarchy}


def test_drill_down_reaches_the_base_and_scans_the_independent_windows(minute_market):
    folder, result = minute_market
    assert result.hierarchy == ["1W", "1D", "4h", "1h", "15m", "5m", "1m"]
    assert [lv.depth for lv in result.levels] == list(range(7))
    assert result.levels[-1].timeframe == "1m" and result.levels[-1].bars_scanned > 0
    assert result.levels[-1].windows > 0
    scans, windows = _expected_scans(folder, result)
    for level in result.levels:
        assert level.bars_scanned == len(scans[level.timeframe]), level
        assert level.skipped == (level.patterns == 0)
        assert level.full_scan == (level.timeframe not in windows)
    # a parent window at 1h gives at least 30 bars at 15m (when 15m drills from 1h)
    assert "15m" in windows
    if result.levels[3].patterns:
        assert all(len(bars) >= 30 for bars in windows["15m"].values())


def test_second_market_drills_down_to_one_second(built):
    folder, result = built("1s")
    assert result.hierarchy == [str(tf) for tf in DEFAULT_HIERARCHY]
    assert result.levels[-1].timeframe == "1s" and result.levels[-1].windows > 0
    assert result.levels[-1].patterns > 0
    scans, _ = _expected_scans(folder, result)
    assert all(lv.bars_scanned == len(scans[lv.timeframe]) for lv in result.levels)


def test_patterns_obey_the_definitions(any_market):
    folder, result = any_market
    patterns = result.patterns
    assert list(patterns.columns) == list(PATTERN_COLUMNS)
    assert patterns["pattern_id"].is_unique
    assert len(patterns) == sum(lv.patterns for lv in result.levels)
    states = _full_states(folder, result.hierarchy)
    vectors = feature_vectors(states, result.hierarchy, session=SESSION)
    scans, _ = _expected_scans(folder, result)
    for depth, tf in enumerate(result.hierarchy):
        found = patterns[patterns["timeframe"] == tf]
        assert (found["depth"] == depth).all()
        frame = states[tf]
        flagged = frame["cascade_detected"] | frame["structure_confirmed"]
        # exactly the flagged bars inside the scanned windows, in time order
        expected_bars = sorted(b for b in scans[tf] if flagged.iloc[b])
        assert found["bar"].tolist() == expected_bars
        rows = frame.loc[found["bar"]]
        assert (found["ts"].to_numpy() == rows["ts"].to_numpy()).all()
        assert (found["is_cascade"].to_numpy() == rows["cascade_detected"].to_numpy()).all()
        assert (found["is_structure"].to_numpy() == rows["structure_confirmed"].to_numpy()).all()
        for row in found.itertuples():
            names = [n for n, on in (("ROCHE_SNAP", row.is_cascade),
                                     ("STRUCTURAL_DRIVE", row.is_structure)) if on]
            assert row.type == "+".join(names)
            assert row.pattern_id == f"{tf}:{row.ts.value}"
        for name in ("z", "velocity", "momentum", "momentum_strength", "coherence", "sigma",
                     "adx", "dmi_diff", "hurst"):
            np.testing.assert_array_equal(found[name].to_numpy(), rows[name].to_numpy())
        assert found["zone"].tolist() == rows["zone"].astype(str).tolist()
        closes = load_bars("MNQ", tf, home=folder)["close"].to_numpy()
        np.testing.assert_array_equal(found["close"].to_numpy(), closes[found["bar"]])
        np.testing.assert_array_equal(found[list(FEATURE_NAMES)].to_numpy(),
                                      vectors[parse_timeframe(tf)].loc[found["bar"],
                                                                       list(FEATURE_NAMES)]
                                      .to_numpy())


def test_parent_chains_point_at_a_parent_whose_window_holds_the_child(any_market):
    folder, result = any_market
    patterns = result.patterns.set_index("pattern_id", drop=False)
    _, windows = _expected_scans(folder, result)
    for row in patterns.itertuples():
        chain = json.loads(row.parent_chain)
        if row.timeframe not in windows:
            assert chain == []
            continue
        parent = patterns.loc[f"{chain[0]['timeframe']}:"
                              f"{pd.Timestamp(chain[0]['ts']).value}"]
        assert chain[0] == {"timeframe": parent["timeframe"], "type": parent["type"],
                            "z": parent["z"], "momentum": parent["momentum"],
                            "coherence": parent["coherence"], "ts": parent["ts"].isoformat()}
        assert chain[1:] == json.loads(parent["parent_chain"])
        # the child lies in the merged window of its parent: follow overlapping windows
        per_parent = windows[row.timeframe]
        group, grew = set(per_parent[parent["pattern_id"]]), True
        while grew:
            grew = False
            for bars in per_parent.values():
                if bars & group and not bars <= group:
                    group |= bars
                    grew = True
        assert row.bar in group


def test_merge_windows_hand_case():
    starts = np.array([0, 5, 20, 8, 30, 31, 50, 54])
    ends = np.array([10, 25, 22, 12, 31, 40, 60, 64])
    m_start, m_end, owner = merge_windows(starts, ends)
    # [0,10) [5,25) [8,12) [20,22) merge, the longest [5,25) keeps the chain; [30,31) only
    # touches [31,40): no merge; [50,60) and [54,64) tie on length: the earlier start wins
    assert m_start.tolist() == [0, 30, 31, 50]
    assert m_end.tolist() == [25, 31, 40, 64]
    assert owner.tolist() == [1, 4, 5, 6]
    assert [len(a) for a in merge_windows(np.array([]), np.array([]))] == [0, 0, 0]


def test_drill_windows_hold_thirty_child_bars_across_the_daily_break():
    # 1h parent at 14:00 CT on Tuesday 2024-03-05; 15m child bars over two days: the window
    # keeps 30 bars although the 16:00-17:00 CT break lies inside it
    child = load_like_grid("2024-03-05 13:00", "2024-03-06 16:00", "15min")
    parent = np.array([pd.Timestamp("2024-03-05 14:00", tz="America/Chicago").value])
    starts, ends = drill_windows(parent, parse_timeframe("1h"), child, parse_timeframe("15m"),
                                 SESSION)
    inside = (child >= starts[0]) & (child < ends[0])
    assert inside.sum() == 30
    assert child[inside][0] == parent[0]
    # a 1D parent opens at least its own trade date
    day = np.array([pd.Timestamp("2024-03-04 17:00", tz="America/Chicago").value])
    _, day_end = drill_windows(day, parse_timeframe("1D"), child, parse_timeframe("4h"),
                               SESSION)
    assert day_end[0] >= pd.Timestamp("2024-03-05 17:00", tz="America/Chicago").value


def load_like_grid(first, last, step):
    """Bar starts on a CME grid (Chicago time), skipping the 16:00-17:00 break."""
    grid = pd.date_range(first, last, freq=step, tz="America/Chicago")
    grid = grid[grid.hour != 16]
    return grid.tz_convert("UTC").as_unit("ns").asi8


def _slow_oracle(bars, bar, side, lookahead):
    close = bars["close"].iloc[bar]
    after = bars.iloc[bar + 1:bar + 1 + lookahead]
    if side == 0 or len(after) == 0:
        return 0.0, 0.0
    up = max(0.0, max(after["high"]) - close)
    down = max(0.0, close - min(after["low"]))
    return (up, down) if side > 0 else (down, up)


def test_oracle_matches_plain_python(any_market):
    folder, result = any_market
    tick = get_instrument("MNQ").tick_size
    for tf, found in result.patterns.groupby("timeframe"):
        bars = load_bars("MNQ", tf, home=folder)
        for row in found.itertuples():
            side = -1 if row.z > 0 else (1 if row.z < 0 else 0)
            assert row.oracle_side == side
            mfe, mae = _slow_oracle(bars, row.bar, side, ORACLE_LOOKAHEAD[tf])
            assert (row.oracle_mfe, row.oracle_mae) == (mfe, mae), row.pattern_id
            assert row.oracle_win == (mfe > mae)
            ratio = np.inf if mae == 0 and mfe > 0 else (mfe / mae if mae else 0.0)
            label = "NOISE" if mfe < 5 * tick else (
                "MEGA" if ratio >= 3 else ("SCALP" if ratio >= 1.2 else "NOISE"))
            assert row.oracle_label == label


def test_oracle_hand_cases():
    high = np.array([10.0, 11.0, 12.0, 10.5, 9.0])
    low = np.array([9.0, 9.5, 8.0, 9.75, 8.5])
    close = np.array([9.5, 10.0, 11.0, 10.0, 8.75])
    mfe, mae = oracle_excursions(high, low, close, np.array([0, 0, 0, 3, 4, 2]),
                                 np.array([1, -1, 0, 1, -1, 1]), 2)
    assert mfe.tolist() == [2.5, 1.5, 0.0, 0.0, 0.0, 0.0]
    assert mae.tolist() == [1.5, 2.5, 0.0, 1.5, 0.0, 2.5]
    labels = oracle_labels(np.array([3.0, 1.25, 1.0, 3.0, 2.9, 1.5, 0.0, 6.0]),
                           np.array([1.0, 0.0, 0.0, 2.5, 1.0, 1.5, 0.0, 5.25]), 0.25)
    assert labels.tolist() == ["MEGA", "MEGA", "NOISE", "SCALP", "SCALP", "NOISE", "NOISE",
                               "NOISE"]


def test_oracle_ties_on_the_tick_grid_stay_ties_at_any_price_level():
    # 5 ticks up and 5 ticks down from 1.08123: as floats the MFE is a hair above the MAE at
    # 1x and not at 1000x; in ticks both are a tie (no win), and 5 ticks is a MEGA/SCALP move
    for scale in (1.0, 1000.0, 1e-3):
        close, high, low, tick = (v * scale for v in (1.08123, 1.08128, 1.08118, 0.00001))
        mfe, mae = np.array([high - close]), np.array([close - low])
        assert oracle_wins(mfe, mae, tick).tolist() == [False]
        assert oracle_wins(mfe * 1.2, mae, tick).tolist() == [True]
        assert oracle_labels(mfe * 1.2, mae, tick).tolist() == ["SCALP"]
        assert oracle_labels(np.array([high - close]) * 3, mae, tick).tolist() == ["MEGA"]
    assert (1.08128 - 1.08123) > (1.08123 - 1.08118)  # the raw float comparison is not a tie


KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    from stratforge.discovery.fractal import discover_patterns

    def progress(phase, done, total, message=""):
        if phase == "discover" and done == int(sys.argv[2]):
            os.kill(os.getpid(), signal.SIGKILL)

    discover_patterns("MNQ", home=sys.argv[1], progress=progress)
""")


@pytest.mark.parametrize(("name", "kill_at"), [("seed2", 4), ("seed4-skips-15m", 1)])
def test_killed_discovery_resumes_to_the_uninterrupted_result(built, tmp_path, name, kill_at):
    source, uninterrupted = built(name)
    killed = tmp_path / "killed"
    shutil.copytree(source / "atlas", killed / "atlas")
    proc = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(killed), str(kill_at)],
                          env=dict(os.environ), capture_output=True, check=False)
    assert proc.returncode == -9, proc.stderr.decode()
    state = json.loads((killed / "discovery" / "MNQ" / "checkpoint" / "state.json").read_text())
    assert len(state["levels"]) == kill_at
    assert not (killed / "discovery" / "MNQ" / "patterns.parquet").exists()

    resumed = discover_patterns("MNQ", home=killed)
    assert [lv.resumed for lv in resumed.levels] == [True] * kill_at + [False] * (7 - kill_at)
    pd.testing.assert_frame_equal(resumed.patterns, uninterrupted.patterns)
    pd.testing.assert_frame_equal(load_patterns("MNQ", home=killed), uninterrupted.patterns)
    strip = ("seconds", "resumed", "states_cache")
    assert [{k: v for k, v in vars(lv).items() if k not in strip} for lv in resumed.levels] == \
        [{k: v for k, v in vars(lv).items() if k not in strip} for lv in uninterrupted.levels]

    again = discover_patterns("MNQ", home=killed)          # finished: everything from disk
    assert again.resumed_levels == 7
    pd.testing.assert_frame_equal(again.patterns, uninterrupted.patterns)
    fresh = discover_patterns("MNQ", home=killed, fresh=True)
    assert fresh.resumed_levels == 0
    pd.testing.assert_frame_equal(fresh.patterns, uninterrupted.patterns)


def test_changed_atlas_discards_the_checkpoint(built, tmp_path):
    source, _ = built("seed2")
    home = tmp_path / "changed"
    shutil.copytree(source / "atlas", home / "atlas")
    discover_patterns("MNQ", home=home, timeframes="1h,15m,5m")
    bars = load_bars("MNQ", "1m", home=home)
    bars = bars[bars["ts"] < bars["ts"].iloc[-1000]]
    _market_from(home, bars)
    result = discover_patterns("MNQ", home=home, timeframes="1h,15m,5m")
    assert result.resumed_levels == 0


def _market_from(home, bars):
    from stratforge.data.ingest import write_base_bars
    from stratforge.data.resample import BarArrays
    from stratforge.data.store import AtlasStore

    write_base_bars(AtlasStore.open("MNQ", home), BarArrays.from_frame(bars),
                    parse_timeframe("1m"), replace_all=True)
    build_atlas("MNQ", home=home)


def test_timeframes_narrow_the_hierarchy(built, tmp_path):
    source, _ = built("seed2")
    home = tmp_path / "narrow"
    shutil.copytree(source / "atlas", home / "atlas")
    result = discover_patterns("MNQ", home=home, timeframes=["5m", "1h", "1m"])
    assert result.hierarchy == ["1h", "5m", "1m"]
    assert result.levels[0].full_scan and result.levels[0].bars_scanned == len(
        load_bars("MNQ", "1h", home=home))
    assert set(result.patterns["depth"]) <= {0, 1, 2}
    assert (result.patterns.loc[result.patterns["timeframe"] == "5m", "hierarchy_depth"]
            == 1.0).all()
    with pytest.raises(DataError, match="no 1s bars"):
        discover_patterns("MNQ", home=home, timeframes="1h,1s")
    with pytest.raises(ConfigError, match="not in the discovery hierarchy"):
        discover_patterns("MNQ", home=home, timeframes="1h,30m")


def test_discovery_package_import_is_lightweight():
    code = ("import sys, stratforge.discovery as d; "
            "assert 'sklearn' not in sys.modules; "
            "assert 'stratforge.discovery.fractal' not in sys.modules; "
            "d.discover_patterns; assert 'sklearn' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
