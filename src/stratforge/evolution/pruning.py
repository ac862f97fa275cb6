"""Feature pruning between generations.

Given signed importances, drop every feature with importance <= 0 (or NaN), then keep the
top ``ceil((1 - prune_fraction) * n)`` of the current ``n`` features by importance, never
fewer than ``min_features``. When fewer than ``min_features`` features have a positive
importance, the best ``min_features`` by importance are kept. A generation with
``min_features`` features or fewer is not pruned again (``min_features_reached``); one where
pruning would keep every feature stops with ``nothing_left_to_prune``; all importances zero
or missing stop with ``importance_unavailable``.
Ties break by feature name, so the result does not depend on the input order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

STOP_MAX_GENERATIONS = "max_generations"
STOP_NOTHING_TO_PRUNE = "nothing_left_to_prune"
STOP_MIN_FEATURES = "min_features_reached"
STOP_NO_IMPORTANCE = "importance_unavailable"
STOP_TRAINING_ERROR = "training_error"
STOP_REASONS: tuple[str, ...] = (STOP_MAX_GENERATIONS, STOP_NOTHING_TO_PRUNE, STOP_MIN_FEATURES,
                                 STOP_NO_IMPORTANCE, STOP_TRAINING_ERROR)


@dataclass(frozen=True)
class PruneResult:
    """The features kept (best first), those dropped, and why pruning cannot go on (None
    when the next generation may train)."""

    kept: list[str]
    dropped: list[str]
    stop_reason: str | None


def prune_features(importance: dict[str, float], *, prune_fraction: float = 0.25,
                   min_features: int = 5) -> PruneResult:
    """Prune one generation's features (see the module docstring)."""
    names = sorted(importance)
    n = len(names)
    if n <= min_features:
        return PruneResult(names, [], STOP_MIN_FEATURES)
    values = {k: importance[k] for k in names}
    finite = {k: v for k, v in values.items() if v is not None and math.isfinite(v)}
    if not finite or all(v == 0 for v in finite.values()):
        return PruneResult(names, [], STOP_NO_IMPORTANCE)
    ranked = sorted(finite, key=lambda k: (-finite[k], k))
    positive = [k for k in ranked if finite[k] > 0]
    keep = max(min_features, math.ceil((1.0 - prune_fraction) * n))
    if len(positive) >= min_features:
        kept = positive[:keep]
    else:  # too few helpful features: the best min_features by importance
        kept = (ranked + sorted(set(names) - set(ranked)))[:min_features]
    reason = None
    if reason is None and len(kept) == n:
        reason = STOP_NOTHING_TO_PRUNE
    dropped = [k for k in names if k not in set(kept)]
    return PruneResult(kept, dropped, reason)
