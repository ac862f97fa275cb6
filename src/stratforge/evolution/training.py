"""Algorithms, their normalised hyperparameters, fitting and permutation importance.

Every model is a scikit-learn ``TransformedTargetRegressor`` around a ``Pipeline`` of a
``StandardScaler`` and the estimator, fitted on the training span only: the feature scaling
and the target scaling never see the validation or test span. ElasticNet picks alpha and
l1_ratio by time-series cross-validation (``TimeSeriesSplit``, never shuffled K-fold) on the
training span. LightGBM and XGBoost work when their packages are installed.
"""

from __future__ import annotations

import importlib.util
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.compose import TransformedTargetRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.inspection import permutation_importance
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from stratforge.errors import ConfigError
from stratforge.evolution.hyperparameters import (
    OPTIONAL,
    available_algorithms,
    normalise_hyperparameters,
)


def _estimator(algorithm: str, params: dict[str, Any], seed: int) -> Any:
    p = dict(params)
    if algorithm == "elasticnet":
        from sklearn.linear_model import ElasticNetCV
        from sklearn.model_selection import TimeSeriesSplit
        return ElasticNetCV(alphas=p["alphas"], l1_ratio=p["l1_ratios"],
                            cv=TimeSeriesSplit(n_splits=int(p["cv_splits"])),
                            max_iter=int(p["max_iter"]), random_state=seed, n_jobs=1)
    if algorithm == "random_forest":
        from sklearn.ensemble import RandomForestRegressor
        # Trees are fitted on every core (threads); each tree's seed comes from random_state,
        # so the forest does not depend on it. ``fit_model`` predicts on one thread after the
        # fit: threads would add the trees' predictions in any order (last-bit differences).
        return RandomForestRegressor(random_state=seed, n_jobs=-1, **p)
    if algorithm == "hist_gradient_boosting":
        from sklearn.ensemble import HistGradientBoostingRegressor
        return HistGradientBoostingRegressor(random_state=seed, early_stopping=False, **p)
    if importlib.util.find_spec(OPTIONAL[algorithm]) is None:
        raise ConfigError(f"algorithm {algorithm} needs the {OPTIONAL[algorithm]} package; "
                          f"install it (pip install {OPTIONAL[algorithm]}) or use one of "
                          f"{', '.join(available_algorithms())}")
    if algorithm == "lightgbm":
        import lightgbm
        return lightgbm.LGBMRegressor(random_state=seed, n_jobs=1, verbose=-1, **p)
    import xgboost
    return xgboost.XGBRegressor(random_state=seed, n_jobs=1, **p)


@dataclass
class TrainedModel:
    """A fitted model, the features it reads (in order) and what its training found."""

    estimator: Any
    features: list[str]
    importance: dict[str, float]
    info: dict[str, Any]

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predictions for rows of ``x`` (columns in ``features`` order)."""
        return np.asarray(self.estimator.predict(x), dtype=np.float64)


def fit_model(algorithm: str, hyperparameters: dict[str, Any], features: list[str],
              x_train: np.ndarray, y_train: np.ndarray, x_validation: np.ndarray,
              y_validation: np.ndarray, *, seed: int, importance_repeats: int = 3,
              importance_rows: int = 20_000, n_jobs: int = 1) -> TrainedModel:
    """Fit on the training rows, then measure signed permutation importance on (at most
    ``importance_rows`` seeded rows of) the validation span: the rise of the mean squared
    error when one feature's column is shuffled (> 0 helps, <= 0 does not). ``n_jobs``
    processes share the importance work; the result does not depend on it."""
    params = normalise_hyperparameters(algorithm, hyperparameters)
    started = time.perf_counter()
    model = TransformedTargetRegressor(
        regressor=Pipeline([("scale", StandardScaler()),
                            ("model", _estimator(algorithm, params, seed))]),
        transformer=StandardScaler())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x_train, y_train)
    if algorithm == "random_forest":
        model.regressor_.named_steps["model"].set_params(n_jobs=1)
    fit_seconds = time.perf_counter() - started
    rng = np.random.default_rng(seed)
    rows = np.arange(len(y_validation))
    if len(rows) > importance_rows:
        rows = np.sort(rng.choice(rows, importance_rows, replace=False))
    started = time.perf_counter()
    result = permutation_importance(model, x_validation[rows], y_validation[rows],
                                    scoring="neg_mean_squared_error",
                                    n_repeats=importance_repeats, random_state=seed,
                                    n_jobs=n_jobs)
    importance = {name: float(v) for name, v in zip(features, result.importances_mean,
                                                    strict=True)}
    info: dict[str, Any] = {"fit_seconds": round(fit_seconds, 3),
                            "importance_seconds": round(time.perf_counter() - started, 3),
                            "train_rows": len(y_train), "validation_rows": len(y_validation)}
    inner = model.regressor_.named_steps["model"]
    if algorithm == "elasticnet":
        info.update(alpha=float(inner.alpha_), l1_ratio=float(inner.l1_ratio_),
                    nonzero=int(np.count_nonzero(inner.coef_)))
    pred_train = model.predict(x_train)
    pred_val = model.predict(x_validation)
    info["prediction_mean_train"] = float(np.mean(pred_train))
    info["prediction_std_train"] = float(np.std(pred_train))
    info["validation_corr"] = _corr(pred_val, y_validation)
    info["train_corr"] = _corr(pred_train, y_train)
    return TrainedModel(model, list(features), importance, info)


def _corr(a: np.ndarray, b: np.ndarray) -> float | None:
    if len(a) < 3 or np.std(a) == 0 or np.std(b) == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


@dataclass
class SegmentedModel:
    """The fitted models of a segmented split, one per segment in time order, each with the
    centre and scale of its own training-span predictions.

    Segment k's model is fitted on segment k's training rows only, so it never saw a row at
    or after its test block. ``predict`` gives the standardised prediction
    ``(prediction - centre) / scale`` of the latest segment's model (the one to use after
    the data); ``predict_segment`` that of any segment.
    """

    estimators: list[Any]
    centres: list[float]
    scales: list[float]

    def predict_segment(self, number: int, x: np.ndarray) -> np.ndarray:
        """Standardised predictions of segment ``number``'s model for rows of ``x``."""
        scale = self.scales[number] if self.scales[number] > 0 else 1.0
        raw = np.asarray(self.estimators[number].predict(x), dtype=np.float64)
        return (raw - self.centres[number]) / scale

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Standardised predictions of the latest segment's model."""
        return self.predict_segment(len(self.estimators) - 1, x)
