"""What a lookahead audit recomputes on each copy of the data: every feature the factory uses.

``compute_sources(spans, ...)`` maps each timeframe to ``{"source.name": float array}`` for
one set of bar spans (one per timeframe): the field-engine states (``states.*``), the template
feature vectors with their higher-timeframe context (``vector.*``), the evolution factory's
candidate features (``evolution.*``, from ``build_features`` or the builder given), one 0/1
column per template of a library (``match.<template_id>``), the user's feature functions
(``user.*``) and the standardised prediction of each stored model replayed on its timeframe
(``model.<first 16 hex of its fingerprint>``, see ``audit.models``). ``sources`` limits what
is computed and returned (the states are always computed: the rest is built on them).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import numpy as np
import pandas as pd

from stratforge.audit.models import FeatureBuilder, ModelProbe
from stratforge.audit.user_features import FeatureFunction, evaluate_feature
from stratforge.discovery.library import TemplateLibrary
from stratforge.discovery.matching import match_library
from stratforge.evolution.featureset import build_features
from stratforge.features import FEATURE_NAMES, compute_states, feature_vectors
from stratforge.sessions import Session

SOURCES: tuple[str, ...] = ("states", "vector", "evolution", "match", "user", "model")
"""Feature sources, in report order."""


def _state_columns(states: pd.DataFrame) -> dict[str, np.ndarray]:
    out = {}
    for name in states.columns:
        if name == "ts":
            continue
        column = states[name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            codes = column.cat.codes.to_numpy().astype(np.float64)
            codes[codes < 0] = np.nan
            out[f"states.{name}"] = codes
        else:
            out[f"states.{name}"] = column.to_numpy(dtype=np.float64)
    return out


def _match_columns(library: TemplateLibrary, vectors: pd.DataFrame, timeframe: str
                   ) -> dict[str, np.ndarray]:
    found = match_library(library, vectors, timeframe)
    out = {}
    positions = found["position"].to_numpy()
    ids = found["template_id"].to_numpy()
    for template in library:
        flags = np.zeros(len(vectors))
        flags[positions[ids == template.template_id]] = 1.0
        out[f"match.{template.template_id}"] = flags
    return out


def compute_sources(spans: Mapping[str, pd.DataFrame], *, hierarchy: Sequence[str],
                    session: Session, tick_size: float | None,
                    library: TemplateLibrary | None = None,
                    features: Sequence[FeatureFunction] = (),
                    builder: FeatureBuilder = build_features,
                    models: Sequence[ModelProbe] = (),
                    sources: Collection[str] = SOURCES) -> dict[str, dict[str, np.ndarray]]:
    """Every audited feature of every timeframe of ``spans`` (bars by timeframe name), each
    a float array aligned with that timeframe's bars (categories as codes, flags as 0/1).

    ``hierarchy`` (coarsest first, a subset of ``spans``) gives the feature vectors and their
    context; ``library`` adds template matches on the hierarchy's timeframes it has scalers
    for; ``features`` are user feature functions (see ``user_features``); ``builder`` makes
    the evolution features (``build_features`` by default); ``models`` are replayed on their
    timeframe from the builder's frame; only the ``sources`` named are returned."""
    states = {tf: compute_states(bars, tick_size=tick_size) for tf, bars in spans.items()}
    out: dict[str, dict[str, np.ndarray]] = {
        tf: _state_columns(s) if "states" in sources else {} for tf, s in states.items()}
    if hierarchy and ("vector" in sources or (library is not None and "match" in sources)):
        vectors = feature_vectors({tf: states[tf] for tf in hierarchy}, list(hierarchy),
                                  session=session)
        for level, frame in vectors.items():
            tf = str(level)
            if "vector" in sources:
                out[tf].update((f"vector.{name}", frame[name].to_numpy(dtype=np.float64))
                               for name in FEATURE_NAMES)
            if library is not None and tf in library.scalers and "match" in sources:
                out[tf].update(_match_columns(library, frame, tf))
    replayed = [probe for probe in models if "model" in sources]
    for tf, bars in spans.items():
        own = [probe for probe in replayed if probe.timeframe == tf]
        if "evolution" in sources or own:
            built = builder(bars, states[tf], tick_size=tick_size)
            if "evolution" in sources:
                out[tf].update((f"evolution.{name}",
                                built[name].to_numpy(dtype=np.float64, na_value=np.nan))
                               for name in built.columns)
            out[tf].update((f"model.{probe.name}", probe.scores(built)) for probe in own)
        if "user" in sources:
            for function in features:
                out[tf].update((f"user.{name}", values)
                               for name, values in evaluate_feature(function, bars, tf).items())
    return out
