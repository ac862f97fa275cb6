"""Targets and the chronological split: train, validation and test spans with purge gaps.

The usable rows are the bars where every candidate feature and the target are finite. They
are cut into ``segments`` consecutive blocks (1 by default); each block is a segment and
gives, in time order, a training part (``train_fraction``), a validation part
(``validation_fraction``) and a test part (the rest). ``gap = max(purge_bars, horizon)``
rows are dropped before every part that follows another one (validation, test and the next
block's training), so no target of one span looks into the next and no span starts on bars
the previous one's targets used.

Every segment is its own walk-forward step: its model, scalers and regimes are fitted on its
own training rows only, which all come before its validation rows, which all come before its
test rows (each by more than the gap). No segment ever trains on rows of a later segment, so
nothing at or after a test block's first row enters the fits judged on that block.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stratforge.errors import ConfigError, DataError


def make_target(close: np.ndarray, kind: str, horizon: int) -> np.ndarray:
    """The target of bar t: ln(c[t+h] / c[t]) (``log_return``) or c[t+h] / c[t] - 1
    (``pct_change``); NaN for the last ``horizon`` bars."""
    if horizon < 1:
        raise ConfigError(f"horizon must be >= 1 bar, got {horizon}")
    out = np.full(len(close), np.nan)
    if horizon < len(close):
        ratio = close[horizon:] / close[:-horizon]
        if kind == "log_return":
            out[:-horizon] = np.log(ratio)
        elif kind == "pct_change":
            out[:-horizon] = ratio - 1.0
        else:
            raise ConfigError(f"target must be log_return or pct_change, got {kind!r}")
    return out


@dataclass(frozen=True)
class SegmentSplit:
    """The bar positions of one segment's spans (sorted int64): its model is fitted on
    ``train``, measured and tuned on ``validation`` and judged on ``test``, in that time order
    with an embargo of ``gap`` usable rows between them."""

    number: int
    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray

    @property
    def rows(self) -> np.ndarray:
        """Every bar position of the segment's spans, sorted."""
        return np.concatenate([self.train, self.validation, self.test])


@dataclass(frozen=True)
class Split:
    """Bar positions of each span over all segments (sorted int64) and the segments."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    gap: int
    segments: tuple[SegmentSplit, ...] = ()

    def describe(self) -> dict[str, int]:
        """Row counts, the purge gap and the number of segments."""
        return {"train": len(self.train), "validation": len(self.validation),
                "test": len(self.test), "gap": self.gap, "segments": len(self.segments)}


def embargo_rows(purge_bars: int, horizon: int) -> int:
    """The purge gap between spans: ``max(purge_bars, horizon)`` rows, so the target of the
    last row of one span (it reads ``horizon`` bars ahead) ends before the next span starts."""
    return max(int(purge_bars), int(horizon))


def chronological_split(usable: np.ndarray, *, train_fraction: float,
                        validation_fraction: float, purge_bars: int, horizon: int,
                        segments: int = 1) -> Split:
    """Split the sorted usable bar positions (see the module docstring)."""
    gap = embargo_rows(purge_bars, horizon)
    if segments < 1:
        raise ConfigError(f"segments must be >= 1, got {segments}")
    blocks = np.array_split(np.asarray(usable, dtype=np.int64), segments)
    parts: list[SegmentSplit] = []
    for number, block in enumerate(blocks):
        n = len(block)
        a = round(n * train_fraction)
        b = round(n * (train_fraction + validation_fraction))
        start = gap if number > 0 else 0
        pieces = {"train": block[start:a], "validation": block[a + gap:b],
                  "test": block[b + gap:]}
        for name, piece in pieces.items():
            if len(piece) < 20:
                raise DataError(f"the {name} span of segment {number + 1} of {segments} has "
                                f"{len(piece)} rows ({n} usable rows in the segment, purge gap "
                                f"{gap}); use more data, fewer segments or a smaller gap")
        parts.append(SegmentSplit(number, **pieces))
    return Split(*(np.concatenate([getattr(p, k) for p in parts])
                   for k in ("train", "validation", "test")), gap=gap, segments=tuple(parts))
