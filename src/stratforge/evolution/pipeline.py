"""Prepare a run's data once, then train (or reuse) models on feature subsets of it.

``prepare_data`` loads the bars (building the demo market for MNQ when there are none),
the cached field-engine states, the reference symbols, builds every candidate feature and the
target, splits the usable rows chronologically and fits the regimes on the training span.
``train_model`` fingerprints a feature subset and, unless that model is stored already,
fits it on the training span, measures permutation importance on the validation span and
stores it with the arrays its simulations read (validation and test spans only).
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
from stratforge.evolution.fingerprint import model_fingerprint, model_identity
from stratforge.evolution.modelstore import load_meta, model_exists, save_model
from stratforge.evolution.regimes import REGIME_FEATURES, RETURN_FEATURE, VOL_FEATURE, fit_regimes
from stratforge.evolution.simulation import SPAN_TEST, SPAN_VALIDATION
from stratforge.evolution.training import fit_model
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
    segment: np.ndarray   # segment number of every bar (-1 outside the usable rows)
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
    progress("data", 2, 3, "fitting regimes on the training span")
    regimes = fit_regimes(features[RETURN_FEATURE].to_numpy(),
                          features[VOL_FEATURE].to_numpy(), split.train, seed=config.seed)
    features["regime_vol"] = regimes.vol.astype(np.float64)
    features["regime_gmm"] = regimes.gmm.astype(np.float64)
    features["regime_gmm_p"] = regimes.gmm_p
    segment = np.full(len(bars), -1, dtype=np.int64)
    for number, block in enumerate(np.array_split(usable, config.segments)):
        segment[block] = number
    ts = bars["ts"]
    spans = {"train_fraction": config.train_fraction,
             "validation_fraction": config.validation_fraction, "gap": split.gap,
             "segments": config.segments, "start": config.start, "end": config.end,
             "first_bar": ts.iloc[int(usable[0])].isoformat(),
             "last_bar": ts.iloc[int(usable[-1])].isoformat(), "usable_rows": len(usable),
             "data": data_keys}
    progress("data", 3, 3, f"{len(features.columns)} candidate features; split "
                           f"{split.describe()}")
    return PreparedData(config, bars, features, target, split, segment, spans)


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


def _signal_arrays(prepared: PreparedData, model, features: list[str], mean: np.ndarray,
                   std: np.ndarray) -> dict[str, np.ndarray]:
    split = prepared.split
    rows = np.concatenate([split.validation, split.test])
    span = np.concatenate([np.full(len(split.validation), SPAN_VALIDATION),
                           np.full(len(split.test), SPAN_TEST)])
    order = np.argsort(rows, kind="stable")
    rows, span = rows[order], span[order]
    x = prepared.features[features].to_numpy(dtype=np.float64)[rows]
    z = np.abs((x - mean) / std)
    bars = prepared.bars
    return {"bar": rows, "span": span.astype(np.int8),
            "piece": prepared.segment[rows] * 4 + span,
            "ts": bars["ts"].array.asi8[rows],
            **{k: bars[k].to_numpy(dtype=np.float64)[rows]
               for k in ("open", "high", "low", "close", "volume")},
            "prediction": model.predict(x), "outlier": z.max(axis=1),
            **{k: prepared.features[k].to_numpy()[rows] for k in REGIME_FEATURES}}


def train_model(prepared: PreparedData, features: list[str], *,
                home: Path | str | None = None, parent: str | None = None,
                generation: int = 0) -> ModelResult:
    """Train the model of ``features`` or reuse the stored one with the same fingerprint."""
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
    c = prepared.config
    started = time.perf_counter()
    x = prepared.features[names].to_numpy(dtype=np.float64)
    y = prepared.target
    train, validation = prepared.split.train, prepared.split.validation
    trained = fit_model(c.algorithm, c.hyperparameters, names, x[train], y[train],
                        x[validation], y[validation], seed=c.seed,
                        importance_repeats=c.importance_repeats,
                        importance_rows=c.importance_rows, n_jobs=c.n_jobs)
    mean = x[train].mean(axis=0)
    std = x[train].std(axis=0)
    std[std == 0] = 1.0
    signals = _signal_arrays(prepared, trained, names, mean, std)
    meta = {"fingerprint": fingerprint, "identity": identity_of(prepared, names),
            "features": names, "importance": trained.importance, "training": trained.info,
            "prediction_scale": trained.info["prediction_std_train"],
            "prediction_centre": trained.info["prediction_mean_train"], "parent": parent,
            "generation": generation, "split": prepared.split.describe(),
            "seconds": round(time.perf_counter() - started, 3),
            "created_at": pd.Timestamp.now(tz="UTC").isoformat()}
    save_model(fingerprint, trained.estimator, meta, signals, home)
    return ModelResult(fingerprint, meta, False)
