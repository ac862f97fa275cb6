"""Cut instants and the copies of the data a lookahead audit compares: truncated at a cut,
and with every bar after the cut replaced by a different future.

Both replacements keep the bars canonical (``high >= max(open, close)``, ``low <=
min(open, close)``, positive prices, same timestamps) so every feature accepts them:

- ``mirrored``: each later price ``p`` becomes ``P**2 / p`` around the cut's close ``P`` (a
  move up becomes the same log move down; high and low swap roles), volumes in reverse order;
- ``shuffled``: the later bars' shapes (open, high, low and close as log moves from the
  previous close) and volumes in a seeded random order, chained from the cut's close.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np
import pandas as pd

PERTURBATIONS: tuple[str, ...] = ("mirrored", "shuffled")
"""The future replacements, in the order they are checked (after ``truncated``)."""
CHECKS: tuple[str, ...] = ("truncated", *PERTURBATIONS)
"""Every variant of the data compared with the real data at a cut."""


def choose_cuts(end_times: Sequence[np.ndarray], count: int, seed: int) -> np.ndarray:
    """``count`` cut instants (UTC ns, increasing, distinct) spread over the span: one seeded
    random bar end of the finest series (``end_times[0]``) per equal stratum of the span in
    which every series has a quarter of its bars complete and at least one bar still to come.
    Fewer when the span holds fewer bar ends."""
    finest = end_times[0]
    start = max(int(ends[len(ends) // 4]) for ends in end_times)
    stop = min(int(ends[-2]) for ends in end_times)
    candidates = finest[(finest >= start) & (finest <= stop)]
    if len(candidates) == 0 or count < 1:
        return np.empty(0, dtype=np.int64)
    rng = np.random.default_rng(seed)
    edges = np.linspace(0, len(candidates), min(count, len(candidates)) + 1).astype(np.int64)
    picks = [int(rng.integers(lo, hi)) for lo, hi in pairwise(edges) if hi > lo]
    return np.unique(candidates[picks]).astype(np.int64)


def _chain(shapes: np.ndarray, pivot: float) -> np.ndarray:
    """Prices (rows x open/high/low/close) from log moves relative to the previous close."""
    out = np.empty_like(shapes)
    previous = pivot
    for row, moves in enumerate(shapes):
        out[row] = previous * np.exp(moves)
        previous = out[row, 3]
    return out


def perturbed_future(bars: pd.DataFrame, cut: int, kind: str, seed: int) -> pd.DataFrame:
    """``bars`` with every row after position ``cut`` replaced (``kind`` in PERTURBATIONS);
    rows ``0..cut`` are untouched. ``seed`` drives the ``shuffled`` order."""
    if kind not in PERTURBATIONS:
        raise ValueError(f"unknown perturbation {kind!r}; known: {', '.join(PERTURBATIONS)}")
    out = bars.copy()
    future = slice(cut + 1, len(bars))
    if cut + 1 >= len(bars):
        return out
    pivot = float(bars["close"].iat[cut])
    prices = bars[["open", "high", "low", "close"]].to_numpy(dtype=np.float64)
    volume = bars["volume"].to_numpy(dtype=np.float64)
    if kind == "mirrored":
        later = prices[future]
        new = np.column_stack([pivot * pivot / later[:, 0], pivot * pivot / later[:, 2],
                               pivot * pivot / later[:, 1], pivot * pivot / later[:, 3]])
        new_volume = volume[future][::-1]
    else:
        previous = prices[cut:-1, 3]
        shapes = np.log(prices[future] / previous[:, None])
        order = np.random.default_rng(seed).permutation(len(shapes))
        new = _chain(shapes[order], pivot)
        new_volume = volume[future][order]
    for column, values in zip(("open", "high", "low", "close"), new.T, strict=True):
        out.iloc[future, out.columns.get_loc(column)] = values
    out.iloc[future, out.columns.get_loc("volume")] = new_volume
    return out
