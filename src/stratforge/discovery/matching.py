"""Matching a template on every bar of a timeframe.

A bar matches template T when the Euclidean distance between its scaled feature vector and
T's scaled centroid is below a threshold (default 3.0) and T trades the side that fades the
bar's move: a two-sided template (direction 0, what clustering makes) every bar with z != 0,
entering short above the centre (z > 0) and long below it (z < 0); a one-sided one (+1 long,
-1 short) only the bars whose z it fades. A fission child also needs its conditions
(``Template.admits``: a cut on one raw feature). Bars with any missing feature never match.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from stratforge.discovery.library import TemplateLibrary
from stratforge.errors import ConfigError
from stratforge.features import feature_vectors
from stratforge.features.cache import load_states
from stratforge.instruments import get_instrument
from stratforge.timeframes import parse_timeframe

DEFAULT_MATCH_THRESHOLD = 3.0


def library_hierarchy(library: TemplateLibrary) -> list[str]:
    """The discovery hierarchy (top down) the library's feature vectors were built on."""
    hierarchy = library.metadata.get("hierarchy")
    if not hierarchy:
        raise ConfigError("the template library does not record its discovery hierarchy; "
                          "rerun `stratforge discover`")
    return list(hierarchy)


def timeframe_vectors(symbol: str, timeframe: str, hierarchy: list[str], *,
                      home: Path | str | None = None) -> pd.DataFrame:
    """Feature vectors (``ts``, FEATURE_NAMES, signed ``z``) of every bar of ``timeframe``.

    Uses the hierarchy from its top down to ``timeframe`` and the cached whole-series
    states, so parent and root values come from completed bars only.
    """
    if timeframe not in hierarchy:
        raise ConfigError(f"timeframe {timeframe} is not in the library's hierarchy "
                          f"({', '.join(hierarchy)})")
    levels = hierarchy[:hierarchy.index(timeframe) + 1]
    states = {tf: load_states(symbol, tf, home=home) for tf in levels}
    session = get_instrument(symbol, home).session
    return feature_vectors(states, levels, session=session)[parse_timeframe(timeframe)]


def fading_sides(direction: int, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which bars a template of ``direction`` may trade, given their signed ``z``, and the
    side (+1 / -1, int8) it enters on each: the side that fades the bar's move."""
    fade = -np.sign(z)
    allowed = (np.isfinite(z) & (z != 0)) if direction == 0 else (fade == direction)
    return allowed, np.where(allowed, fade, 0).astype(np.int8)


def match_template(library: TemplateLibrary, template_id: str, vectors: pd.DataFrame,
                   timeframe: str, *, threshold: float = DEFAULT_MATCH_THRESHOLD
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Positions (int64, increasing) of the rows of ``vectors`` matching the template, and the
    entry sides (each fades its bar's move; see :func:`fading_sides`)."""
    if not threshold > 0:
        raise ConfigError(f"match threshold must be > 0, got {threshold}")
    template = library.get(template_id)
    scaled = library.scale(vectors, timeframe)
    distance = np.sqrt(((scaled - np.asarray(template.centroid_scaled)) ** 2).sum(axis=1))
    z = vectors["z"].to_numpy(dtype=np.float64)
    agrees, side = fading_sides(template.direction, z)
    mask = np.isfinite(distance) & (distance < threshold) & agrees & template.admits(vectors)
    entries = np.flatnonzero(mask).astype(np.int64)
    return entries, side[entries].astype(np.int64)


def match_library(library: TemplateLibrary, vectors: pd.DataFrame, timeframe: str, *,
                  threshold: float = DEFAULT_MATCH_THRESHOLD,
                  eligible: np.ndarray | None = None) -> pd.DataFrame:
    """Every template's matches on the rows of ``vectors``, scaled once.

    Same rule as :func:`match_template`; ``eligible`` (a boolean mask over the rows) limits
    matching to those rows, e.g. the timeframe's pattern bars. Returns ``template_id``,
    ``position`` (int64 row of ``vectors``) and ``side`` (int8), ordered by template (library
    order), then position.
    """
    if not threshold > 0:
        raise ConfigError(f"match threshold must be > 0, got {threshold}")
    scaled = library.scale(vectors, timeframe)
    z = vectors["z"].to_numpy(dtype=np.float64)
    allowed = np.ones(len(vectors), dtype=bool) if eligible is None else np.asarray(eligible,
                                                                                    dtype=bool)
    if allowed.shape != (len(vectors),):
        raise ConfigError(f"eligible must hold one flag per row: {allowed.shape} for "
                          f"{len(vectors)} rows")
    finite = np.isfinite(scaled).all(axis=1) & allowed
    rows, ids, sides = [], [], []
    for template in library:
        centre = np.asarray(template.centroid_scaled)
        agrees, side = fading_sides(template.direction, z)
        if template.conditions:
            agrees = agrees & template.admits(vectors)
        candidates = np.flatnonzero(finite & agrees)
        distance = np.sqrt(((scaled[candidates] - centre) ** 2).sum(axis=1))
        hit = candidates[distance < threshold].astype(np.int64)
        rows.append(hit)
        ids.extend([template.template_id] * len(hit))
        sides.append(side[hit])
    return pd.DataFrame({
        "template_id": pd.array(ids, dtype="str"),
        "position": np.concatenate(rows) if rows else np.empty(0, np.int64),
        "side": np.concatenate(sides) if sides else np.empty(0, np.int8),
    })
