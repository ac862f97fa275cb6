"""Model and simulation fingerprints: stable under any reordering of features and
hyperparameters, different for every real change of what determines the model."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stratforge.errors import ConfigError
from stratforge.evolution.fingerprint import (
    check_fingerprint,
    model_fingerprint,
    simulation_fingerprint,
)

FEATURES = ["ret_1", "rsi_14", "state_z", "macd_12_26", "vwap_dist_20", "regime_gmm"]
BASE = {"features": FEATURES, "algorithm": "elasticnet",
        "hyperparameters": {"alphas": [0.001, 0.01], "l1_ratios": [0.5, 0.9]},
        "symbol": "MNQ", "reference_symbols": ["ES", "NQ"], "timeframe": "1m",
        "target": {"kind": "log_return", "horizon": 1},
        "spans": {"train_fraction": 0.6, "validation_fraction": 0.2, "gap": 1,
                  "first_bar": "2023-01-02T00:00:00+00:00", "data": {"MNQ": "ab" * 32}},
        "seed": 7}


@settings(max_examples=50, deadline=None)
@given(st.permutations(FEATURES), st.permutations(["alphas", "l1_ratios"]),
       st.permutations([0.001, 0.01]), st.permutations(["ES", "NQ"]))
def test_fingerprint_is_stable_under_reordering(features, keys, alphas, refs):
    hyper = {k: (alphas if k == "alphas" else [0.9, 0.5]) for k in keys}
    moved = {**BASE, "features": features, "hyperparameters": hyper, "reference_symbols": refs,
             "spans": dict(reversed(list(BASE["spans"].items())))}
    assert model_fingerprint(**moved) == model_fingerprint(**BASE)


def test_fingerprint_equals_an_independent_sha256_of_the_sorted_identity():
    # the defaults filled in by hand from the documented elasticnet defaults
    identity = {"features": sorted(FEATURES), "algorithm": "elasticnet",
                "hyperparameters": {"alphas": [0.001, 0.01], "cv_splits": 3,
                                    "l1_ratios": [0.5, 0.9], "max_iter": 5000},
                "symbol": "MNQ", "reference_symbols": ["ES", "NQ"], "timeframe": "1m",
                "target": {"kind": "log_return", "horizon": 1}, "spans": BASE["spans"],
                "seed": 7, "feature_set_version": 2}
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    assert model_fingerprint(**BASE) == hashlib.sha256(text.encode()).hexdigest()


CHANGES = [
    ("features", FEATURES[:-1]),
    ("features", [*FEATURES, "rsi_7"]),
    ("hyperparameters", {"alphas": [0.001, 0.02], "l1_ratios": [0.5, 0.9]}),
    ("hyperparameters", {"alphas": [0.001, 0.01], "l1_ratios": [0.5, 0.9], "max_iter": 10}),
    ("symbol", "ES"),
    ("reference_symbols", ["ES"]),
    ("timeframe", "5m"),
    ("target", {"kind": "log_return", "horizon": 5}),
    ("target", {"kind": "pct_change", "horizon": 1}),
    ("spans", {**BASE["spans"], "gap": 2}),
    ("spans", {**BASE["spans"], "train_fraction": 0.5}),
    ("spans", {**BASE["spans"], "data": {"MNQ": "cd" * 32}}),
    ("seed", 8),
]


@pytest.mark.parametrize(("field", "value"), CHANGES)
def test_any_real_change_changes_the_fingerprint(field, value):
    assert model_fingerprint(**{**BASE, field: value}) != model_fingerprint(**BASE)


def test_another_algorithm_changes_the_fingerprint():
    forest = {**BASE, "algorithm": "random_forest", "hyperparameters": {}}
    assert model_fingerprint(**forest) != model_fingerprint(**BASE)
    assert model_fingerprint(**forest) != model_fingerprint(
        **{**forest, "hyperparameters": {"n_estimators": 61}})


def test_default_hyperparameters_written_out_give_the_same_model():
    spelled = {**BASE, "hyperparameters": {**BASE["hyperparameters"], "cv_splits": 3}}
    assert model_fingerprint(**spelled) == model_fingerprint(**BASE)


def test_simulation_fingerprint_covers_model_point_and_execution():
    model = model_fingerprint(**BASE)
    point = {"threshold": 1.0, "z_cutoff": 0.0, "regime": "all"}
    # the resolved cost model is part of the execution settings (was cost_per_trade 1.0)
    execution = {"delay_bars": 4, "costs": {"commission": 0.62, "spread_ticks": 1.0}}
    base = simulation_fingerprint(model, point, execution)
    assert simulation_fingerprint(model, point, {
        **execution, "costs": {"commission": 0.62, "spread_ticks": 2.0}}) != base
    assert simulation_fingerprint(model, dict(reversed(list(point.items()))), execution) == base
    assert simulation_fingerprint(model, {**point, "threshold": 2.0}, execution) != base
    assert simulation_fingerprint(model, {**point, "regime": "vol=low"}, execution) != base
    assert simulation_fingerprint(model, point, {**execution, "delay_bars": 1}) != base
    other = model_fingerprint(**{**BASE, "seed": 1})
    assert simulation_fingerprint(other, point, execution) != base


def test_fingerprints_are_names_never_paths():
    with pytest.raises(ConfigError, match="64 lowercase hex"):
        check_fingerprint("../../etc/passwd")
    with pytest.raises(ConfigError, match="distinct"):
        model_fingerprint(**{**BASE, "features": ["a", "a"]})
