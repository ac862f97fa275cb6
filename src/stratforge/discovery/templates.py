"""Clustering patterns into templates: per-timeframe scalers, k-means, recursive tightening.

``cluster_patterns(patterns)`` standardises each pattern's 14-dimensional feature vector with
the scaler of its timeframe, clusters all patterns together in that scaled space, splits
clusters whose scaled |z| is too spread out, and summarises each final cluster as a
``Template``. With a training end it takes the training patterns only (select them with
``stratforge.discovery.span.training_patterns``). Conventions: docs/discovery.md, "Templates".
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans, MiniBatchKMeans

from stratforge.discovery.library import FeatureScaler, Template, TemplateLibrary
from stratforge.discovery.span import utc_time
from stratforge.errors import ConfigError
from stratforge.features.vectors import FEATURE_NAMES
from stratforge.progress import ProgressCallback, no_progress
from stratforge.timeframes import parse_timeframe

REQUIRED_COLUMNS: tuple[str, ...] = ("pattern_id", "timeframe", "z", *FEATURE_NAMES)
"""Columns ``cluster_patterns`` needs (plus ``ts`` when ``train_end`` is given)."""

ORACLE_COLUMNS: tuple[str, ...] = ("oracle_side", "oracle_mfe", "oracle_mae", "oracle_win")
"""Optional columns; a template's oracle statistics are NaN for those that are absent."""

CLUSTERING_VERSION = 2
MINIBATCH_FROM = 500
"""From this many patterns on, MiniBatchKMeans replaces KMeans."""
SPLIT_MIN_MEMBERS = 20
"""A cluster is split only when it has more members than this ..."""
SPLIT_ABS_Z_STD = 0.5
"""... and the standard deviation of its members' scaled |z| exceeds this."""

_ABS_Z = FEATURE_NAMES.index("abs_z")


def cluster_count(n_patterns: int) -> int:
    """The number of k-means clusters for ``n_patterns``: ``max(10, N // 100)`` capped at
    ``N // 20``, at least 1 (0 for no patterns)."""
    if n_patterns <= 0:
        return 0
    return max(1, min(max(10, n_patterns // 100), n_patterns // 20))


def _checked(patterns: pd.DataFrame, train_end: pd.Timestamp | None) -> pd.DataFrame:
    needed = [*REQUIRED_COLUMNS, *(["ts"] if train_end is not None else [])]
    missing = [c for c in needed if c not in patterns.columns]
    if missing:
        raise ConfigError(f"cluster_patterns: the patterns frame lacks column(s) "
                          f"{', '.join(missing)}; pass the frame of the pattern finder "
                          "(docs/discovery.md)")
    if train_end is not None:
        late = patterns.loc[(pd.to_datetime(patterns["ts"], utc=True) >= train_end).to_numpy(),
                            "pattern_id"]
        if len(late):
            raise ConfigError(f"cluster_patterns: {len(late)} pattern(s) start at or after "
                              f"train_end {train_end.isoformat()} (first {late.iloc[0]!r}); "
                              "pass only the training patterns "
                              "(stratforge.discovery.span.training_patterns)")
    ids = patterns["pattern_id"].astype(str)
    duplicated = ids[ids.duplicated()]
    if len(duplicated):
        raise ConfigError(f"cluster_patterns: pattern_id must be unique; {len(duplicated)} "
                          f"repeat(s), first {duplicated.iloc[0]!r}")
    # A fixed row order (by id) makes the result independent of the order rows came in.
    order = np.argsort(ids.to_numpy(dtype=object), kind="stable")
    return patterns.iloc[order].reset_index(drop=True)


def _fit_scalers(raw: np.ndarray, timeframes: np.ndarray
                 ) -> tuple[dict[str, FeatureScaler], np.ndarray]:
    """One scaler per timeframe, fitted on its rows, and the scaled matrix."""
    names = sorted(set(timeframes.tolist()), key=lambda t: -parse_timeframe(t).seconds)
    scalers: dict[str, FeatureScaler] = {}
    scaled = np.empty_like(raw)
    for name in names:
        rows = timeframes == name
        scaler = FeatureScaler.fit(raw[rows])
        scalers[name] = scaler
        scaled[rows] = scaler.transform(raw[rows])
    return scalers, scaled


def _initial_labels(scaled: np.ndarray, k: int, random_state: int) -> tuple[np.ndarray, str]:
    """k-means labels with a fresh estimator: KMeans below MINIBATCH_FROM rows, else
    MiniBatchKMeans."""
    n = len(scaled)
    if k <= 1:
        return np.zeros(n, dtype=np.int64), "none"
    if n < MINIBATCH_FROM:
        model = KMeans(n_clusters=k, n_init=10, random_state=random_state)
        name = "KMeans"
    else:
        model = MiniBatchKMeans(n_clusters=k, batch_size=min(1024, n), n_init=3,
                                random_state=random_state)
        name = "MiniBatchKMeans"
    return model.fit(scaled).labels_.astype(np.int64), name


def _tighten(scaled: np.ndarray, groups: list[np.ndarray], random_state: int
             ) -> tuple[list[np.ndarray], int]:
    """Split, recursively, every group with more than SPLIT_MIN_MEMBERS members whose scaled
    |z| has a standard deviation above SPLIT_ABS_Z_STD, in two with KMeans(2) over that scaled
    |z| (the spread the rule is about; the other dimensions were settled by the first k-means,
    and a split over all 14 of them mostly cuts along another one, shredding clusters to ~20
    members). A split that leaves one side empty stops; each split shrinks both sides, so the
    recursion ends."""
    final: list[np.ndarray] = []
    stack = list(reversed(groups))
    splits = 0
    while stack:
        group = stack.pop()
        if len(group) > SPLIT_MIN_MEMBERS and scaled[group, _ABS_Z].std() > SPLIT_ABS_Z_STD:
            model = KMeans(n_clusters=2, n_init=10, random_state=random_state)
            labels = model.fit(scaled[group, _ABS_Z].reshape(-1, 1)).labels_
            first, second = group[labels == 0], group[labels == 1]
            if len(first) and len(second):
                splits += 1
                stack.extend([second, first])
                continue
        final.append(group)
    return final, splits


def _nan_stat(values: np.ndarray, stat: str) -> Any:
    known = values[np.isfinite(values)]
    if stat == "mean":
        return float(known.mean()) if len(known) else math.nan
    if not len(known):
        return [math.nan] * 3
    return np.percentile(known, [25, 50, 75]).tolist()


def member_arrays(frame: pd.DataFrame, raw: np.ndarray, scaled: np.ndarray
                  ) -> dict[str, np.ndarray]:
    """The arrays ``summarize_members`` reads: signed z, raw and scaled vectors, timeframe,
    pattern id and the oracle columns present, one row per pattern of ``frame``."""
    data: dict[str, np.ndarray] = {
        "z": frame["z"].to_numpy(dtype=np.float64), "raw": raw, "scaled": scaled,
        "timeframe": frame["timeframe"].astype(str).to_numpy(dtype=object),
        "pattern_id": frame["pattern_id"].astype(str).to_numpy(dtype=object)}
    for column in ORACLE_COLUMNS:
        if column in frame.columns:
            data[column] = frame[column].to_numpy(dtype=np.float64, na_value=np.nan)
    return data


def summarize_members(group: np.ndarray, data: dict[str, np.ndarray],
                      tf_rank: dict[str, int]) -> dict[str, Any]:
    """The Template fields (all but the id and parent) of one group of row positions.

    Used for clustered templates and for fission children alike, so both are summarised by
    the same rules (both sides faded, oracle statistics, ...). The feature space is
    mirror-invariant, so a group holds moves up and down alike and its template fades either
    (direction 0); ``long_share`` says how the members split.
    """
    z = data["z"][group]
    direction = 0
    members_scaled = data["scaled"][group]
    fields: dict[str, Any] = {
        "timeframes": sorted(set(data["timeframe"][group].tolist()), key=tf_rank.__getitem__),
        "centroid_scaled": members_scaled.mean(axis=0).tolist(),
        "centroid_raw": data["raw"][group].mean(axis=0).tolist(),
        "members": len(group),
        "member_ids": data["pattern_id"][group].tolist(),
        "direction": direction,
        "long_share": float(np.mean(z < 0)),
        "physics_variance": float(members_scaled.var(axis=0).mean()),
        "oracle_win_rate": math.nan,
        "oracle_direction_share": math.nan,
    }
    if "oracle_win" in data:
        fields["oracle_win_rate"] = _nan_stat(data["oracle_win"][group], "mean")
    if "oracle_side" in data:
        side = data["oracle_side"][group]
        side = side[np.isfinite(side)]
        fade = -np.sign(z)[np.isfinite(data["oracle_side"][group])]
        fields["oracle_direction_share"] = (float(np.mean(side == fade)) if len(side)
                                            else math.nan)
    for column, key in (("oracle_mfe", "mfe_percentiles"), ("oracle_mae", "mae_percentiles")):
        if column in data:
            fields[key] = _nan_stat(data[column][group], "percentiles")
    return fields


def cluster_patterns(patterns: pd.DataFrame, *, train_end: pd.Timestamp | None = None,
                     random_state: int = 0,
                     progress: ProgressCallback = no_progress) -> TemplateLibrary:
    """Cluster ``patterns`` (the pattern finder's frame) into a template library.

    Needs the columns ``REQUIRED_COLUMNS`` (``pattern_id``, ``timeframe``, signed ``z`` and
    the 14 ``FEATURE_NAMES``), ``ts`` when ``train_end`` is given, and uses ``ORACLE_COLUMNS``
    when present. ``train_end`` (recorded in the metadata) says the patterns are those of a
    training span ending there: every one must start before it (ConfigError otherwise);
    select them with ``span.training_patterns``, which also drops the patterns whose oracle
    lookahead or drill-down parent reaches past it. Steps (docs/discovery.md, "Templates"):

    1. Rows with a NaN or infinite feature or z are dropped (counted in the metadata).
    2. One ``FeatureScaler`` per timeframe, fitted on its patterns.
    3. All patterns together are clustered in scaled space into ``cluster_count(N)`` clusters
       (at most the number of distinct vectors): KMeans(n_init=10) below 500 patterns, else
       MiniBatchKMeans(batch_size=min(1024, N), n_init=3), a fresh estimator each time.
    4. Recursive tightening: a cluster with more than 20 members whose scaled |z| has a
       standard deviation above 0.5 is split in two by KMeans(2, n_init=10) over its scaled
       |z|, recursively.
    5. Templates are ordered by member count (descending), then scaled centroid, and named
       ``T0001``, ``T0002``... (wider numbers past 9999).

    The same input and ``random_state`` give an identical library, whatever the row order.
    """
    end = None if train_end is None else utc_time(train_end)
    frame = _checked(patterns, end)
    n_input = len(frame)
    raw = frame.loc[:, list(FEATURE_NAMES)].to_numpy(dtype=np.float64)
    z = frame["z"].to_numpy(dtype=np.float64)
    timeframes = frame["timeframe"].astype(str).to_numpy(dtype=object)
    keep = np.isfinite(raw).all(axis=1) & np.isfinite(z)
    dropped = {str(tf): int(n) for tf, n in
               pd.Series(timeframes[~keep]).value_counts().sort_index().items()}
    frame, raw, z, timeframes = frame[keep], raw[keep], z[keep], timeframes[keep]
    progress("templates", 1, 4, f"scaling {len(frame)} patterns ({n_input - len(frame)} "
                                "dropped for NaN features)")

    scalers, scaled = _fit_scalers(raw, timeframes)

    n = len(frame)
    k = cluster_count(n)
    k_used = min(k, len(np.unique(scaled, axis=0))) if n else 0
    progress("templates", 2, 4, f"clustering {n} patterns into {k_used} clusters")
    labels, algorithm = (_initial_labels(scaled, k_used, random_state) if n
                         else (np.zeros(0, np.int64), "none"))
    groups = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    progress("templates", 3, 4, f"tightening {len(groups)} clusters")
    final, splits = _tighten(scaled, groups, random_state)

    data = member_arrays(frame, raw, scaled)
    tf_rank = {name: rank for rank, name in enumerate(scalers)}
    summaries = [summarize_members(group, data, tf_rank) for group in final]
    summaries.sort(key=lambda s: (-s["members"], s["centroid_scaled"], s["member_ids"][0]))
    width = max(4, len(str(len(summaries))))
    templates = [Template(template_id=f"T{i:0{width}d}", **s)
                 for i, s in enumerate(summaries, start=1)]
    progress("templates", 4, 4, f"{len(templates)} templates")

    metadata = {
        "clustering_version": CLUSTERING_VERSION,
        "random_state": int(random_state),
        "train_end": None if end is None else end.isoformat(),
        "n_patterns": n_input,
        "n_clustered": n,
        "dropped_rows": n_input - n,
        "dropped_by_timeframe": dropped,
        "n_train": n,
        "k": k,
        "k_used": k_used,
        "algorithm": algorithm,
        "initial_clusters": len(groups),
        "splits": splits,
        "n_templates": len(templates),
        "tightening": {"min_members": SPLIT_MIN_MEMBERS, "max_abs_z_std": SPLIT_ABS_Z_STD},
    }
    return TemplateLibrary(templates, scalers, metadata)
