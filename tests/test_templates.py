"""Templates: the k rule, training-span input and scalers, tightening, direction and oracle
statistics on hand cases, determinism, and an exact save/load round trip of the library."""

from __future__ import annotations

import dataclasses
import json
import math
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from stratforge.discovery.library import FeatureScaler, Template, TemplateLibrary
from stratforge.discovery.templates import cluster_count, cluster_patterns
from stratforge.errors import ConfigError, DataError
from stratforge.features.vectors import DISCRETE_RANGES, FEATURE_NAMES

TF_SECONDS = {"1h": 3600, "15m": 900, "5m": 300}
TF_DEPTH = {"1h": 0, "15m": 1, "5m": 2}
START = pd.Timestamp("2024-01-01", tz="UTC")


def pattern_frame(n: int, seed: int = 0, timeframes=("1h", "15m", "5m")) -> pd.DataFrame:
    """A patterns frame with the documented columns cluster_patterns reads (plus ts and the
    oracle columns), random but shaped like real vectors: |z| beyond 2, binary flags, ±1
    agreement, constant timeframe dimensions."""
    rng = np.random.default_rng(seed)
    tfs = rng.choice(list(timeframes), n)
    z = rng.choice([-1.0, 1.0], n) * (2 + rng.exponential(0.8, n))
    ts = START + pd.to_timedelta(np.sort(rng.integers(0, 365 * 24 * 60, n)), unit="min")
    frame = pd.DataFrame({
        "pattern_id": [f"{tf}:{t.value}:{i}"
                       for i, (tf, t) in enumerate(zip(tfs, ts, strict=True))],
        "symbol": "MNQ", "timeframe": tfs, "ts": ts, "z": z})
    for name in FEATURE_NAMES:
        frame[name] = rng.normal(size=n)
    frame["abs_z"] = np.abs(z)
    frame["coherence"] = rng.uniform(0, 1, n)
    frame["hurst"] = rng.uniform(0.3, 0.7, n)
    frame["log2_tf_seconds"] = np.log2([TF_SECONDS[t] for t in tfs])
    frame["hierarchy_depth"] = [float(TF_DEPTH[t]) for t in tfs]
    frame["depth"] = frame["hierarchy_depth"].astype(np.int64)
    for flag in ("parent_cascade", "root_cascade"):
        frame[flag] = (rng.random(n) < 0.2).astype(float)
    frame["root_dmi_agreement"] = rng.choice([-1.0, 0.0, 1.0], n)
    frame["oracle_side"] = (-np.sign(z)).astype(np.int8)
    frame["oracle_mfe"] = rng.exponential(5, n)
    frame["oracle_mae"] = rng.exponential(5, n)
    frame["oracle_win"] = frame["oracle_mfe"] > frame["oracle_mae"]
    return frame


def hand_frame(z, timeframe="15m", **columns) -> pd.DataFrame:
    """Patterns with every feature 0 except |z| (from z) and what ``columns`` sets."""
    z = np.asarray(z, dtype=float)
    n = len(z)
    frame = pd.DataFrame({"pattern_id": [f"p{i:03d}" for i in range(n)],
                          "timeframe": timeframe,
                          "ts": START + pd.to_timedelta(np.arange(n), unit="h"), "z": z})
    for name in FEATURE_NAMES:
        frame[name] = 0.0
    frame["abs_z"] = np.abs(z)
    for name, values in columns.items():
        frame[name] = values
    return frame


def assert_tight(library, patterns):
    """After tightening no template with more than 20 members has a scaled |z| spread > 0.5."""
    scaled_abs_z = pd.Series(0.0, index=patterns["pattern_id"])
    for tf, rows in patterns.groupby("timeframe"):
        scaled_abs_z[rows["pattern_id"]] = library.scale(rows, tf)[:, 0]
    for template in library:
        if template.members > 20:
            assert scaled_abs_z[template.member_ids].std(ddof=0) <= 0.5


def member_sets(library):
    return [set(t.member_ids) for t in library]


# ------------------------------------------------------------------ the k rule


@pytest.mark.parametrize(("n", "k"), [(0, 0), (1, 1), (3, 1), (19, 1), (39, 1), (40, 2),
                                      (71, 3), (200, 10), (499, 10), (500, 10), (1000, 10),
                                      (2000, 20), (20_000, 200)])
def test_cluster_count_follows_the_rule(n, k):
    assert cluster_count(n) == k
    if n:
        assert k == max(1, min(max(10, n // 100), n // 20))


@pytest.mark.parametrize(("n", "k", "algorithm"), [(3, 1, "none"), (71, 3, "KMeans"),
                                                   (499, 10, "KMeans"),
                                                   (500, 10, "MiniBatchKMeans")])
def test_clustering_uses_the_k_rule_and_partitions_the_patterns(n, k, algorithm):
    patterns = pattern_frame(n, seed=n)
    library = cluster_patterns(patterns, random_state=1)
    meta = library.metadata
    assert (meta["k"], meta["k_used"], meta["algorithm"]) == (k, k, algorithm)
    assert meta["initial_clusters"] == k
    assert len(library) == meta["n_templates"] == k + meta["splits"]
    ids = [m for t in library for m in t.member_ids]
    assert sorted(ids) == sorted(patterns["pattern_id"])  # each pattern in exactly one
    assert [t.template_id for t in library] == [f"T{i:04d}" for i in range(1, len(library) + 1)]
    sizes = [t.members for t in library]
    assert sizes == sorted(sizes, reverse=True)
    assert_tight(library, patterns)


def test_twenty_thousand_patterns_cluster_in_seconds(capsys):
    patterns = pattern_frame(20_000, seed=7)
    started = time.perf_counter()
    library = cluster_patterns(patterns, random_state=0)
    elapsed = time.perf_counter() - started
    meta = library.metadata
    with capsys.disabled():
        print(f"\n[templates] 20,000 patterns: {elapsed:.2f} s, k={meta['k']}, "
              f"{meta['splits']} splits, {len(library)} templates")
    assert (meta["k"], meta["algorithm"]) == (200, "MiniBatchKMeans")
    assert sum(t.members for t in library) == 20_000
    assert_tight(library, patterns)


def test_fewer_distinct_vectors_than_k_caps_k():
    patterns = pattern_frame(600, seed=3)
    patterns.loc[:, list(FEATURE_NAMES)] = patterns.loc[:5, list(FEATURE_NAMES)].to_numpy()[
        np.arange(600) % 4]
    patterns["timeframe"] = "15m"
    library = cluster_patterns(patterns)
    assert library.metadata["k"] == 10
    assert library.metadata["k_used"] == 4
    assert len(library) == 4


# ------------------------------------------------------------------ scalers


def test_scalers_are_fitted_on_the_training_patterns_and_later_ones_are_refused():
    patterns = pattern_frame(400, seed=11)
    train_end = patterns["ts"].iloc[250]
    train = patterns[patterns["ts"] < train_end]
    library = cluster_patterns(train, train_end=train_end)
    for tf, scaler in library.scalers.items():
        rows = train[train["timeframe"] == tf]
        raw = rows.loc[:, list(FEATURE_NAMES)].to_numpy()
        std = raw.std(axis=0)
        expected = np.where(std < 1e-12, 1.0, std)
        for name, width in DISCRETE_RANGES.items():  # flags and signs: by their range
            expected[FEATURE_NAMES.index(name)] = width
        np.testing.assert_allclose(scaler.mean, raw.mean(axis=0), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(scaler.scale, expected, rtol=1e-12)
        assert scaler.n_fit == len(rows)
        assert scaler.fitted_on == "train"
    assert library.metadata["train_end"] == train_end.isoformat()
    assert library.metadata["n_train"] == library.metadata["n_patterns"] == len(train)
    # the training end only records the span: the clustering is that of the rows given
    untimed = cluster_patterns(train)
    assert untimed.templates == library.templates and untimed.scalers == library.scalers

    # a pattern at or after the training end is refused, with what to do instead
    with pytest.raises(ConfigError, match=r"1 pattern\(s\) start at or after.*"
                                          r"training_patterns"):
        cluster_patterns(patterns[patterns["ts"] <= train_end], train_end=train_end)
    with pytest.raises(ConfigError, match="start at or after"):
        cluster_patterns(patterns, train_end=train_end)


def test_a_naive_train_end_is_utc_and_bad_text_is_refused():
    patterns = pattern_frame(120, seed=5)
    end = patterns["ts"].iloc[-1] + pd.Timedelta(minutes=1)
    naive = cluster_patterns(patterns, train_end=end.tz_localize(None))
    assert naive.metadata["train_end"] == end.isoformat()
    with pytest.raises(ConfigError, match="ISO-8601"):
        cluster_patterns(patterns, train_end="next tuesday")


def test_constant_feature_gets_scale_one_and_library_scale_matches():
    patterns = pattern_frame(50, seed=2, timeframes=("15m",))
    library = cluster_patterns(patterns)
    scaler = library.scalers["15m"]
    depth = FEATURE_NAMES.index("hierarchy_depth")
    assert scaler.scale[depth] == 1.0
    assert scaler.mean[depth] == 1.0
    scaled = library.scale(patterns, "15m")
    raw = patterns.loc[:, list(FEATURE_NAMES)].to_numpy()
    np.testing.assert_array_equal(scaled, (raw - np.array(scaler.mean)) / np.array(scaler.scale))
    template = library.templates[0]
    members = patterns.set_index("pattern_id").loc[template.member_ids]
    np.testing.assert_allclose(template.centroid_scaled,
                               library.scale(members, "15m").mean(axis=0), atol=1e-12)
    with pytest.raises(ConfigError, match="no scaler for timeframe 1W"):
        library.scale(patterns, "1W")


def test_rows_with_nan_features_are_dropped_and_counted():
    patterns = pattern_frame(60, seed=9)
    patterns.loc[[3, 10], "abs_parent_z"] = np.nan
    patterns.loc[20, "z"] = np.nan
    patterns.loc[30, "hurst"] = np.inf
    library = cluster_patterns(patterns)
    meta = library.metadata
    assert (meta["n_patterns"], meta["n_clustered"], meta["dropped_rows"]) == (60, 56, 4)
    assert sum(meta["dropped_by_timeframe"].values()) == 4
    kept = {m for t in library for m in t.member_ids}
    assert kept == set(patterns["pattern_id"].drop([3, 10, 20, 30]))


# ------------------------------------------------------------------ tightening


def test_tightening_splits_a_bimodal_abs_z_cluster():
    z = np.r_[np.full(20, 2.0), np.full(19, 6.0)] + np.linspace(0, 0.1, 39)
    library = cluster_patterns(hand_frame(z))  # 39 patterns: k = 1
    assert library.metadata["initial_clusters"] == 1
    assert library.metadata["splits"] == 1
    assert member_sets(library) == [{f"p{i:03d}" for i in range(20)},
                                    {f"p{i:03d}" for i in range(20, 39)}]


def test_tightening_recurses_until_abs_z_is_tight():
    z = np.r_[np.full(13, 2.0), np.full(13, 4.0), np.full(13, 6.0)]
    library = cluster_patterns(hand_frame(z))
    assert library.metadata["splits"] == 2
    assert sorted(round(t.centroid_raw[0], 6) for t in library) == [2.0, 4.0, 6.0]
    for template in library:
        assert template.members == 13
        assert template.physics_variance == pytest.approx(0.0, abs=1e-20)


def test_small_or_tight_clusters_are_not_split():
    spread = hand_frame(np.r_[np.full(10, 2.0), np.full(10, 6.0)])  # 20 members: not > 20
    assert cluster_patterns(spread).metadata["splits"] == 0
    tight = hand_frame(np.r_[np.full(30, 2.0), np.full(5, 2.1)])  # std of scaled |z| = 1 ...
    tight["adx_norm"] = np.r_[np.zeros(30), np.full(5, 0.2)]
    tight.loc[:, "abs_z"] = 2.0  # ... unless |z| is constant
    assert cluster_patterns(tight).metadata["splits"] == 0


# ------------------------------------------------------------------ hand cases


def test_templates_fade_both_sides_and_long_share_comes_from_signed_z():
    # the feature space is mirror-invariant: a template fades moves up and down alike
    above = cluster_patterns(hand_frame([2.0, 2.5, -2.2, 3.0, 2.1])).templates[0]
    assert above.direction == 0
    assert above.long_share == pytest.approx(0.2)  # one member of five below its centre
    below = cluster_patterns(hand_frame([-2.0, -2.5, 2.2, -3.0])).templates[0]
    assert below.direction == 0
    assert below.long_share == pytest.approx(0.75)
    even = cluster_patterns(hand_frame([-2.0, 2.0])).templates[0]
    assert even.direction == 0
    assert even.long_share == 0.5


def test_oracle_statistics_and_centroids_on_a_hand_case():
    frame = hand_frame([2.0, 3.0, -2.5, 2.2, 2.4],
                       oracle_side=np.array([-1, -1, 1, 1, -1], dtype=np.int8),
                       oracle_mfe=[1.0, 2.0, 3.0, 4.0, 5.0],
                       oracle_mae=[10.0, 0.0, 20.0, 30.0, 40.0],
                       oracle_win=[True, False, True, True, False],
                       coherence=[0.1, 0.2, 0.3, 0.4, 0.5])
    library = cluster_patterns(frame)
    (template,) = library.templates
    assert template.direction == 0
    assert template.oracle_win_rate == pytest.approx(0.6)
    # members' fading sides -sign(z) are -1, -1, +1, -1, -1: the fourth oracle disagrees
    assert template.oracle_direction_share == pytest.approx(0.8)
    assert template.mfe_percentiles == pytest.approx([2.0, 3.0, 4.0])
    assert template.mae_percentiles == pytest.approx([10.0, 20.0, 30.0])
    assert template.timeframes == ["15m"]
    assert template.member_ids == [f"p{i:03d}" for i in range(5)]
    raw = frame.loc[:, list(FEATURE_NAMES)].to_numpy()
    np.testing.assert_allclose(template.centroid_raw, raw.mean(axis=0), atol=1e-12)
    scaled = (raw - raw.mean(axis=0)) / np.where(raw.std(axis=0) > 0, raw.std(axis=0), 1.0)
    np.testing.assert_allclose(template.centroid_scaled, 0.0, atol=1e-12)
    # two dimensions vary (abs_z, coherence), each with scaled variance 1: mean 2/14
    assert template.physics_variance == pytest.approx(scaled.var(axis=0).mean())
    assert template.physics_variance == pytest.approx(2 / 14)


def test_oracle_columns_are_optional_and_missing_values_are_skipped():
    frame = hand_frame([2.0, 3.0, 2.5])
    template = cluster_patterns(frame).templates[0]
    assert math.isnan(template.oracle_win_rate)
    assert all(math.isnan(v) for v in template.mfe_percentiles)
    frame["oracle_win"] = pd.array([True, None, False], dtype="boolean")
    frame["oracle_mfe"] = [1.0, np.nan, 3.0]
    template = cluster_patterns(frame).templates[0]
    assert template.oracle_win_rate == 0.5
    assert template.mfe_percentiles == pytest.approx([1.5, 2.0, 2.5])


def test_timeframe_mix_is_listed_coarsest_first():
    frame = pd.concat([hand_frame([2.0, 2.1], timeframe="5m"),
                       hand_frame([2.2, 2.3], timeframe="1h")], ignore_index=True)
    frame["pattern_id"] = ["a", "b", "c", "d"]
    assert cluster_patterns(frame).templates[0].timeframes == ["1h", "5m"]


# ------------------------------------------------------------------ determinism and input


def test_same_input_and_seed_give_an_identical_library_whatever_the_row_order():
    patterns = pattern_frame(900, seed=21)
    first = cluster_patterns(patterns, random_state=4)
    again = cluster_patterns(patterns.copy(), random_state=4)
    shuffled = cluster_patterns(patterns.sample(frac=1.0, random_state=1), random_state=4)
    assert first == again == shuffled
    assert [t.member_ids for t in first] == [t.member_ids for t in shuffled]


def test_bad_input_gets_a_clear_error():
    patterns = pattern_frame(10)
    with pytest.raises(ConfigError, match=r"lacks column.*abs_z"):
        cluster_patterns(patterns.drop(columns="abs_z"))
    with pytest.raises(ConfigError, match=r"lacks column.*ts"):
        cluster_patterns(patterns.drop(columns="ts"), train_end=START)
    patterns.loc[3, "pattern_id"] = patterns.loc[2, "pattern_id"]
    with pytest.raises(ConfigError, match="unique"):
        cluster_patterns(patterns)


def test_no_patterns_give_an_empty_library(tmp_path):
    library = cluster_patterns(pattern_frame(0))
    assert len(library) == 0 and library.metadata["k"] == 0
    assert TemplateLibrary.load(library.save(tmp_path / "lib")) == library


# ------------------------------------------------------------------ the library


def test_library_round_trips_exactly(tmp_path):
    patterns = pattern_frame(700, seed=8)
    train_end = START + pd.Timedelta(days=200)
    library = cluster_patterns(patterns[patterns["ts"] < train_end], train_end=train_end,
                               random_state=3)
    parent = library.templates[0]
    half = parent.members // 2
    children = [dataclasses.replace(parent, template_id=f"{parent.template_id}.{i + 1}",
                                    member_ids=ids, members=len(ids),
                                    parent_id=parent.template_id,
                                    params={"stop_ticks": 12, "trail_tight_ticks": 4.25,
                                            "note": "x"})
                for i, ids in enumerate((parent.member_ids[:half], parent.member_ids[half:]))]
    nan_stats = dataclasses.replace(library.templates[1], oracle_win_rate=math.nan,
                                    mfe_percentiles=[math.nan, 1.0 / 3.0, 2.0])
    library = library.with_templates([*children, nan_stats], remove=[parent.template_id])
    folder = library.save(tmp_path / "library")
    assert sorted(p.name for p in folder.iterdir()) == ["library.json", "members.parquet",
                                                       "templates.parquet"]
    loaded = TemplateLibrary.load(folder)
    assert loaded == library
    assert [t.template_id for t in loaded] == [t.template_id for t in library]
    assert loaded.get("T0001.2").params == {"stop_ticks": 12, "trail_tight_ticks": 4.25,
                                            "note": "x"}
    assert loaded.get("T0001.1").parent_id == "T0001"
    assert loaded.scalers == library.scalers and loaded.metadata == library.metadata
    for original, back in zip(library, loaded, strict=True):  # exact floats, not approx
        assert original.centroid_raw == back.centroid_raw
        assert original.centroid_scaled == back.centroid_scaled
    schema = pq.read_schema(folder / "templates.parquet")
    for column in ("timeframes", "centroid_scaled", "centroid_raw", "mfe_percentiles"):
        assert pa.types.is_list(schema.field(column).type)
    members = pq.read_table(folder / "members.parquet").to_pandas()
    pd.testing.assert_frame_equal(members, library.members_frame())
    index = json.loads((folder / "library.json").read_text())
    assert set(index["scalers"]["1h"]) >= {"mean", "scale"}
    library.save(folder)  # saving over an existing library works
    assert TemplateLibrary.load(folder) == library


def test_missing_or_damaged_library_gives_a_clear_error(tmp_path):
    library = cluster_patterns(pattern_frame(80, seed=4))
    with pytest.raises(DataError, match=r"library\.json is missing"):
        TemplateLibrary.load(tmp_path / "nowhere")
    folder = library.save(tmp_path / "lib")
    index = folder / "library.json"
    text = index.read_text()
    index.write_text(text[: len(text) // 2])
    with pytest.raises(DataError, match="not valid JSON"):
        TemplateLibrary.load(folder)
    index.write_text(json.dumps({**json.loads(text), "version": 99}))
    with pytest.raises(DataError, match="version 99"):
        TemplateLibrary.load(folder)
    index.write_text(text)
    (folder / "members.parquet").write_bytes(b"PAR1 half written")
    with pytest.raises(DataError, match=r"members\.parquet does not match"):
        TemplateLibrary.load(folder)
    index.unlink()
    with pytest.raises(DataError, match="save did not finish"):
        TemplateLibrary.load(folder)


def test_with_templates_get_and_to_frame():
    library = cluster_patterns(pattern_frame(200, seed=12))
    first = library.templates[0]
    tuned = dataclasses.replace(first, params={"stop_ticks": 8})
    extra = dataclasses.replace(library.templates[1], template_id="T9999")
    updated = library.with_templates([tuned, extra], remove=[library.templates[2].template_id],
                                     metadata={"fission": True})
    assert updated.templates[0] == tuned and updated.templates[-1] == extra
    assert len(updated) == len(library)
    assert library.templates[2].template_id not in updated
    assert updated.metadata["fission"] is True and "fission" not in library.metadata
    assert library.get(first.template_id).params == {}  # the original is unchanged
    with pytest.raises(KeyError, match="no template 'T0500'"):
        library.get("T0500")
    with pytest.raises(ConfigError, match="unknown"):
        library.with_templates([], remove=["nope"])
    with pytest.raises(ConfigError, match="twice"):
        TemplateLibrary([first, first], library.scalers)
    table = updated.to_frame()
    assert list(table["template_id"]) == [t.template_id for t in updated]
    assert table.loc[0, "abs_z"] == first.centroid_raw[0]
    assert set(FEATURE_NAMES) <= set(table.columns)


def test_templates_and_scalers_validate_their_fields():
    good = dict(template_id="T1", timeframes=["1h"], centroid_scaled=[0.0] * 14,
                centroid_raw=[0.0] * 14, members=1, member_ids=["a"], direction=1)
    assert Template(**good) == Template(**good)
    with pytest.raises(ConfigError, match="centroid_raw"):
        Template(**{**good, "centroid_raw": [0.0] * 13})
    with pytest.raises(ConfigError, match="direction"):
        Template(**{**good, "direction": 2})
    with pytest.raises(ConfigError, match="member_ids"):
        Template(**{**good, "members": 2})
    with pytest.raises(ConfigError, match="JSON"):
        Template(**{**good, "params": {"f": object()}})
    with pytest.raises(ConfigError, match="positive"):
        FeatureScaler([0.0] * 14, [0.0] * 14)


def test_a_rare_flag_moves_a_vector_one_unit_not_past_the_match_threshold():
    # a flag set on 5% of the patterns: standardised it would be a gap of 1/0.218 = 4.6
    raw = np.zeros((100, len(FEATURE_NAMES)))
    raw[:, 0] = np.linspace(0.0, 3.0, 100)
    flag = FEATURE_NAMES.index("parent_cascade")
    raw[:5, flag] = 1.0
    sign = FEATURE_NAMES.index("root_dmi_agreement")
    raw[:, sign] = np.where(np.arange(100) % 2, 1.0, -1.0)
    scaled = FeatureScaler.fit(raw).transform(raw)
    assert scaled[0, flag] - scaled[10, flag] == pytest.approx(1.0)
    assert abs(scaled[0, sign] - scaled[1, sign]) == pytest.approx(1.0)
    assert scaled[:, 0].std() == pytest.approx(1.0)  # a continuous dimension: standardised
