"""Entries of a spec's signal on one span: the bars of the span, the signal bars and sides.

A template signal matches the spec's template on the spec's timeframe with
``discovery.matching.match_library`` (feature vectors of the whole series, so context from
higher timeframes comes from completed bars only), limited to pattern bars when
``match_bars`` is ``patterns``, then keeps the matches inside ``[start, end)``.

A model signal replays an evolution model (``evolution.replay``; ``signal.model_id`` = its
fingerprint, ``signal.match_threshold`` = the threshold in standard deviations of its
training-span predictions) and only allows spans from the first bar of the model's test
span on, since the bars before it fitted, scaled or pruned the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from stratforge.data.load import load_bars
from stratforge.discovery.library import TemplateLibrary
from stratforge.discovery.matching import library_hierarchy, match_library, timeframe_vectors
from stratforge.errors import ConfigError, DataError
from stratforge.features.cache import read_states
from stratforge.ops.agent.library import find_library
from stratforge.ops.agent.spec import StrategySpec


@dataclass(frozen=True)
class SpanSignals:
    """The bars of a span and the signal bars in them (positions into ``bars``) with sides."""

    bars: pd.DataFrame
    entries: np.ndarray
    sides: np.ndarray


def span_signals(spec: StrategySpec, start: datetime, end: datetime, *,
                 home: Path | str | None = None) -> SpanSignals:
    """The spec's signals on ``[start, end)``; DataError when the span has no bars."""
    signal = spec.signal
    if signal.kind == "model":
        return _model_signals(spec, start, end, home)
    tf = signal.timeframe
    bars = load_bars(spec.symbol, tf, pd.Timestamp(start), pd.Timestamp(end), home=home)
    if len(bars) == 0:
        raise DataError(f"{spec.symbol} has no {tf} bars in [{start.isoformat()}, "
                        f"{end.isoformat()}); choose spans inside the data")
    library = find_library(spec.symbol, signal.library or "", home=home)
    try:
        template = library.get(signal.template_id or "")
    except KeyError as exc:
        raise ConfigError(f"signal.template_id: {exc.args[0]}") from None
    single = TemplateLibrary([template], library.scalers, library.metadata)
    vectors = timeframe_vectors(spec.symbol, tf, library_hierarchy(library), home=home)
    eligible = None
    if signal.match_bars == "patterns":
        flags = read_states(spec.symbol, tf, columns=("cascade_detected",
                                                      "structure_confirmed"), home=home)
        eligible = (flags["cascade_detected"].to_numpy(dtype=bool)
                    | flags["structure_confirmed"].to_numpy(dtype=bool))
    found = match_library(single, vectors, tf, threshold=signal.match_threshold,
                          eligible=eligible)
    stamps = vectors["ts"].array.asi8[found["position"].to_numpy()]
    bar_ts = bars["ts"].array.asi8
    at = np.searchsorted(bar_ts, stamps)
    inside = at < len(bar_ts)
    inside[inside] = bar_ts[at[inside]] == stamps[inside]
    return SpanSignals(bars, at[inside].astype(np.int64),
                       found["side"].to_numpy(dtype=np.int64)[inside])


def _model_signals(spec: StrategySpec, start: datetime, end: datetime,
                   home: Path | str | None) -> SpanSignals:
    from stratforge.evolution.fingerprint import FINGERPRINT_PATTERN
    from stratforge.evolution.replay import model_signal

    signal = spec.signal
    model = signal.model_id or ""
    if FINGERPRINT_PATTERN.fullmatch(model) is None:
        raise ConfigError(f"signal.model_id must be an evolution model fingerprint (64 hex "
                          f"digits, see `stratforge evolution promoted`), got {model!r}")
    replay = model_signal(model, threshold=signal.match_threshold, home=home)
    if replay.symbol != str(spec.symbol).upper() or replay.timeframe != str(signal.timeframe):
        raise ConfigError(f"model {model[:16]}... models {replay.symbol} {replay.timeframe}, "
                          f"not {spec.symbol} {signal.timeframe}; use the model's symbol and "
                          "timeframe")
    begin, stop = pd.Timestamp(start), pd.Timestamp(end)
    begin = begin.tz_localize("UTC") if begin.tzinfo is None else begin.tz_convert("UTC")
    stop = stop.tz_localize("UTC") if stop.tzinfo is None else stop.tz_convert("UTC")
    if begin < replay.test_start:
        raise ConfigError(f"span [{begin.isoformat()}, {stop.isoformat()}) starts before "
                          f"{replay.test_start.isoformat()}, the first bar of model "
                          f"{model[:16]}...'s test span (earlier bars trained it); choose "
                          "spans from there on")
    stamps = replay.bars["ts"]
    inside = ((stamps >= begin) & (stamps < stop)).to_numpy()
    positions = np.flatnonzero(inside)
    if len(positions) == 0:
        raise DataError(f"{spec.symbol} has no bars in [{begin.isoformat()}, "
                        f"{stop.isoformat()}); choose spans inside the data")
    bars = replay.bars.iloc[positions].reset_index(drop=True)
    keep = (replay.entries >= positions[0]) & (replay.entries <= positions[-1])
    return SpanSignals(bars, replay.entries[keep] - positions[0], replay.sides[keep])
