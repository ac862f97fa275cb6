"""Prepare a run's data once, then train (or reuse) models on feature subsets of it.

``prepare_data`` loads the bars (building the demo market for MNQ when there are none),
the cached field-engine states, the reference symbols, builds every candidate feature and the
target, splits the usable rows chronologically into segments and fits each segment's regimes
on that segment's training span. ``train_model`` fingerprints a feature subset and, unless
that model is stored already, fits one model per segment on the segment's training span,
measures permutation importance on its validation span and stores the models with the
arrays their simulations read (validation and test spans only, each predicted by its own
segment's model).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stratforge.config import resolve_home
from stratforge.data.demo import ensure_symbol_data
from stratforge.data.load import load_bars
from stratforge.errors import ConfigError, DataError
from stratforge.evolution.config import EvolutionConfig
from stratforge.evolution.dataset import Split, chronological_split, make_target
from stratforge.evolution.featureset import build_features
from stratforge.evolution.fingerprint import SPLIT_VERSION, model_fingerprint, model_identity
from stratforge.evolution.modelstore import load_meta, model_exists, save_model
from stratforge.evolution.regimes import REGIME_FEATURES, RETURN_FEATURE, VOL_FEATURE, fit_regimes
from stratforge.evolution.simulation import SPAN_TEST, SPAN_VALIDATION
from stratforge.evolution.training import SegmentedModel, TrainedModel, fit_model
from stratforge.features.cache import atlas_fingerprint, load_states
from stratforge.instruments import get_instrument
from stratforge.progress import ProgressCallback, no_progress


@dataclass
class PreparedData:
    """One run's bars, candidate features (regimes included), target and split."""

    config: EvolutionConfig
    bars: pd.DataFrame
    features: pd.DataFrame
    target: np.ndarray
    split: Split
    segment: np.ndarray   # segment number of every bar (-1 outside its spans: warm-up, gaps)
    spans: dict[str, Any]

    @property
    def feature_names(self) -> list[str]:
        """Every candidate feature, in column order."""
        return list(self.features.columns)


def _span(bars: pd.DataFrame, config: EvolutionConfig) -> np.ndarray:
    keep = np.ones(len(bars), dtype=bool)
    if config.start:
        keep &= (bars["ts"] >= pd.Timestamp(config.start, tz="UTC")).to_numpy()
    if config.end:
        keep &= (bars["ts"] < pd.Timestamp(config.end, tz="UTC")).to_numpy()
    return keep


def prepare_data(config: EvolutionConfig, home: Path | str | None = None,
                 progress: ProgressCallback = no_progress) -> PreparedData:
    """See the module docstring; DataError when the data cannot give three spans."""
    home = resolve_home(home)
    ensure_symbol_data(config.symbol, home, progress=progress, phase="data")
    progress("data", 0, 3, f"loading {config.symbol} {config.timeframe} bars and states")
    full = load_bars(config.symbol, config.timeframe, home=home)
    keep = _span(full, config)
    if keep.sum() < 500:
        raise DataError(f"{config.symbol} {config.timeframe}: {int(keep.sum())} bars in the "
                        "span; an evolution run needs at least 500 (widen start/end or use a "
                        "shorter timeframe)")
    states = load_states(config.symbol, config.timeframe, home=home)
    bars = full[keep].reset_index(drop=True)
    states = states[keep].reset_index(drop=True)
    references = {}
    data_keys = {config.symbol: atlas_fingerprint(config.symbol, config.timeframe, home=home)}
    for symbol in config.reference_symbols:
        ref = load_bars(symbol, config.timeframe, home=home)
        references[symbol] = ref[_span(ref, config)].reset_index(drop=True)
        data_keys[symbol] = atlas_fingerprint(symbol, config.timeframe, home=home)
    progress("data", 1, 3, f"building features of {len(bars):,} bars")
    features = build_features(bars, states, references,
                              tick_size=get_instrument(config.symbol, home).tick_size)
    close = bars["close"].to_numpy(dtype=np.float64)
    target = make_target(close, config.target, config.horizon)
    usable = np.flatnonzero(np.isfinite(features.to_numpy()).all(axis=1) & np.isfinite(target))
    split = chronological_split(usable, train_fraction=config.train_fraction,
                                validation_fraction=config.validation_fraction,
                                purge_bars=config.purge_bars, horizon=config.horizon,
                                segments=config.segments)
    progress("data", 2, 3, "fitting regimes on each segment's training span")
    for name, values in segment_regimes(features, split, seed=config.seed).items():
        features[name] = values
    segment = np.full(len(bars), -1, dtype=np.int64)
    for part in split.segments:
        segment[part.rows] = part.number
    ts = bars["ts"]
    spans = {"train_fraction": config.train_fraction,
             "validation_fraction": config.validation_fraction, "gap": split.gap,
             "segments": config.segments, "start": config.start, "end": config.end,
             "first_bar": ts.iloc[int(usable[0])].isoformat(),
             "last_bar": ts.iloc[int(usable[-1])].isoformat(), "usable_rows": len(usable),
             "data": data_keys, "split_version": SPLIT_VERSION}
    progress("data", 3, 3, f"{len(features.columns)} candidate features; split "
                           f"{split.describe()}")
    return PreparedData(config, bars, features, target, split, segment, spans)


def regime_owner(n_bars: int, split: Split) -> np.ndarray:
    """The segment whose regimes label each bar: segment k owns the bars from its first row
    up to the next segment's first row (the first segment also the bars before it, the last
    one the bars after it), so every span of a segment is labelled by its own fit."""
    starts = np.array([part.rows[0] for part in split.segments], dtype=np.int64)
    owner = np.searchsorted(starts, np.arange(n_bars), side="right") - 1
    return np.maximum(owner, 0)


def segment_regimes(features: pd.DataFrame, split: Split, *, seed: int
                    ) -> dict[str, np.ndarray]:
    """The regime columns (``REGIME_FEATURES``): each segment's bars labelled by regimes
    fitted on that segment's training rows only (``regime_owner``)."""
    returns = features[RETURN_FEATURE].to_numpy()
    volatility = features[VOL_FEATURE].to_numpy()
    owner = regime_owner(len(features), split)
    out = {name: np.full(len(features), np.nan) for name in REGIME_FEATURES}
    for part in split.segments:
        fitted = fit_regimes(returns, volatility, part.train, seed=seed)
        mine = owner == part.number
        out["regime_vol"][mine] = fitted.vol[mine]
        out["regime_gmm"][mine] = fitted.gmm[mine]
        out["regime_gmm_p"][mine] = fitted.gmm_p[mine]
    return out


def identity_of(prepared: PreparedData, features: list[str]) -> dict[str, Any]:
    """The model identity of a feature subset (what its fingerprint hashes)."""
    return model_identity(**_identity_args(prepared, features))


def fingerprint_of(prepared: PreparedData, features: list[str]) -> str:
    """The model fingerprint of a feature subset."""
    return model_fingerprint(**_identity_args(prepared, features))


def _identity_args(prepared: PreparedData, features: list[str]) -> dict[str, Any]:
    c = prepared.config
    return {"features": features, "algorithm": c.algorithm,
            "hyperparameters": c.hyperparameters, "symbol": c.symbol,
            "reference_symbols": c.reference_symbols, "timeframe": c.timeframe,
            "target": {"kind": c.target, "horizon": c.horizon}, "spans": prepared.spans,
            "seed": c.seed}


@dataclass(frozen=True)
class ModelResult:
    """A trained or reused model: its fingerprint, stored metadata and whether it was
    reused (not retrained)."""

    fingerprint: str
    meta: dict[str, Any]
    reused: bool


@dataclass
class _SegmentFit:
    """One segment's fitted model and the training-span statistics its signals use."""

    model: TrainedModel
    mean: np.ndarray   # feature means of the training rows (outlier z-scores)
    std: np.ndarray
    centre: float      # mean and std of the training-span predictions
    scale: float


def _fit_segment(prepared: PreparedData, x: np.ndarray, names: list[str], number: int
                 ) -> _SegmentFit:
    """Fit segment ``number``'s model on its training rows, importance on its validation."""
    c = prepared.config
    part = prepared.split.segments[number]
    y = prepared.target
    trained = fit_model(c.algorithm, c.hyperparameters, names, x[part.train], y[part.train],
                        x[part.validation], y[part.validation], seed=c.seed,
                        importance_repeats=c.importance_repeats,
                        importance_rows=c.importance_rows, n_jobs=c.n_jobs)
    mean = x[part.train].mean(axis=0)
    std = x[part.train].std(axis=0)
    std[std == 0] = 1.0
    return _SegmentFit(trained, mean, std, trained.info["prediction_mean_train"],
                       trained.info["prediction_std_train"])


def _signal_arrays(prepared: PreparedData, fits: list[_SegmentFit], x: np.ndarray,
                   standardise: bool) -> dict[str, np.ndarray]:
    """The validation and test rows of every segment with the predictions and outlier
    scores of that segment's own model (standardised by its own training predictions when
    ``standardise``; raw for a single segment, whose centre and scale go in the meta)."""
    rows_parts, span_parts, prediction_parts, outlier_parts = [], [], [], []
    for part, fit in zip(prepared.split.segments, fits, strict=True):
        rows = np.concatenate([part.validation, part.test])
        prediction = fit.model.predict(x[rows])
        if standardise:
            prediction = (prediction - fit.centre) / (fit.scale if fit.scale > 0 else 1.0)
        rows_parts.append(rows)
        span_parts.append(np.concatenate([np.full(len(part.validation), SPAN_VALIDATION),
                                          np.full(len(part.test), SPAN_TEST)]))
        prediction_parts.append(prediction)
        outlier_parts.append(np.abs((x[rows] - fit.mean) / fit.std).max(axis=1))
    rows = np.concatenate(rows_parts)
    order = np.argsort(rows, kind="stable")
    rows = rows[order]
    span = np.concatenate(span_parts)[order]
    bars = prepared.bars
    return {"bar": rows, "span": span.astype(np.int8),
            "piece": prepared.segment[rows] * 4 + span,
            "ts": bars["ts"].array.asi8[rows],
            **{k: bars[k].to_numpy(dtype=np.float64)[rows]
               for k in ("open", "high", "low", "close", "volume")},
            "prediction": np.concatenate(prediction_parts)[order],
            "outlier": np.concatenate(outlier_parts)[order],
            **{k: prepared.features[k].to_numpy()[rows] for k in REGIME_FEATURES}}


def _segment_meta(prepared: PreparedData, fit: _SegmentFit, number: int) -> dict[str, Any]:
    part = prepared.split.segments[number]
    ts = prepared.bars["ts"]

    def when(row: int) -> str:
        return ts.iloc[int(row)].isoformat()

    return {"segment": number, "train_rows": len(part.train),
            "validation_rows": len(part.validation), "test_rows": len(part.test),
            "train_start": when(part.train[0]), "train_end": when(part.train[-1]),
            "validation_start": when(part.validation[0]),
            "test_start": when(part.test[0]), "test_end": when(part.test[-1]),
            "prediction_centre": fit.centre, "prediction_scale": fit.scale,
            "importance": fit.model.importance, "training": fit.model.info}


def train_model(prepared: PreparedData, features: list[str], *,
                home: Path | str | None = None, parent: str | None = None,
                generation: int = 0) -> ModelResult:
    """Train the model of ``features`` or reuse the stored one with the same fingerprint.

    Each segment of the split gets its own model, fitted on that segment's training rows
    only; its validation and test rows are predicted by it. With one segment the stored
    estimator is that model and the meta carries its prediction centre and scale; with more
    it is a ``SegmentedModel``, the stored predictions are standardised per segment (meta
    centre 0, scale 1) and ``meta["segments"]`` describes each segment's fit. Pruning reads
    ``meta["importance"]``: the first segment's, measured on a validation span that ends
    before every test block, so the feature subsets of later generations never depend on a
    row at or after any segment's test block.
    """
    unknown = sorted(set(features) - set(prepared.feature_names))
    if unknown:
        raise ConfigError(f"unknown feature(s) {', '.join(unknown)}; known: "
                          f"{', '.join(prepared.feature_names)}")
    if len(features) == 0:
        raise ConfigError("a model needs at least one feature")
    names = sorted(features)
    fingerprint = fingerprint_of(prepared, names)
    if model_exists(fingerprint, home):
        return ModelResult(fingerprint, load_meta(fingerprint, home), True)
    started = time.perf_counter()
    x = prepared.features[names].to_numpy(dtype=np.float64)
    fits = [_fit_segment(prepared, x, names, part.number) for part in prepared.split.segments]
    single = len(fits) == 1
    signals = _signal_arrays(prepared, fits, x, standardise=not single)
    first = fits[0]
    if single:
        estimator: Any = first.model.estimator
        centre, scale = first.centre, first.scale
    else:
        estimator = SegmentedModel([f.model.estimator for f in fits],
                                   [f.centre for f in fits], [f.scale for f in fits])
        centre, scale = 0.0, 1.0
    meta = {"fingerprint": fingerprint, "identity": identity_of(prepared, names),
            "features": names, "importance": first.model.importance,
            "training": first.model.info, "prediction_scale": scale,
            "prediction_centre": centre, "parent": parent,
            "generation": generation, "split": prepared.split.describe(),
            "segments": [_segment_meta(prepared, fit, n) for n, fit in enumerate(fits)],
            "seconds": round(time.perf_counter() - started, 3),
            "created_at": pd.Timestamp.now(tz="UTC").isoformat()}
    save_model(fingerprint, estimator, meta, signals, home)
    return ModelResult(fingerprint, meta, False)
