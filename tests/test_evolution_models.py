"""Training, reuse, determinism and the simulation of a model on a small synthetic market."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import TimeSeriesSplit

from stratforge.data.demo import synthesize_into_store
from stratforge.evolution import pipeline
from stratforge.evolution.config import GridPoint, make_evolution_config
from stratforge.evolution.loop import LocalBackend, evolve
from stratforge.evolution.modelstore import MODEL_FILE, load_estimator, load_signals, model_folder
from stratforge.evolution.simulation import simulate_point, wanted_sides, weekly_consistency
from stratforge.evolution.training import fit_model
from stratforge.instruments import get_instrument

SETTINGS = {"horizon": 5, "thresholds": [1.0, 2.0], "importance_repeats": 2,
            "importance_rows": 2000, "max_generations": 2}


@pytest.fixture(scope="module")
def market(tmp_path_factory):
    home = tmp_path_factory.mktemp("evo_market")
    synthesize_into_store("MNQ", days=10, seed=4, kind="planted", resolution="1m",
                          replace=True, home=home)
    return home


@pytest.fixture(scope="module")
def prepared(market):
    return pipeline.prepare_data(make_evolution_config(**SETTINGS), market)


def test_a_stored_model_is_reused_not_retrained(prepared, market, monkeypatch):
    calls = []
    real = pipeline.fit_model

    def counting(*args, **kwargs):
        calls.append(args[2])
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "fit_model", counting)
    features = prepared.feature_names[:12]
    first = pipeline.train_model(prepared, features, home=market)
    path = model_folder(first.fingerprint, market) / MODEL_FILE
    stamp = path.stat().st_mtime_ns
    again = pipeline.train_model(prepared, list(reversed(features)), home=market)
    assert not first.reused and again.reused
    assert again.fingerprint == first.fingerprint and len(calls) == 1
    assert path.stat().st_mtime_ns == stamp
    assert again.meta["created_at"] == first.meta["created_at"]
    other = pipeline.train_model(prepared, features[:-1], home=market)
    assert not other.reused and len(calls) == 2 and other.fingerprint != first.fingerprint


def test_scaling_uses_the_training_span_only_and_cv_is_time_ordered(prepared, market):
    features = prepared.feature_names[:10]
    model = pipeline.train_model(prepared, features, home=market)
    estimator = load_estimator(model.fingerprint, market)
    x = prepared.features[sorted(features)].to_numpy()
    scaler = estimator.regressor_.named_steps["scale"]
    assert np.allclose(scaler.mean_, x[prepared.split.train].mean(axis=0))
    assert not np.allclose(scaler.mean_, x[prepared.split.test].mean(axis=0))
    assert isinstance(estimator.regressor_.named_steps["model"].cv, TimeSeriesSplit)
    y = prepared.target[prepared.split.train]
    assert estimator.transformer_.mean_[0] == pytest.approx(y.mean())


def test_training_is_deterministic(market, tmp_path):
    other = tmp_path / "copy"
    synthesize_into_store("MNQ", days=10, seed=4, kind="planted", resolution="1m",
                          replace=True, home=other)
    config = make_evolution_config(**SETTINGS, algorithm="hist_gradient_boosting",
                                   hyperparameters={"max_iter": 20})
    runs = []
    for home in (market, other):
        prepared = pipeline.prepare_data(config, home)
        result = pipeline.train_model(prepared, prepared.feature_names[:15], home=home)
        runs.append((result, load_signals(result.fingerprint, home)))
    (a, sa), (b, sb) = runs
    assert a.fingerprint == b.fingerprint
    assert a.meta["importance"] == b.meta["importance"]
    assert np.array_equal(sa["prediction"], sb["prediction"])


def test_permutation_importance_is_signed_and_finds_the_real_feature():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 3))
    y = 0.8 * x[:, 0] + rng.normal(size=3000)
    model = fit_model("elasticnet", {}, ["signal", "noise_a", "noise_b"], x[:2000], y[:2000],
                      x[2000:], y[2000:], seed=1)
    imp = model.importance
    assert imp["signal"] > 0.3  # shuffling it raises the MSE by about 0.8^2 * 2 (x2 repeats)
    assert abs(imp["noise_a"]) < 0.02 and abs(imp["noise_b"]) < 0.02
    forest = fit_model("random_forest", {"n_estimators": 10}, ["signal", "noise_a", "noise_b"],
                       x[:2000], y[:2000], x[2000:], y[2000:], seed=1)
    assert max(forest.importance, key=forest.importance.get) == "signal"
    shared = fit_model("random_forest", {"n_estimators": 10}, ["signal", "noise_a", "noise_b"],
                       x[:2000], y[:2000], x[2000:], y[2000:], seed=1, n_jobs=2)
    assert shared.importance == forest.importance  # n_jobs never changes the result


def test_a_forest_fitted_on_every_core_equals_the_one_thread_forest():
    from sklearn.base import clone

    rng = np.random.default_rng(4)
    x = rng.normal(size=(3000, 4))
    y = 0.5 * x[:, 1] - 0.3 * x[:, 2] + rng.normal(size=3000)
    model = fit_model("random_forest", {"n_estimators": 12}, ["a", "b", "c", "d"],
                      x[:2000], y[:2000], x[2000:], y[2000:], seed=3)
    assert model.estimator.get_params()["regressor__model__n_jobs"] == -1  # fitted on all cores
    one_thread = clone(model.estimator).set_params(regressor__model__n_jobs=1)
    one_thread.fit(x[:2000], y[:2000])
    np.testing.assert_array_equal(one_thread.predict(x[2000:]), model.predict(x[2000:]))


def test_skipped_bars_keep_the_previous_side():
    z = np.array([2.0, 0.0, 3.0, -3.0, -3.0, 0.0, 3.0])
    skip = np.array([False, False, True, True, False, True, False])
    assert wanted_sides(z, 1.0).tolist() == [1, 0, 1, -1, -1, 0, 1]
    assert wanted_sides(z, 1.0, skip=skip).tolist() == [1, 0, 0, 0, -1, -1, 1]
    assert wanted_sides(z, 1.0, long_only=True).tolist() == [1, 0, 1, 0, 0, 0, 1]


def test_weekly_consistency_by_hand():
    # Monday 2024-01-01 .. Sunday 2024-01-21: three weeks with 2, 0 and 4 trades
    times = pd.Series(pd.to_datetime(["2024-01-01 10:00", "2024-01-03 10:00",
                                      "2024-01-15 10:00", "2024-01-16 10:00",
                                      "2024-01-17 10:00", "2024-01-19 10:00"], utc=True))
    value = weekly_consistency(times, pd.Timestamp("2024-01-01 09:00", tz="UTC"),
                               pd.Timestamp("2024-01-21 20:00", tz="UTC"))
    counts = np.array([2.0, 0.0, 4.0])
    assert value == pytest.approx(counts.std() / counts.mean())


def test_the_z_cutoff_and_the_regime_filter_are_applied(prepared, market):
    config = prepared.config
    model = pipeline.train_model(prepared, prepared.feature_names, home=market)
    signals = load_signals(model.fingerprint, market)
    meta = model.meta
    scale, centre = meta["prediction_scale"], meta["prediction_centre"]
    instrument = get_instrument("MNQ")
    plain = simulate_point(signals, scale, GridPoint(1.0, 0.0, "all"), config, instrument,
                           prediction_centre=centre)
    cutoff = float(np.quantile(signals["outlier"], 0.7))
    filtered = simulate_point(signals, scale, GridPoint(1.0, cutoff, "all"), config,
                              instrument, prediction_centre=centre)
    z = (signals["prediction"] - centre) / scale
    test = signals["span"] == 2
    expected = int((test & (np.abs(z) > 1.0) & (signals["outlier"] > cutoff)).sum())
    assert filtered["test"]["outlier_skipped"] == expected > 0
    assert filtered["test"]["trades"] != plain["test"]["trades"]
    assert plain["test"]["outlier_skipped"] == 0
    regime = simulate_point(signals, scale, GridPoint(1.0, 0.0, "vol=low"), config,
                            instrument, prediction_centre=centre)
    outside = test & (np.abs(z) > 1.0) & (signals["regime_vol"] != 0)
    assert regime["test"]["regime_skipped"] == int(outside.sum()) > 0
    steps = dict((heading, lines) for heading, lines in regime["explain"])
    assert "vol=low" in steps["Regime filter"][0]
    assert f"{int(outside.sum()):,}" in steps["Regime filter"][0]
    assert "T+4" in steps["Execution"][0]
    assert str(regime["test"]["trades"]) in " ".join(steps["Execution"])


@pytest.mark.parametrize(("settings", "reason", "generations"), [
    ({"algorithm": "random_forest", "hyperparameters": {"max_features": "bogus"}},
     "training_error", 0),
    ({"hyperparameters": {"alphas": [10.0]}}, "importance_unavailable", 1),
    ({"algorithm": "random_forest", "hyperparameters": {"n_estimators": 4},
      "min_features": 200}, "min_features_reached", 1),
    ({"algorithm": "random_forest", "hyperparameters": {"n_estimators": 4},
      "prune_fraction": 0.9, "max_generations": 2}, "max_generations", 2),
])
def test_stop_reasons_are_recorded(market, settings, reason, generations):
    config = make_evolution_config(**{**SETTINGS, "thresholds": [1.0], **settings})
    prepared = pipeline.prepare_data(config, market)
    outcome = evolve(prepared, LocalBackend(config, market), home=market)
    assert outcome.stop_reason == reason, outcome.stop_detail
    assert len(outcome.generations) == generations
    if reason == "training_error":
        assert "generation 0" in outcome.stop_detail and "max_features" in outcome.stop_detail
    if reason == "max_generations":
        first, second = outcome.generations
        assert second.parent == first.model and len(second.features) >= 5
        assert set(second.features) < set(first.features)


def test_a_second_run_reuses_every_model_and_simulation(market):
    config = make_evolution_config(**{**SETTINGS, "algorithm": "random_forest",
                                      "hyperparameters": {"n_estimators": 3},
                                      "z_cutoffs": [0.0, 4.0]})  # models no other test has
    runs = []
    for _ in range(2):
        prepared = pipeline.prepare_data(config, market)
        backend = LocalBackend(config, market)
        outcome = evolve(prepared, backend, home=market)
        runs.append((outcome, backend))
    (first, b1), (second, b2) = runs
    assert [m.reused for m in b2.models] == [True] * len(b2.models)
    assert [m.fingerprint for m in b2.models] == [m.fingerprint for m in b1.models]
    assert all(r["cached"] for results in b2.results.values() for r in results)
    assert not any(r["cached"] for r in b1.results[0])
    assert [g.best for g in second.generations] == [g.best for g in first.generations]
