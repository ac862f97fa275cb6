"""Model signals in a lookahead audit: a stored evolution model replayed on each copy.

A ``ModelProbe`` holds what the agent's replay (``evolution.replay``) needs to turn bars into
a model's signal: the model's timeframe, its features, the fitted estimator and the
prediction's centre and scale. ``scores(built)`` gives the model's standardised prediction
``(prediction - centre) / scale`` on every bar whose features are all finite (NaN elsewhere),
from the frame the evolution feature builder made of the same bars; the signal (side = sign
where the score passes the threshold) is a function of that score, so a score that changes at
or before a cut is a signal that can change there.

Predictions are made in blocks of a fixed number of rows (the last one padded with its own
last row), so the real span and a truncated copy call the estimator with the same shapes and
a row's value never depends on how many rows came after it (a BLAS kernel may sum in another
order for another shape).

Not replayed: models that use the regime features (fitted on the model's own span, as the
replay refuses them) and models with reference symbols (the audit perturbs one symbol).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stratforge.errors import ConfigError, DataError
from stratforge.evolution.fingerprint import FINGERPRINT_PATTERN
from stratforge.evolution.modelstore import load_estimator, load_meta, models_root
from stratforge.evolution.regimes import REGIME_FEATURES

FeatureBuilder = Callable[..., pd.DataFrame]
"""``builder(bars, states, tick_size=...) -> DataFrame`` aligned with the bars (the evolution
factory's ``build_features`` or a user's own)."""
PREDICT_BLOCK = 256
"""Rows per estimator call (see the module docstring)."""


@dataclass(frozen=True)
class ModelProbe:
    """One stored model as the audit replays it (see the module docstring)."""

    model_id: str
    symbol: str
    timeframe: str
    features: tuple[str, ...]
    estimator: Any
    centre: float
    scale: float

    @property
    def name(self) -> str:
        """The model's name in findings: the first 16 hex digits of its fingerprint."""
        return self.model_id[:16]

    def scores(self, built: pd.DataFrame) -> np.ndarray:
        """The standardised prediction on every bar of ``built`` (NaN where a feature is
        not finite); ConfigError when the builder did not make a feature the model uses."""
        missing = [name for name in self.features if name not in built.columns]
        if missing:
            raise ConfigError(f"model {self.name} uses feature(s) {', '.join(missing)} that "
                              "the feature builder does not make; audit it with the builder "
                              "it was trained with (--builder)")
        x = built[list(self.features)].to_numpy(dtype=np.float64)
        out = np.full(len(x), np.nan)
        finite = np.flatnonzero(np.isfinite(x).all(axis=1))
        if len(finite):
            out[finite] = (_predict_blocks(self.estimator, x[finite]) - self.centre) / \
                self.scale
        return out


def _predict_blocks(estimator: Any, x: np.ndarray) -> np.ndarray:
    """``estimator.predict`` in blocks of ``PREDICT_BLOCK`` rows, the last padded."""
    out = np.empty(len(x))
    for start in range(0, len(x), PREDICT_BLOCK):
        block = x[start:start + PREDICT_BLOCK]
        rows = len(block)
        if rows < PREDICT_BLOCK:
            block = np.vstack([block, np.repeat(block[-1:], PREDICT_BLOCK - rows, axis=0)])
        out[start:start + rows] = np.asarray(estimator.predict(block),
                                             dtype=np.float64)[:rows]
    return out


def resolve_model_id(given: str, home: Path | str | None = None) -> str:
    """The full fingerprint of a stored model named by it or by a unique prefix of at
    least 8 hex digits; ConfigError naming what to give otherwise."""
    text = given.strip().lower()
    if FINGERPRINT_PATTERN.fullmatch(text):
        return text
    root = models_root(home)
    if len(text) < 8 or any(c not in "0123456789abcdef" for c in text):
        raise ConfigError(f"--model {given!r} is not a model id; give its fingerprint (64 hex "
                          "digits) or a unique prefix of at least 8 (see `stratforge evolve "
                          "models` or the dashboard's evolution page)")
    found = sorted(p.name for p in root.glob(f"{text}*")
                   if p.is_dir() and FINGERPRINT_PATTERN.fullmatch(p.name)) \
        if root.is_dir() else []
    if len(found) != 1:
        what = "no stored model" if not found else f"{len(found)} stored models"
        raise ConfigError(f"--model {given}: {what} in {root} start with it; give more digits")
    return found[0]


def load_model_probe(model_id: str, home: Path | str | None = None) -> ModelProbe:
    """The stored model ``model_id`` (a fingerprint or unique prefix) as a probe;
    ConfigError for a model the audit cannot replay (see the module docstring)."""
    fingerprint = resolve_model_id(model_id, home)
    try:
        meta = load_meta(fingerprint, home)
    except DataError as exc:
        raise ConfigError(str(exc)) from exc
    identity = meta.get("identity") or {}
    features = tuple(str(name) for name in meta.get("features") or ())
    short = fingerprint[:16]
    if set(features) & set(REGIME_FEATURES):
        raise ConfigError(f"model {short} uses regime features, fitted on its own span; the "
                          "audit cannot replay it on other spans")
    if identity.get("reference_symbols"):
        raise ConfigError(f"model {short} uses reference symbols "
                          f"({', '.join(identity['reference_symbols'])}); the audit perturbs "
                          "one symbol and cannot replay it")
    if not features:
        raise ConfigError(f"model {short} lists no features in its meta.json")
    scale = float(meta.get("prediction_scale") or 0.0) or 1.0
    return ModelProbe(fingerprint, str(identity.get("symbol", "")).upper(),
                      str(identity.get("timeframe", "")), features,
                      load_estimator(fingerprint, home), float(meta.get("prediction_centre", 0.0)),
                      scale)


def stored_models(symbol: str, home: Path | str | None = None
                  ) -> tuple[list[ModelProbe], list[str]]:
    """The stored models of ``symbol``: (probes of those the audit can replay, one line per
    model it cannot, saying why)."""
    root = models_root(home)
    ok, skipped = [], []
    if not root.is_dir():
        return ok, skipped
    for folder in sorted(root.iterdir()):
        if not (folder.is_dir() and FINGERPRINT_PATTERN.fullmatch(folder.name)):
            continue
        try:
            meta = load_meta(folder.name, home)
        except DataError:
            continue  # a folder still being written or damaged: not a stored model
        if str((meta.get("identity") or {}).get("symbol", "")).upper() != symbol.upper():
            continue
        try:
            ok.append(load_model_probe(folder.name, home))
        except ConfigError as exc:
            skipped.append(str(exc))
    return ok, skipped
