"""Issue 16, "What was seen" 7: evolution with ``segments > 1`` fitted one model on the
training rows of every segment, so the model judged on the first test block had trained on
rows after it (3,220 of 6,442 training rows). Each segment is now its own walk-forward step:
its rows come before its test block by more than the embargo, and its model, scalers and
regimes are fitted on its own training rows only. Checked as a property of the split and on
two instrument kinds (MNQ 1m, EURUSD 1h) by changing the market after a segment's test block
starts: that segment's fitted model and predictions stay identical."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from stratforge.data.demo import synthesize_into_store
from stratforge.data.ingest import write_base_bars
from stratforge.data.load import load_bars
from stratforge.data.resample import BarArrays
from stratforge.data.store import AtlasStore
from stratforge.errors import DataError
from stratforge.evolution import pipeline
from stratforge.evolution.config import make_evolution_config
from stratforge.evolution.dataset import chronological_split
from stratforge.evolution.loop import (
    GenerationPlan,
    LocalBackend,
    evolve,
    run_simulation,
    summarise,
)
from stratforge.evolution.modelstore import load_estimator, load_meta, load_signals
from stratforge.evolution.pruning import prune_features
from stratforge.evolution.regimes import REGIME_FEATURES
from stratforge.timeframes import parse_timeframe


@settings(max_examples=200, deadline=None)
@given(segments=st.integers(1, 4), size=st.integers(200, 6000),
       holes=st.integers(0, 2**31 - 1), train=st.floats(0.3, 0.7),
       validation=st.floats(0.1, 0.25), purge=st.integers(0, 40), horizon=st.integers(1, 30))
def test_every_segment_fits_only_on_rows_before_its_test_block_minus_the_embargo(
        segments, size, holes, train, validation, purge, horizon):
    rng = np.random.default_rng(holes)
    # usable rows with holes (bars where a feature or the target is missing)
    usable = np.sort(rng.choice(np.arange(size + size // 3), size, replace=False)) + 17
    try:
        split = chronological_split(usable, train_fraction=train,
                                    validation_fraction=validation, purge_bars=purge,
                                    horizon=horizon, segments=segments)
    except DataError:
        assume(False)
    embargo = max(purge, horizon)
    assert split.gap == embargo and len(split.segments) == segments
    position = {int(bar): i for i, bar in enumerate(usable)}  # row number among usable rows
    for part in split.segments:
        first_test = position[int(part.test[0])]
        first_validation = position[int(part.validation[0])]
        train_rows = np.array([position[int(b)] for b in part.train])
        validation_rows = np.array([position[int(b)] for b in part.validation])
        test_rows = np.array([position[int(b)] for b in part.test])
        # in usable rows (the embargo's unit) and so also in bar positions
        assert train_rows.max() < first_test - embargo
        assert validation_rows.max() < first_test - embargo
        assert train_rows.max() < first_validation - embargo
        assert part.train.max() < part.test[0] - embargo
        assert part.validation.max() < part.test[0] - embargo
        # a segment never fits on a row of a later segment
        for later in split.segments[part.number + 1:]:
            assert part.train.max() < later.test[0] and part.train.max() < later.train[0]
        assert len(np.intersect1d(test_rows, train_rows)) == 0
    for name in ("train", "validation", "test"):
        joined = np.concatenate([getattr(p, name) for p in split.segments])
        assert np.array_equal(getattr(split, name), joined)


# ---- the fitted models on two instrument kinds -------------------------------------------

KINDS = {  # symbol, bar size, days, segments, the segment after whose test start we change
    "MNQ": ("1m", 8, 3, 0),
    "EURUSD": ("1h", 150, 3, 1),
}
FEATURES = ["logret_1", "logret_5", "realised_vol_60", "rsi_14", "ret_tail_60",
            "regime_vol", "regime_gmm_p"]
SETTINGS = {"horizon": 3, "purge_bars": 6, "importance_repeats": 1, "importance_rows": 500}


def _changed_copy(symbol: str, timeframe: str, source, target, after: pd.Timestamp) -> None:
    """Store into ``target`` the bars of ``source`` with every bar from ``after`` on moved
    by a random walk factor and a new volume (nothing before ``after`` changes)."""
    bars = load_bars(symbol, timeframe, home=source)
    later = (bars["ts"] >= after).to_numpy()
    rng = np.random.default_rng(11)
    factor = np.exp(np.cumsum(rng.normal(0.0, 0.004, later.sum())))
    for column in ("open", "high", "low", "close"):
        bars.loc[later, column] = bars.loc[later, column].to_numpy() * factor
    bars.loc[later, "volume"] = bars.loc[later, "volume"].to_numpy()[::-1]
    write_base_bars(AtlasStore.open(symbol, target), BarArrays.from_frame(bars),
                    parse_timeframe(timeframe), replace_all=True, source="changed copy")


def _rows_of(prepared, span: str, number: int) -> np.ndarray:
    """The bar positions of segment ``number``'s span ``span`` (train, validation, test)."""
    rows = getattr(prepared.split, span)
    return rows[prepared.segment[rows] == number]


def _segment_estimator(estimator, number: int):
    """The fitted model that predicts segment ``number``'s rows (a single model, before the
    fix, served every segment)."""
    return estimator.estimators[number] if hasattr(estimator, "estimators") else estimator


def _coefficients(estimator) -> np.ndarray:
    inner = estimator.regressor_
    scaler = inner.named_steps["scale"]
    return np.concatenate([inner.named_steps["model"].coef_, scaler.mean_, scaler.scale_,
                           estimator.transformer_.mean_, estimator.transformer_.scale_])


@pytest.fixture(scope="module", params=sorted(KINDS))
def twins(request, tmp_path_factory):
    """(symbol, the segment k, prepared data and trained model on the original and on the
    market changed after segment k's test block starts)."""
    symbol = request.param
    timeframe, days, segments, changed_after = KINDS[symbol]
    original = tmp_path_factory.mktemp(f"split_{symbol}_a")
    changed = tmp_path_factory.mktemp(f"split_{symbol}_b")
    synthesize_into_store(symbol, days=days, seed=5, kind="planted", resolution=timeframe,
                          replace=True, home=original)
    config = make_evolution_config(symbol=symbol, timeframe=timeframe, segments=segments,
                                   **SETTINGS)
    first = pipeline.prepare_data(config, original)
    test_start = first.bars["ts"].iloc[int(_rows_of(first, "test", changed_after)[0])]
    _changed_copy(symbol, timeframe, original, changed, test_start)
    second = pipeline.prepare_data(config, changed)
    models = [pipeline.train_model(p, FEATURES, home=h)
              for p, h in ((first, original), (second, changed))]
    return symbol, changed_after, (first, second), models, (original, changed), test_start


def test_the_change_reaches_only_bars_from_the_test_block_on(twins):
    _, _, (first, second), _, _, test_start = twins
    before = (first.bars["ts"] < test_start).to_numpy()
    pd.testing.assert_frame_equal(first.bars[before], second.bars[before])
    assert not np.allclose(first.bars["close"][~before], second.bars["close"][~before])
    assert np.array_equal(first.segment, second.segment)  # same usable rows and segments
    for span in ("train", "validation", "test"):
        assert np.array_equal(getattr(first.split, span), getattr(second.split, span))


def test_segments_up_to_the_changed_test_block_keep_identical_models(twins):
    symbol, changed_after, (first, _), models, homes, _ = twins
    estimators = [load_estimator(m.fingerprint, h) for m, h in zip(models, homes, strict=True)]
    assert models[0].fingerprint != models[1].fingerprint  # the data identity differs
    for number in range(changed_after + 1):
        a, b = (_coefficients(_segment_estimator(e, number)) for e in estimators)
        assert np.array_equal(a, b), f"{symbol}: segment {number}'s model saw later bars"
    last = int(first.segment.max())
    a, b = (_coefficients(_segment_estimator(e, last)) for e in estimators)
    assert not np.array_equal(a, b)  # the change did reach the last segment's fit


def test_segments_up_to_the_changed_test_block_keep_identical_predictions(twins):
    symbol, changed_after, (first, _), models, homes, test_start = twins
    signals = [load_signals(m.fingerprint, h) for m, h in zip(models, homes, strict=True)]
    assert np.array_equal(signals[0]["bar"], signals[1]["bar"])
    segment = first.segment[signals[0]["bar"]]
    # rows of segments <= k before the change (segment k's test rows read changed bars)
    mine = (segment <= changed_after) & (signals[0]["ts"] < test_start.value)
    assert mine.sum() > 100
    for key in ("prediction", "outlier", *REGIME_FEATURES):
        assert np.array_equal(signals[0][key][mine], signals[1][key][mine], equal_nan=True), \
            f"{symbol}: {key} of segments <= {changed_after} changed"
    assert not np.allclose(signals[0]["prediction"][~mine], signals[1]["prediction"][~mine])


def test_regimes_are_fitted_per_segment_on_its_training_rows(twins):
    _, changed_after, (first, second), _, _, test_start = twins
    before = (first.bars["ts"] < test_start).to_numpy()
    keep = before & (first.segment >= 0) & (first.segment <= changed_after)
    for name in REGIME_FEATURES:  # every bar of segments <= k before the change
        assert np.array_equal(first.features[name].to_numpy()[keep],
                              second.features[name].to_numpy()[keep], equal_nan=True)
    # terciles of each segment's own training rows: a third in each volatility regime
    for number in range(int(first.segment.max()) + 1):
        codes = first.features["regime_vol"].to_numpy()[_rows_of(first, "train", number)]
        counts = np.bincount(codes.astype(np.int64), minlength=3)
        assert np.all(np.abs(counts - len(codes) / 3) <= 2)
    owner = pipeline.regime_owner(len(first.bars), first.split)
    assert np.array_equal(owner[first.segment >= 0], first.segment[first.segment >= 0])


def test_each_segment_scales_with_its_own_training_rows(twins):
    _, _, (first, _), models, homes, _ = twins
    estimator = load_estimator(models[0].fingerprint, homes[0])
    x = first.features[sorted(FEATURES)].to_numpy()
    y = first.target
    segments = int(first.segment.max()) + 1
    for number in range(segments):
        train = _rows_of(first, "train", number)
        fitted = _segment_estimator(estimator, number)
        scaler = fitted.regressor_.named_steps["scale"]
        assert np.allclose(scaler.mean_, x[train].mean(axis=0), rtol=1e-12, atol=0)
        assert fitted.transformer_.mean_[0] == pytest.approx(y[train].mean(), rel=1e-12)
    info = models[0].meta["segments"]
    assert [s["train_rows"] for s in info] == [len(_rows_of(first, "train", n))
                                               for n in range(segments)]


def test_pruning_reads_importance_from_before_every_test_block(twins):
    _, changed_after, _, models, _, _ = twins
    # the first segment's validation span ends before every test block
    if changed_after == 0:
        assert models[0].meta["importance"] == models[1].meta["importance"]
    assert models[0].meta["importance"] == models[0].meta["segments"][0]["importance"]


def test_a_segmented_run_signals_each_segment_with_its_own_model(tmp_path):
    """A whole run with two segments: every stored prediction is the standardised output of
    its own segment's model (centre and scale of that segment's training predictions), and
    the next generation's features are pruned by the first segment's importance."""
    home = tmp_path / "home"
    synthesize_into_store("EURUSD", days=150, seed=3, kind="planted", resolution="1h",
                          replace=True, home=home)
    config = make_evolution_config(symbol="EURUSD", timeframe="1h", segments=2,
                                   max_generations=2, thresholds=[1.0], z_cutoffs=[0.0],
                                   regimes=["all"], min_features=3, **SETTINGS)
    prepared = pipeline.prepare_data(config, home)
    outcome = evolve(prepared, LocalBackend(config, home), home=home,
                     start_features=FEATURES)
    assert [g.generation for g in outcome.generations] == [0, 1]
    first, second = outcome.generations
    meta = load_meta(first.model, home)
    assert meta["prediction_centre"] == 0.0 and meta["prediction_scale"] == 1.0
    expected = prune_features(meta["segments"][0]["importance"],
                              prune_fraction=config.prune_fraction,
                              min_features=config.min_features).kept
    assert sorted(second.features) == sorted(expected)
    estimator = load_estimator(first.model, home)
    signals = load_signals(first.model, home)
    x = prepared.features[sorted(FEATURES)].to_numpy()
    y = prepared.target
    for number, info in enumerate(meta["segments"]):
        train = _rows_of(prepared, "train", number)
        raw = estimator.estimators[number].predict(x[train])
        assert info["prediction_centre"] == pytest.approx(raw.mean(), rel=1e-12)
        assert info["prediction_scale"] == pytest.approx(raw.std(), rel=1e-12)
        mine = prepared.segment[signals["bar"]] == number
        rows = signals["bar"][mine]
        expected_z = (estimator.estimators[number].predict(x[rows]) - raw.mean()) / raw.std()
        np.testing.assert_allclose(signals["prediction"][mine], expected_z, rtol=1e-9,
                                   atol=1e-12)
        assert not np.isin(rows, train).any() and np.isfinite(y[train]).all()
    assert first.best is None or first.best["trades"] is not None


@pytest.mark.parametrize("segments", [2, 3, 4])
def test_no_fit_reads_a_row_at_or_after_its_test_block_minus_the_embargo(segments, tmp_path,
                                                                          monkeypatch):
    """What was seen: 3,220 of 6,442 training rows came after the first test row. A row-id
    column fed to the fit shows exactly which rows each fit (and its importance) read."""
    import dataclasses

    home = tmp_path / "home"
    synthesize_into_store("EURUSD", days=150, seed=2, kind="planted", resolution="1h",
                          replace=True, home=home)
    config = make_evolution_config(symbol="EURUSD", timeframe="1h", segments=segments,
                                   **SETTINGS)
    prepared = pipeline.prepare_data(config, home)
    features = prepared.features.copy()
    features["row_id"] = np.arange(len(features), dtype=np.float64)
    prepared = dataclasses.replace(prepared, features=features)
    fits = []
    real = pipeline.fit_model

    def recording(algorithm, hyper, names, x_train, y_train, x_val, y_val, **kwargs):
        column = names.index("row_id")
        fits.append((x_train[:, column].astype(np.int64), x_val[:, column].astype(np.int64)))
        return real(algorithm, hyper, names, x_train, y_train, x_val, y_val, **kwargs)

    monkeypatch.setattr(pipeline, "fit_model", recording)
    pipeline.train_model(prepared, ["row_id", *FEATURES], home=home)
    gap = prepared.split.gap
    for number in range(segments):
        test_start = int(_rows_of(prepared, "test", number)[0])
        serving = fits if len(fits) == 1 else [fits[number]]  # the fits behind this block
        fitted = np.concatenate([rows for rows, _ in serving])
        validated = np.concatenate([rows for _, rows in serving])
        late = int((fitted >= test_start - gap).sum())
        assert late == 0, (f"segment {number + 1}: {late} of {len(fitted)} training rows at "
                           f"or after its first test row minus the embargo")
        assert validated.max() < test_start - gap
        assert np.array_equal(np.sort(fitted), _rows_of(prepared, "train", number))


def test_grid_points_are_chosen_on_validation_rows_before_every_test_block(twins):
    """The grid point and the generation are chosen on validation metrics; with several
    segments those come from the first segment's validation span, which ends before every
    test block, so a market changed from any test block on gives the same choice. Before the
    fix the validation rows of later segments (after the first test block) entered it."""
    symbol, changed_after, _, models, homes, _ = twins
    timeframe, _, segments, _ = KINDS[symbol]
    config = make_evolution_config(symbol=symbol, timeframe=timeframe, segments=segments,
                                   **SETTINGS)
    runs = [[run_simulation(m.fingerprint, point, config, h) for point in config.grid]
            for m, h in zip(models, homes, strict=True)]
    assert any(r["validation"]["trades"] > 0 for r in runs[0])
    # the explained log says each segment's own model made the signal
    signals_step = dict((step[0], step[1]) for step in runs[0][0]["explain"])["Signals"]
    assert f"each of the {segments} segments' own model" in signals_step[0]
    for a, b in zip(*runs, strict=True):
        assert a["validation"] == b["validation"], f"{symbol}: {a['point']}"
    plan = GenerationPlan(0, models[0].fingerprint, None, FEATURES, list(config.grid), [], 0)
    best = [summarise(plan, r, config, False).best for r in runs]
    assert (best[0] is None) == (best[1] is None)
    if best[0] is not None:
        keys = ("threshold", "z_cutoff", "regime", "validation_sqn", "validation_trades")
        assert {k: best[0][k] for k in keys} == {k: best[1][k] for k in keys}
    if changed_after == 0:  # every test block changed: the test metrics must show it
        assert any(a["test"] != b["test"] for a, b in zip(*runs, strict=True))
