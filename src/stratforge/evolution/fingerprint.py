"""Fingerprints: SHA-256 of the canonical JSON of everything that determines a result.

A model's fingerprint covers the sorted features, the algorithm, the normalised
hyperparameters, the symbol, the sorted reference symbols, the timeframe, the target, the
spans (split settings and the data identity) and the seed. A simulation's fingerprint is the
model's plus the grid point and the execution settings. Canonical JSON: sorted keys, no
whitespace, floats as Python writes them (so 1 and 1.0 differ only where the type does).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from stratforge.errors import ConfigError
from stratforge.evolution.training import normalise_hyperparameters

FINGERPRINT_PATTERN = re.compile(r"^[0-9a-f]{64}$")
FEATURE_SET_VERSION = 2
"""Bump when a feature's definition changes, so old models are not reused for new ones."""
SPLIT_VERSION = 2
"""Bump when the split or what each segment is fitted on changes (it enters the spans of a
model's identity). 2: every segment has its own model fitted on its own training rows only
(before 2, one model was fitted on the training rows of all segments)."""


def canonical_json(payload: Any) -> str:
    """Sorted keys, compact separators, ASCII only."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)


def digest(payload: Any) -> str:
    """SHA-256 hex of the canonical JSON of ``payload``."""
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


def model_identity(*, features: list[str], algorithm: str, hyperparameters: dict[str, Any],
                   symbol: str, reference_symbols: list[str] | tuple[str, ...],
                   timeframe: str, target: dict[str, Any], spans: dict[str, Any],
                   seed: int) -> dict[str, Any]:
    """The canonical description of a model: what its fingerprint hashes."""
    if len(set(features)) != len(features):
        raise ConfigError("a model's features must be distinct")
    return {"features": sorted(features), "algorithm": algorithm,
            "hyperparameters": normalise_hyperparameters(algorithm, hyperparameters),
            "symbol": symbol.upper(),
            "reference_symbols": sorted(s.upper() for s in reference_symbols),
            "timeframe": timeframe, "target": dict(target), "spans": dict(spans),
            "seed": int(seed), "feature_set_version": FEATURE_SET_VERSION}


def model_fingerprint(**identity: Any) -> str:
    """The fingerprint of ``model_identity(**identity)``."""
    return digest(model_identity(**identity))


SIMULATION_VERSION = 2
"""Bump when what a simulation measures changes (it enters every simulation fingerprint, so
cached results of an older version are not reused). 2: the validation metrics of a segmented
model come from the first segment's validation span only (before 2: every segment's, so the
grid point was chosen on rows after the first test block)."""


def simulation_fingerprint(model: str, point: dict[str, Any], execution: dict[str, Any]
                           ) -> str:
    """The fingerprint of one simulation: model fingerprint, grid point, execution and the
    simulation version."""
    check_fingerprint(model)
    return digest({"model": model, "point": dict(point), "execution": dict(execution),
                   "version": SIMULATION_VERSION})


def check_fingerprint(value: str, what: str = "model fingerprint") -> str:
    """``value`` when it is 64 lowercase hex digits (ConfigError otherwise): a fingerprint is
    a name, never a path."""
    if not isinstance(value, str) or FINGERPRINT_PATTERN.fullmatch(value) is None:
        raise ConfigError(f"{what} must be 64 lowercase hex digits, got {value!r}")
    return value
