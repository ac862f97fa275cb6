"""Feature vectors: the as-of join never reads an open higher-timeframe bar, nor the future."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import random_bars
from stratforge.data.bars import ts_ns
from stratforge.data.resample import bar_end_times, resample_bars
from stratforge.errors import ConfigError
from stratforge.features import FEATURE_NAMES, compute_states, feature_vectors
from stratforge.features.vectors import VECTOR_COLUMNS
from stratforge.sessions import CME_GLOBEX
from stratforge.timeframes import parse_timeframe

TF_1M, TF_5M, TF_1H = (parse_timeframe(t) for t in ("1m", "5m", "1h"))


def fake_states(starts, z, *, cascade=None, dmi=None):
    """A states frame with just the columns feature_vectors reads; z identifies each bar."""
    n = len(starts)
    z = np.asarray(z, dtype=float)
    return pd.DataFrame({
        "ts": pd.DatetimeIndex(starts).tz_localize("UTC").as_unit("ns"),
        "z": z,
        "velocity_sigma": np.full(n, 0.25),
        "momentum_strength": -z,
        "coherence": np.full(n, 0.3),
        "adx": np.full(n, 40.0),
        "hurst": np.full(n, 0.6),
        "dmi_diff": np.asarray(dmi if dmi is not None else z * 10, dtype=float),
        "cascade_detected": np.asarray(cascade if cascade is not None else np.zeros(n, bool)),
    })


def test_feature_names_fix_fourteen_dimensions():
    assert len(FEATURE_NAMES) == 14 and len(set(FEATURE_NAMES)) == 14
    assert all(name.replace("_", "").isalnum() and name.islower() for name in FEATURE_NAMES)
    assert FEATURE_NAMES[0] == "abs_z" and FEATURE_NAMES[-1] == "root_dmi_agreement"


def test_hand_built_case_uses_only_completed_higher_bars():
    # 2024-01-03 15:40..16:04 UTC = 09:40..10:04 Chicago, inside the CME session
    child_starts = pd.date_range("2024-01-03 15:40", "2024-01-03 16:04", freq="1min")
    child = fake_states(child_starts, np.linspace(-1, 1, len(child_starts)))
    parent = fake_states(pd.date_range("2024-01-03 15:45", periods=5, freq="5min"),
                         [1, 2, 3, 4, 5], cascade=[False, True, False, False, True],
                         dmi=[-5, 5, -5, 5, -5])
    root = fake_states(["2024-01-03 14:00", "2024-01-03 15:00", "2024-01-03 16:00"],
                       [7, 8, 9], cascade=[True, False, True], dmi=[30, -30, 30])
    out = feature_vectors({"1h": root, "5m": parent, TF_1M: child}, ["1h", "5m", "1m"],
                          session=CME_GLOBEX)
    vec = out[TF_1M].set_index(child_starts.strftime("%H:%M"))

    # no 5m bar is complete before 15:50; the 15:45 bar is used by the bar ending at 15:50
    assert vec.loc["15:40":"15:48", "abs_parent_z"].isna().all()
    assert vec.loc["15:49", "abs_parent_z"] == 1
    assert vec.loc["15:53", "abs_parent_z"] == 1   # ends 15:54: 15:50 bar still open
    assert vec.loc["15:54", "abs_parent_z"] == 2   # ends 15:55 with the 15:50 bar
    assert vec.loc["15:58", "abs_parent_z"] == 2   # ends 15:59: 15:55 bar still open
    assert vec.loc["15:59", "abs_parent_z"] == 3
    assert vec.loc["16:04", "abs_parent_z"] == 4   # the 16:00 bar, never the open 16:05 one
    assert vec.loc["15:54", "parent_cascade"] == 1.0
    assert vec.loc["15:59", "parent_cascade"] == 0.0
    assert vec.loc["15:58", "parent_dmi_along_move"] == 0.05
    assert vec.loc["15:59", "parent_dmi_along_move"] == -0.05

    # the 15:00 hour completes at 16:00, so until then the 14:00 hour is the root
    assert (vec.loc["15:40":"15:58", "root_cascade"] == 1.0).all()
    assert (vec.loc["15:59":"16:04", "root_cascade"] == 0.0).all()
    own_sign = np.sign(vec["z"])
    root_sign = np.where(vec.index < "15:59", 1.0, -1.0)
    np.testing.assert_array_equal(vec["root_dmi_agreement"], own_sign * root_sign)

    # the 5m level sees the root the same way
    mid = out[TF_5M]
    np.testing.assert_array_equal(mid["root_cascade"], [1.0, 1.0, 0.0, 0.0, 0.0])
    assert mid["abs_parent_z"].tolist() == [7, 7, 8, 8, 8]


def test_daily_root_is_used_only_after_its_trade_date_ends():
    # trade date 2024-01-03 runs from 17:00 Chicago on 01-02 (23:00 UTC) to 23:00 UTC on 01-03
    hours = pd.date_range("2024-01-02 23:00", "2024-01-03 21:00", freq="1h")
    hourly = fake_states(hours, np.ones(len(hours)))
    daily = fake_states(["2024-01-01 23:00", "2024-01-02 23:00"], [4, 6])
    out = feature_vectors({"1D": daily, "1h": hourly}, ["1D", "1h"], session=CME_GLOBEX)
    assert (out[TF_1H]["abs_parent_z"] == 4).all()   # 01-03's daily bar is still open


def test_root_level_uses_its_own_bar_as_parent_and_root():
    states = compute_states(random_bars(3, "2024-01-02", "2024-01-04"))
    out = feature_vectors({"1m": states}, ["1m"], session=CME_GLOBEX)[TF_1M]
    assert tuple(out.columns) == VECTOR_COLUMNS
    assert out.index.equals(states.index)
    np.testing.assert_array_equal(out["abs_parent_z"], np.abs(states["z"]))
    np.testing.assert_array_equal(out["parent_cascade"], states["cascade_detected"] * 1.0)
    np.testing.assert_array_equal(out["root_cascade"], states["cascade_detected"] * 1.0)
    np.testing.assert_array_equal(out["parent_dmi_along_move"],
                                  np.sign(states["z"]) * states["dmi_diff"] / 100)
    np.testing.assert_array_equal(out["root_dmi_agreement"], np.sign(states["dmi_diff"]) ** 2)
    assert (out["hierarchy_depth"] == 0).all()
    assert (out["log2_tf_seconds"] == np.log2(60)).all()
    np.testing.assert_allclose(out["abs_velocity_sigma"],
                               np.abs(states["velocity"]) / states["sigma"], rtol=1e-15)
    np.testing.assert_array_equal(out["adx_norm"], states["adx"] / 100)
    np.testing.assert_array_equal(out["z"], states["z"])
    ready = states["ready"].to_numpy()
    assert out.loc[ready, list(FEATURE_NAMES)].notna().all().all()


def _vectors_of(base: pd.DataFrame, hierarchy: list[str]) -> dict:
    states = {tf: compute_states(resample_bars(base, parse_timeframe(tf), CME_GLOBEX))
              for tf in hierarchy}
    return feature_vectors(states, hierarchy, session=CME_GLOBEX)


def test_truncating_the_base_future_never_changes_earlier_vectors():
    base = random_bars(21, "2024-01-02", "2024-01-09", step_seconds=60, keep=0.7, drop_days=1)
    hierarchy = ["1D", "1h", "5m", "1m"]
    full = _vectors_of(base, hierarchy)
    assert full[TF_1M]["abs_parent_z"].notna().sum() > 1000
    for cut in (150, 1234, 2500, len(base) - 7):
        part = _vectors_of(base.iloc[:cut], hierarchy)
        cutoff = bar_end_times(ts_ns(base.iloc[cut - 1:cut]), TF_1M, CME_GLOBEX)[0]
        for tf in map(parse_timeframe, hierarchy):
            mine = part[tf]
            complete = bar_end_times(ts_ns(mine), tf, CME_GLOBEX) <= cutoff
            kept = mine.loc[complete].reset_index(drop=True)
            whole = full[tf].iloc[:len(kept)].reset_index(drop=True)
            pd.testing.assert_frame_equal(kept, whole, check_exact=True)
        assert len(part[TF_1M]) == cut


def test_parent_vectors_equal_a_slow_row_by_row_join():
    base = random_bars(5, "2024-01-02", "2024-01-05", keep=0.8, drop_days=0)
    states = {tf: compute_states(resample_bars(base, tf, CME_GLOBEX))
              for tf in (TF_1H, TF_5M)}
    vec = feature_vectors(states, [TF_1H, TF_5M], session=CME_GLOBEX)[TF_5M]
    parent_end = bar_end_times(ts_ns(states[TF_1H]), TF_1H, CME_GLOBEX)
    child_end = bar_end_times(ts_ns(states[TF_5M]), TF_5M, CME_GLOBEX)
    for row, end in enumerate(child_end):
        done = [i for i, e in enumerate(parent_end) if e <= end]
        got = vec["abs_parent_z"].iat[row]
        if not done:
            assert np.isnan(got)
        else:
            want = abs(states[TF_1H]["z"].iat[done[-1]])
            assert (np.isnan(got) and np.isnan(want)) or got == want


def test_bad_hierarchies_are_refused():
    frame = fake_states(["2024-01-03 15:00"], [1])
    with pytest.raises(ConfigError, match="coarsest"):
        feature_vectors({"1m": frame, "5m": frame}, ["1m", "5m"], session=CME_GLOBEX)
    with pytest.raises(ConfigError, match="no states for timeframe 5m"):
        feature_vectors({"1m": frame}, ["5m", "1m"], session=CME_GLOBEX)
    with pytest.raises(ConfigError, match="empty"):
        feature_vectors({"1m": frame}, [], session=CME_GLOBEX)
    with pytest.raises(ConfigError, match="lack column"):
        feature_vectors({"1m": frame.drop(columns=["adx"])}, ["1m"], session=CME_GLOBEX)


def test_vectors_are_mirror_invariant():
    """A market and its mirror image (every price reflected around a level, so each up move
    becomes the same move down) give the same vectors and opposite z: a pattern and its
    mirror fall in one template, which fades either side."""
    bars = random_bars(5, "2024-01-02", "2024-01-03")
    level = float(bars["close"].mean()) * 2
    mirror = bars.copy()
    mirror["open"], mirror["close"] = level - bars["open"], level - bars["close"]
    mirror["high"], mirror["low"] = level - bars["low"], level - bars["high"]
    out = feature_vectors({"1m": compute_states(bars)}, ["1m"], session=CME_GLOBEX)[TF_1M]
    flip = feature_vectors({"1m": compute_states(mirror)}, ["1m"], session=CME_GLOBEX)[TF_1M]
    np.testing.assert_allclose(flip[list(FEATURE_NAMES)], out[list(FEATURE_NAMES)],
                               atol=1e-9, equal_nan=True)
    np.testing.assert_allclose(flip["z"], -out["z"], atol=1e-9, equal_nan=True)
