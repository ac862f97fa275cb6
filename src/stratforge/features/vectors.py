"""``feature_vectors``: the 14 template dimensions of every bar of a timeframe hierarchy.

Context (parent and root values) comes from an as-of join on completion instants: a bar of
timeframe ``tf`` that starts at ``t`` is known at ``bar_end_times(t, tf, session)``, and may
use the higher-timeframe bar with the greatest completion instant at or before its own. A
higher-timeframe bar that is still open is never used. Conventions: docs/features.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import pairwise

import numpy as np
import pandas as pd

from stratforge.data.bars import ts_ns
from stratforge.data.resample import bar_end_times
from stratforge.errors import ConfigError
from stratforge.sessions import Session
from stratforge.timeframes import Timeframe, parse_timeframe

FEATURE_NAMES: tuple[str, ...] = (
    "abs_z",                  # |z|
    "abs_velocity_sigma",     # |velocity_sigma| = |close - previous close| / sigma
    "abs_momentum_strength",  # |momentum_strength|
    "coherence",              # wave-function entropy / ln 3
    "log2_tf_seconds",        # log2 of the timeframe's duration in seconds
    "hierarchy_depth",        # index in the hierarchy, root 0
    "parent_cascade",         # 1.0 if the last completed parent bar is a cascade, else 0.0
    "adx_norm",               # ADX / 100
    "hurst",                  # Hurst exponent
    "dmi_along_move",         # sign(z) * (+DI - -DI) / 100: trend with (+) or against the move
    "abs_parent_z",           # |z| of the last completed parent bar
    "parent_dmi_along_move",  # sign(z) * (+DI - -DI) / 100 of the last completed parent bar
    "root_cascade",           # 1.0 if the last completed root bar is a cascade, else 0.0
    "root_dmi_agreement",     # sign(own DMI diff) * sign(root DMI diff): +1, 0 or -1
)
"""The 14 template dimensions, in their fixed order.

Every dimension is mirror-invariant: flipping every price around a level (an up move becomes
the same move down) leaves the vector unchanged. Unsigned quantities enter as magnitudes and
the two directional ones (the DMI differences) are oriented along the bar's own move,
``sign(z)``. A pattern and its mirror image therefore fall in one template, which fades the
move on either side (``Template.direction`` 0), and a symmetric edge is not split in two."""

DISCRETE_RANGES: dict[str, float] = {
    "parent_cascade": 1.0,      # 0 or 1
    "root_cascade": 1.0,        # 0 or 1
    "root_dmi_agreement": 2.0,  # -1, 0 or +1
}
"""The dimensions that take a few values only, and the width of their range: templates
scale them by it (a change of flag moves a bar one unit), not by their standard deviation,
which makes a rare flag a gap wider than the match threshold (docs/discovery.md)."""

VECTOR_COLUMNS: tuple[str, ...] = ("ts", *FEATURE_NAMES, "z")
"""Columns of each frame ``feature_vectors`` returns (``z`` is signed, for direction)."""

_NEEDED = ("ts", "z", "velocity_sigma", "momentum_strength", "coherence", "adx", "hurst",
           "dmi_diff", "cascade_detected")
"""State columns read: all scale-free, so the vectors never depend on the price level."""


def _as_timeframe(value: Timeframe | str) -> Timeframe:
    return value if isinstance(value, Timeframe) else parse_timeframe(str(value))


def _checked_inputs(states_by_tf: Mapping[Timeframe | str, pd.DataFrame],
                    hierarchy: Sequence[Timeframe | str]
                    ) -> tuple[list[Timeframe], dict[Timeframe, pd.DataFrame]]:
    levels = [_as_timeframe(h) for h in hierarchy]
    if not levels:
        raise ConfigError("feature_vectors: the hierarchy is empty; name at least one timeframe")
    for coarse, fine in pairwise(levels):
        if fine >= coarse:
            raise ConfigError(
                "feature_vectors: the hierarchy must run from the coarsest timeframe (the root) "
                f"to the finest, each strictly shorter; got {', '.join(map(str, levels))}")
    states = {_as_timeframe(k): v for k, v in states_by_tf.items()}
    for level in levels:
        if level not in states:
            raise ConfigError(f"feature_vectors: no states for timeframe {level} of the "
                              f"hierarchy; have {', '.join(map(str, sorted(states)))}")
        missing = [c for c in _NEEDED if c not in states[level].columns]
        if missing:
            raise ConfigError(f"feature_vectors: states of {level} lack column(s) "
                              f"{', '.join(missing)}; pass frames from compute_states")
    return levels, states


def _take(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``values[index]`` as float64, NaN where ``index`` is -1 (no completed bar yet)."""
    out = np.full(len(index), np.nan)
    known = index >= 0
    out[known] = values[index[known]]
    return out


def _completed_index(context_end: np.ndarray, own_end: np.ndarray) -> np.ndarray:
    """Per own bar, the index of the last context bar complete by the own bar's completion."""
    return np.searchsorted(context_end, own_end, side="right") - 1


def feature_vectors(states_by_tf: Mapping[Timeframe | str, pd.DataFrame],
                    hierarchy: Sequence[Timeframe | str], *,
                    session: Session) -> dict[Timeframe, pd.DataFrame]:
    """The 14-dimensional feature vector of every bar of every timeframe in ``hierarchy``.

    ``states_by_tf`` maps each timeframe (a Timeframe or a name such as ``"5m"``) to its
    ``compute_states`` frame; ``hierarchy`` runs from the coarsest timeframe (the root,
    depth 0) to the finest. Returns, per timeframe of the hierarchy, a frame aligned with its
    states (same index) with ``ts``, the columns ``FEATURE_NAMES`` and the signed ``z``.

    Parent (one level up) and root (``hierarchy[0]``) values come from the last bar of that
    timeframe completed by the own bar's completion instant (``bar_end_times`` of both, in
    ``session``); rows with no completed parent or root bar yet get NaN there. Root rows use
    their own bar as parent and root. Every dimension is a ratio of price moves, a flag, a
    timeframe constant or a bounded oscillator: none changes when all prices (and the tick)
    are multiplied by one constant.
    """
    levels, states = _checked_inputs(states_by_tf, hierarchy)
    arrays: dict[Timeframe, dict[str, np.ndarray]] = {}
    ends: dict[Timeframe, np.ndarray] = {}
    for level in levels:
        frame = states[level]
        cols = {c: frame[c].to_numpy(dtype=np.float64) for c in _NEEDED[1:]}
        arrays[level] = cols
        ends[level] = bar_end_times(ts_ns(frame), level, session)

    root = levels[0]
    result: dict[Timeframe, pd.DataFrame] = {}
    for depth, level in enumerate(levels):
        own = arrays[level]
        count = len(own["z"])
        if depth == 0:
            parent_index = root_index = np.arange(count)
            parent = root
        else:
            parent = levels[depth - 1]
            parent_index = _completed_index(ends[parent], ends[level])
            root_index = _completed_index(ends[root], ends[level])
        root_dmi = _take(arrays[root]["dmi_diff"], root_index)
        move = np.sign(own["z"])
        columns = {
            "abs_z": np.abs(own["z"]),
            "abs_velocity_sigma": np.abs(own["velocity_sigma"]),
            "abs_momentum_strength": np.abs(own["momentum_strength"]),
            "coherence": own["coherence"],
            "log2_tf_seconds": np.full(count, np.log2(level.seconds)),
            "hierarchy_depth": np.full(count, float(depth)),
            "parent_cascade": _take(arrays[parent]["cascade_detected"], parent_index),
            "adx_norm": own["adx"] / 100.0,
            "hurst": own["hurst"],
            "dmi_along_move": move * own["dmi_diff"] / 100.0,
            "abs_parent_z": np.abs(_take(arrays[parent]["z"], parent_index)),
            "parent_dmi_along_move": move * _take(arrays[parent]["dmi_diff"],
                                                  parent_index) / 100.0,
            "root_cascade": _take(arrays[root]["cascade_detected"], root_index),
            "root_dmi_agreement": np.sign(own["dmi_diff"]) * np.sign(root_dmi),
        }
        frame = pd.DataFrame({"ts": states[level]["ts"].array, **columns,
                              "z": own["z"]}, index=states[level].index, copy=False)
        result[level] = frame
    return result
