"""Discovery: patterns from the top timeframe down, templates, fission (docs/discovery.md).

- ``stratforge.discovery.patterns``: ``PATTERN_COLUMNS``, pattern rows and oracle statistics;
- ``stratforge.discovery.fractal``: ``discover_patterns``, the checkpointed drill-down.

This package module stays lightweight on purpose: it imports nothing (no scikit-learn, no
numba) until a name is used. ``from stratforge.discovery import discover_patterns`` resolves
lazily through ``__getattr__``.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "DEFAULT_HIERARCHY": "stratforge.discovery.fractal",
    "DiscoveryResult": "stratforge.discovery.fractal",
    "LevelReport": "stratforge.discovery.fractal",
    "discover_patterns": "stratforge.discovery.fractal",
    "PATTERN_COLUMNS": "stratforge.discovery.patterns",
}

__all__ = ["DEFAULT_HIERARCHY", "PATTERN_COLUMNS", "DiscoveryResult", "LevelReport",
           "discover_patterns"]


def __getattr__(name: str) -> Any:
    """Import the submodule that defines ``name`` on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
