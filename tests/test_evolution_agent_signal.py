"""The agent loop's ``kind: model`` signal replays an evolution model: the same signal bars
as the model's own predictions, and no span that starts before the model's test span."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stratforge.data.demo import synthesize_into_store
from stratforge.errors import ConfigError
from stratforge.evolution.config import make_evolution_config
from stratforge.evolution.modelstore import load_estimator
from stratforge.evolution.pipeline import prepare_data, train_model
from stratforge.ops.agent.signals import span_signals
from stratforge.ops.agent.spec import parse_spec


def _spec(model: str, start: pd.Timestamp, end: pd.Timestamp, threshold: float = 1.0):
    return parse_spec({
        "symbol": "MNQ", "timeframes": ["1m"],
        "signal": {"kind": "model", "model_id": model, "timeframe": "1m",
                   "match_threshold": threshold},
        "region": {"name": "tight", "bounds": {"target_ticks": [30, 45],
                                               "stop_ticks": [10, 17]}},
        "training": {"start": start.isoformat(), "end": (start + (end - start) / 2).isoformat()},
        "backtest": {"start": (start + (end - start) / 2).isoformat(), "end": end.isoformat()}})


def test_model_signals_replay_the_model_out_of_sample_only(home):
    synthesize_into_store("MNQ", days=8, seed=6, kind="planted", resolution="1m",
                          replace=True, home=home)
    config = make_evolution_config(algorithm="random_forest",
                                   hyperparameters={"n_estimators": 5}, horizon=3,
                                   importance_rows=1000, importance_repeats=1)
    prepared = prepare_data(config, home)
    model = train_model(prepared, prepared.feature_names[:20], home=home)
    ts = prepared.bars["ts"]
    test_start = ts.iloc[int(prepared.split.test[0])]
    end = ts.iloc[-1] + pd.Timedelta(minutes=1)
    spec = _spec(model.fingerprint, test_start, end)
    got = span_signals(spec, spec.training.start, spec.training.end, home=home)
    # independent: the stored estimator on the span's own feature rows
    inside = ((ts >= test_start) & (ts < pd.Timestamp(spec.training.end))).to_numpy()
    rows = np.flatnonzero(inside)
    x = prepared.features[model.meta["features"]].to_numpy()[rows]
    z = (load_estimator(model.fingerprint, home).predict(x) - model.meta["prediction_centre"]
         ) / model.meta["prediction_scale"]
    expected = np.flatnonzero(np.abs(z) > 1.0)
    assert len(got.bars) == len(rows) and len(expected) > 0
    assert np.array_equal(got.entries, expected)
    assert np.array_equal(got.sides, np.sign(z[expected]).astype(np.int64))
    early = _spec(model.fingerprint, ts.iloc[0], end)
    with pytest.raises(ConfigError, match="test span"):
        span_signals(early, early.training.start, early.training.end, home=home)
    wrong = _spec("T" * 64, test_start, end)
    with pytest.raises(ConfigError, match="fingerprint"):
        span_signals(wrong, wrong.training.start, wrong.training.end, home=home)
