"""Pruning: never below min_features, features with importance <= 0 dropped, the top share
kept, independent of input order; the stop reasons."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from stratforge.evolution.pruning import (
    STOP_MIN_FEATURES,
    STOP_NO_IMPORTANCE,
    STOP_NOTHING_TO_PRUNE,
    prune_features,
)

importances = st.dictionaries(st.text("abcdefghij", min_size=1, max_size=4),
                              st.floats(-1.0, 1.0, allow_nan=False), min_size=1, max_size=40)


def reference_prune(importance, prune_fraction, min_features):
    """Plain restatement of the rule: rank by importance (name breaks ties); the positives
    first; keep ceil((1 - f) n) of them but at least min_features."""
    names = sorted(importance)
    ranked = sorted(names, key=lambda k: (-importance[k], k))
    positive = [k for k in ranked if importance[k] > 0]
    keep = max(min_features, math.ceil((1 - prune_fraction) * len(names)))
    if len(positive) >= min_features:
        return sorted(positive[:keep])
    return sorted(ranked[:min_features])


@settings(max_examples=300, deadline=None)
@given(importances, st.floats(0.0, 0.9), st.integers(1, 10))
def test_pruning_matches_the_rule_and_never_goes_below_min_features(importance, fraction,
                                                                     minimum):
    result = prune_features(importance, prune_fraction=fraction, min_features=minimum)
    n = len(importance)
    assert len(result.kept) >= min(n, minimum)
    assert sorted(result.kept + result.dropped) == sorted(importance)
    if n <= minimum:
        assert result.stop_reason == STOP_MIN_FEATURES and sorted(result.kept) == sorted(
            importance)
        return
    if all(v == 0 for v in importance.values()):
        assert result.stop_reason == STOP_NO_IMPORTANCE
        return
    assert sorted(result.kept) == reference_prune(importance, fraction, minimum)
    positives = [k for k, v in importance.items() if v > 0]
    if len(positives) >= minimum:  # every feature that does not help is dropped
        assert all(importance[k] > 0 for k in result.kept)
    if len(result.kept) == n:
        assert result.stop_reason == STOP_NOTHING_TO_PRUNE


@settings(max_examples=100, deadline=None)
@given(importances, st.randoms())
def test_pruning_does_not_depend_on_the_input_order(importance, rng):
    items = list(importance.items())
    rng.shuffle(items)
    assert prune_features(dict(items)).kept == prune_features(importance).kept


def test_hand_computed_case():
    importance = {"a": 0.5, "b": 0.4, "c": -0.1, "d": 0.0, "e": 0.3, "f": 0.2, "g": 0.1,
                  "h": 0.05}
    result = prune_features(importance, prune_fraction=0.25, min_features=3)
    # 8 features, keep ceil(0.75 * 8) = 6 of the 6 positives: c (negative), d (zero) go
    assert sorted(result.kept) == ["a", "b", "e", "f", "g", "h"]
    assert sorted(result.dropped) == ["c", "d"] and result.stop_reason is None
    result = prune_features(importance, prune_fraction=0.5, min_features=3)
    assert result.kept == ["a", "b", "e", "f"]
    few = prune_features({"a": 0.1, "b": -0.2, "c": -0.1, "d": 0.0, "e": -0.3, "f": -1.0},
                         min_features=5)
    assert few.kept == ["a", "d", "c", "b", "e"]  # only one helps: the best five kept
    assert prune_features({"a": float("nan"), "b": 0.0, "c": 0.0, "d": 0.0, "e": 0.0,
                           "f": 0.0}).stop_reason == STOP_NO_IMPORTANCE
