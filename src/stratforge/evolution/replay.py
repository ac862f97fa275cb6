"""A stored model's signal over its whole series, for other workflows (the agent loop).

The model's settings are rebuilt from its stored identity, the data prepared again and the
fingerprint recomputed: if the bars changed since the model was trained, the fingerprints
differ and the replay is refused. Signal bars are those where ``(prediction - centre) /
scale`` is beyond the threshold, side = its sign. ``test_start`` is the first bar of the
model's test span: bars before it were used to fit, scale, select or prune the model, so a
caller that wants honest results only uses bars from ``test_start`` on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stratforge.data.load import load_bars
from stratforge.errors import DataError
from stratforge.evolution.config import EvolutionConfig, make_evolution_config
from stratforge.evolution.fingerprint import check_fingerprint
from stratforge.evolution.modelstore import load_estimator, load_meta
from stratforge.evolution.pipeline import fingerprint_of, prepare_data


@dataclass(frozen=True)
class ModelSignal:
    """Bars of the model's series, its signal bars (positions) and sides, and the first bar
    of its test span."""

    bars: pd.DataFrame
    entries: np.ndarray
    sides: np.ndarray
    test_start: pd.Timestamp
    symbol: str
    timeframe: str


def config_from_identity(identity: dict[str, Any]) -> EvolutionConfig:
    """The settings that reproduce a model's data, split and training."""
    spans = identity["spans"]
    return make_evolution_config(
        symbol=identity["symbol"], timeframe=identity["timeframe"],
        reference_symbols=list(identity["reference_symbols"]),
        algorithm=identity["algorithm"], hyperparameters=dict(identity["hyperparameters"]),
        target=identity["target"]["kind"], horizon=int(identity["target"]["horizon"]),
        train_fraction=spans["train_fraction"],
        validation_fraction=spans["validation_fraction"], purge_bars=int(spans["gap"]),
        segments=int(spans["segments"]), start=spans.get("start"), end=spans.get("end"),
        seed=int(identity["seed"]))


def model_signal(fingerprint: str, *, threshold: float, home: Path | str | None = None,
                 long_only: bool = False) -> ModelSignal:
    """See the module docstring; DataError when the data no longer matches the model."""
    check_fingerprint(fingerprint)
    meta = load_meta(fingerprint, home)
    prepared = prepare_data(config_from_identity(meta["identity"]), home)
    features = list(meta["features"])
    if fingerprint_of(prepared, features) != fingerprint:
        raise DataError(f"model {fingerprint[:16]}...: the {prepared.config.symbol} data "
                        "changed since it was trained (its fingerprint no longer matches); "
                        "train a new model with `stratforge evolve`")
    x = prepared.features[features].to_numpy(dtype=np.float64)
    finite = np.flatnonzero(np.isfinite(x).all(axis=1))
    z = np.zeros(len(x))
    scale = float(meta["prediction_scale"]) or 1.0
    z[finite] = (load_estimator(fingerprint, home).predict(x[finite])
                 - float(meta["prediction_centre"])) / scale
    side = np.where(z > threshold, 1, np.where(z < -threshold, -1, 0))
    if long_only:
        side[side < 0] = 0
    entries = np.flatnonzero(side != 0).astype(np.int64)
    # a segmented model predicts with its latest segment's model: only the bars of that
    # segment's test block are honest for it
    last_test = prepared.split.segments[-1].test if prepared.split.segments else \
        prepared.split.test
    test_start = prepared.bars["ts"].iloc[int(last_test[0])]
    return ModelSignal(prepared.bars, entries, side[entries].astype(np.int64), test_start,
                       prepared.config.symbol, prepared.config.timeframe)


def span_signal(fingerprint: str, start: pd.Timestamp, end: pd.Timestamp, *,
                threshold: float, home: Path | str | None = None) -> ModelSignal:
    """A stored model's signal on ``[start, end)``, a span that starts at or after the end
    of the model's own data span (``identity.spans.end``): the bars a model was trained,
    validated and tested on never enter. The features are built on the series from the
    model's first bar on (every feature uses past bars only, so its rows inside the model's
    span are the ones it was trained on). Refused (DataError) when the bars changed since
    the model was trained, and (ConfigError) for a model without an end, a span inside it,
    or a model that uses the regime features (fitted on its own span, not replayable).
    """
    from stratforge.errors import ConfigError
    from stratforge.evolution.featureset import build_features
    from stratforge.evolution.regimes import REGIME_FEATURES
    from stratforge.features.cache import atlas_fingerprint, load_states
    from stratforge.instruments import get_instrument

    check_fingerprint(fingerprint)
    meta = load_meta(fingerprint, home)
    identity = meta["identity"]
    config = config_from_identity(identity)
    features = list(meta["features"])
    if set(features) & set(REGIME_FEATURES):
        raise ConfigError(f"model {fingerprint[:16]}... uses regime features, which are "
                          "fitted on its own span; it can only be replayed inside it")
    if not config.end:
        raise ConfigError(f"model {fingerprint[:16]}... was trained on the whole series; "
                          "there is no later span to replay it on")
    own_end = pd.Timestamp(config.end, tz="UTC")
    if start < own_end:
        raise ConfigError(f"span [{start.isoformat()}, {end.isoformat()}) starts before "
                          f"{own_end.isoformat()}, the end of model {fingerprint[:16]}...'s "
                          "data span; choose a span from there on")
    data = identity["spans"].get("data") or {}
    for symbol, key in data.items():
        if atlas_fingerprint(symbol, config.timeframe, home=home) != key:
            raise DataError(f"model {fingerprint[:16]}...: the {symbol} data changed since "
                            "it was trained; train a new model")
    begin = pd.Timestamp(config.start, tz="UTC") if config.start else None

    def series(symbol: str) -> tuple[pd.DataFrame, np.ndarray]:
        bars = load_bars(symbol, config.timeframe, home=home)
        keep = (bars["ts"] < end) if begin is None else (bars["ts"] >= begin) & (
            bars["ts"] < end)
        return bars, keep.to_numpy()

    bars, keep = series(config.symbol)
    states = load_states(config.symbol, config.timeframe, home=home)[keep].reset_index(
        drop=True)
    bars = bars[keep].reset_index(drop=True)
    references = {}
    for symbol in config.reference_symbols:
        ref, ref_keep = series(symbol)
        references[symbol] = ref[ref_keep].reset_index(drop=True)
    frame = build_features(bars, states, references,
                           tick_size=get_instrument(config.symbol, home).tick_size)
    inside = np.flatnonzero((bars["ts"] >= start).to_numpy())
    if len(inside) == 0:
        raise DataError(f"{config.symbol} has no {config.timeframe} bars in "
                        f"[{start.isoformat()}, {end.isoformat()})")
    x = frame[features].to_numpy(dtype=np.float64)[inside]
    finite = np.isfinite(x).all(axis=1)
    z = np.zeros(len(x))
    scale = float(meta["prediction_scale"]) or 1.0
    if finite.any():
        z[finite] = (load_estimator(fingerprint, home).predict(x[finite])
                     - float(meta["prediction_centre"])) / scale
    side = np.where(z > threshold, 1, np.where(z < -threshold, -1, 0))
    entries = np.flatnonzero(side != 0).astype(np.int64)
    span_bars = bars.iloc[inside].reset_index(drop=True)
    return ModelSignal(span_bars, entries, side[entries].astype(np.int64),
                       span_bars["ts"].iloc[0], config.symbol, config.timeframe)
