"""Hyperparameters of the evolution algorithms: defaults and their normalised form (what a
model fingerprint hashes). No scikit-learn import here, so settings validate cheaply."""

from __future__ import annotations

import importlib.util
import math
from typing import Any

from stratforge.errors import ConfigError

DEFAULTS: dict[str, dict[str, Any]] = {
    "elasticnet": {"alphas": [0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03],
                   "l1_ratios": [0.2, 0.5, 0.9], "cv_splits": 3, "max_iter": 5000},
    "random_forest": {"n_estimators": 60, "max_depth": 8, "min_samples_leaf": 200,
                      "max_features": 0.3, "max_samples": 0.5},
    "hist_gradient_boosting": {"max_iter": 150, "learning_rate": 0.05, "max_leaf_nodes": 15,
                               "min_samples_leaf": 200, "l2_regularization": 1.0},
    "lightgbm": {"n_estimators": 150, "learning_rate": 0.05, "num_leaves": 15,
                 "min_child_samples": 200},
    "xgboost": {"n_estimators": 150, "learning_rate": 0.05, "max_depth": 4},
}
_GRID_KEYS = {"alphas", "l1_ratios"}
OPTIONAL = {"lightgbm": "lightgbm", "xgboost": "xgboost"}


def available_algorithms() -> list[str]:
    """Algorithms usable here (LightGBM and XGBoost only when installed)."""
    return [a for a in DEFAULTS
            if a not in OPTIONAL or importlib.util.find_spec(OPTIONAL[a]) is not None]


def _canonical(name: str, value: Any, where: str) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        number = float(value)
        if not math.isfinite(number):
            raise ConfigError(f"{where}: hyperparameter {name} must be finite, got {value!r}")
        return int(number) if number == int(number) and not isinstance(value, float) \
            else number
    if isinstance(value, list | tuple):
        items = [_canonical(name, v, where) for v in value]
        return sorted(items) if name in _GRID_KEYS else items
    raise ConfigError(f"{where}: hyperparameter {name} must be a number, text or list, got "
                      f"{type(value).__name__}")


def normalise_hyperparameters(algorithm: str, given: dict[str, Any] | None = None
                              ) -> dict[str, Any]:
    """The algorithm's defaults updated with ``given``, keys sorted, numbers canonical (an
    integer-valued float written as 2.0 stays a float; grids sorted). Unknown names are a
    ConfigError listing the known ones."""
    if algorithm not in DEFAULTS:
        raise ConfigError(f"algorithm must be one of {', '.join(DEFAULTS)}, got {algorithm!r}")
    given = dict(given or {})
    unknown = sorted(set(given) - set(DEFAULTS[algorithm]))
    if unknown:
        raise ConfigError(f"unknown {algorithm} hyperparameter(s) {', '.join(unknown)}; known: "
                          f"{', '.join(sorted(DEFAULTS[algorithm]))}")
    merged = {**DEFAULTS[algorithm], **given}
    where = f"{algorithm} hyperparameters"
    out = {}
    for key in sorted(merged):
        value = _canonical(key, merged[key], where)
        if isinstance(value, float) and value == int(value) and key in ("n_estimators",
                                                                         "max_depth"):
            value = int(value)
        out[key] = value
    return out
