"""Model designs: a design that trains an evolution model, gates it and replays it.

Training (``train_model_design``): the spec's ``model`` section becomes an evolution config
(``model_config``) whose data span is the spec's training span, split into the evolution
pipeline's training (``TRAIN_FRACTION``), validation (``VALIDATION_FRACTION``) and test rows
(one segment). ``evolution.pipeline.prepare_data`` and ``train_model`` fit the model, or
reuse the stored one with the same model fingerprint (which does not depend on the exit
region or the signal threshold, so designs that differ only there share one fit). Then, on
the validation rows (never used to fit): the directional accuracy of the prediction (its
sign relative to the training-span mean prediction against the sign of the target, over rows
with a non-zero target), and the exit parameters chosen by the same sweep as a template
design (``training.optimise_exits``) on the signal bars whose standardised prediction is
beyond ``signal.match_threshold``; the chosen set's metrics are the training metrics, its SQN
the ``validation_sqn``.

Backtest (``backtest_model_design``): ``evolution.replay.span_signal`` replays the stored
model on the spec's backtest span (after the model's whole data span), and the trained exit
parameters are simulated there with the spec's cost model.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stratforge.evolution.config import EvolutionConfig, make_evolution_config
from stratforge.ops.agent.backtesting import trade_metrics
from stratforge.ops.agent.signals import SpanSignals
from stratforge.ops.agent.spec import StrategySpec
from stratforge.ops.agent.training import optimise_exits
from stratforge.progress import ProgressCallback, no_progress

TRAIN_FRACTION = 0.6
VALIDATION_FRACTION = 0.3
"""Shares of the training span's usable rows the model is fitted and validated on (the
evolution test rows, the last 10 %, are left unused: the backtest span is the test)."""
MODEL_SEED = 7
IMPORTANCE_ROWS = 2_000
FEATURE_SETS: dict[str, tuple[str, ...]] = {
    "momentum": ("logret_1", "logret_5", "logret_15", "macd_hist_12_26", "rsi_14"),
    "reversion": ("bollinger_20", "close_location", "ret_z_20", "rsi_7", "vwap_dist_60"),
    "volatility": ("atr_ratio_14_100", "logret_1", "range_z_60", "realised_vol_20",
                   "vol_ratio_20_240"),
}
"""Named feature sets the designer offers (evolution feature names; no regime features)."""


def _naive(stamp: Any) -> str:
    return pd.Timestamp(stamp).tz_convert("UTC").tz_localize(None).isoformat()


def model_config(spec: StrategySpec) -> EvolutionConfig:
    """The evolution settings that train the spec's model on its training span."""
    if spec.model is None:
        raise ValueError("model_config needs a spec with a model section")
    m = spec.model
    return make_evolution_config(
        symbol=spec.symbol, timeframe=spec.signal.timeframe,
        reference_symbols=list(m.reference_symbols), algorithm=m.algorithm,
        hyperparameters=dict(m.hyperparameters), horizon=m.horizon,
        train_fraction=TRAIN_FRACTION, validation_fraction=VALIDATION_FRACTION,
        start=_naive(spec.training.start), end=_naive(spec.training.end),
        importance_repeats=1, importance_rows=IMPORTANCE_ROWS, seed=MODEL_SEED)


def directional_accuracy(prediction: np.ndarray, target: np.ndarray, centre: float
                         ) -> float | None:
    """Share of rows with a non-zero finite target where ``sign(prediction - centre)``
    equals ``sign(target)`` (None without such rows)."""
    keep = np.isfinite(target) & (target != 0) & np.isfinite(prediction)
    if not keep.any():
        return None
    return float(np.mean(np.sign(prediction[keep] - centre) == np.sign(target[keep])))


def train_model_design(spec: StrategySpec, *, seed: int, home: Path | str | None = None,
                       progress: ProgressCallback = no_progress) -> dict[str, Any]:
    """Train (or reuse) the spec's model and choose its exits (see the module docstring).

    Returns the chosen set's validation metrics (``backtesting.METRIC_KEYS``), ``params``
    and the sweep's fields, plus ``model_id``, ``model_reused``, ``fit_seconds``,
    ``directional_accuracy``, ``validation_sqn``, ``validation_corr``, ``features``,
    ``rows`` and ``span`` (the validation rows' first and last bar).
    """
    from stratforge.evolution.modelstore import load_estimator
    from stratforge.evolution.pipeline import prepare_data, train_model

    assert spec.model is not None
    prepared = prepare_data(model_config(spec), home, progress)
    progress("fit", 0, 1, f"{spec.model.algorithm} on {len(spec.model.features)} features")
    result = train_model(prepared, list(spec.model.features), home=home)
    progress("fit", 1, 1, "reused the stored model" if result.reused else "fitted")
    names = list(result.meta["features"])
    part = prepared.split.segments[0]
    rows = part.validation
    first, last = int(rows[0]), int(rows[-1])
    x = prepared.features[names].to_numpy(dtype=np.float64)[first:last + 1]
    finite = np.isfinite(x).all(axis=1)
    prediction = np.full(len(x), np.nan)
    prediction[finite] = load_estimator(result.fingerprint, home).predict(x[finite])
    centre = float(result.meta["prediction_centre"])
    scale = float(result.meta["prediction_scale"]) or 1.0
    offsets = rows - first
    accuracy = directional_accuracy(prediction[offsets], prepared.target[rows], centre)
    z = np.where(finite, (prediction - centre) / scale, 0.0)
    threshold = spec.signal.match_threshold
    side = np.where(z > threshold, 1, np.where(z < -threshold, -1, 0))
    entries = np.flatnonzero(side != 0).astype(np.int64)
    bars = prepared.bars.iloc[first:last + 1].reset_index(drop=True)
    signals = SpanSignals(bars, entries, side[entries].astype(np.int64))
    chosen = optimise_exits(spec, signals, seed=seed, home=home, progress=progress)
    return {**chosen, "model_id": result.fingerprint, "model_reused": result.reused,
            "fit_seconds": None if result.reused else result.meta.get("seconds"),
            "directional_accuracy": accuracy, "validation_sqn": chosen["sqn"],
            "validation_corr": result.meta["training"].get("validation_corr"),
            "features": names,
            "rows": {"train": len(part.train), "validation": len(rows)},
            "span": [bars["ts"].iloc[0].isoformat(), bars["ts"].iloc[-1].isoformat()]}


def backtest_model_design(spec: StrategySpec, model_id: str, params: Mapping[str, Any], *,
                          home: Path | str | None = None,
                          progress: ProgressCallback = no_progress) -> dict[str, Any]:
    """Replay model ``model_id`` on the backtest span and simulate ``params`` there: the
    ``METRIC_KEYS`` metrics with ``params``, ``model_id``, ``signals`` and ``span``."""
    from stratforge.evolution.replay import span_signal

    progress("signals", 0, 2, f"replaying model {model_id[:16]} on the backtest span")
    start, end = pd.Timestamp(spec.backtest.start), pd.Timestamp(spec.backtest.end)
    replay = span_signal(model_id, start, end, threshold=spec.signal.match_threshold,
                         home=home)
    signals = SpanSignals(replay.bars, replay.entries, replay.sides)
    progress("simulate", 1, 2, f"{len(signals.entries)} signals")
    _, metrics = trade_metrics(spec, signals, params, home=home)
    progress("simulate", 2, 2, f"{metrics['trades']} trades")
    return {**metrics, "params": dict(params), "model_id": model_id,
            "signals": len(signals.entries),
            "span": [spec.backtest.start.isoformat(), spec.backtest.end.isoformat()]}
