"""Parameter-region presets: the boxes of exit parameters the designer can propose.

Every preset starts from the house default space of the timeframe (``search.space.
default_space``, without ``cost_points``: costs are fixed by the spec, never optimised):

- ``default``: the whole default range of every parameter;
- ``tight``: the lower half of every range, ``[low, mid]``;
- ``wide``: the upper half, ``[mid, high]``;

where ``mid = floor((low + high) / 2)`` for whole-number parameters and the midpoint for the
others. Both halves satisfy the space's repair rule (a target can sit above the stop, the
wide trail is never below the tight one), which the spec checks again when it is built.
"""

from __future__ import annotations

import math

from stratforge.errors import ConfigError
from stratforge.search.space import default_space

REGION_NAMES: tuple[str, ...] = ("default", "tight", "wide")
"""Preset names, in the order the designer tries them within one arm."""
_EXIT_DEFAULTS = ("stop_ticks", "target_ticks", "trail_tight_ticks", "trail_wide_ticks",
                  "trail_activation_ticks", "max_hold_bars")


def region_bounds(name: str, timeframe: str) -> dict[str, list[float]]:
    """The bounds of preset ``name`` on ``timeframe`` (``{parameter: [low, high]}``)."""
    if name not in REGION_NAMES:
        raise ConfigError(f"region.name {name!r} is not a preset; presets: "
                          f"{', '.join(REGION_NAMES)} (or give region.bounds for a custom "
                          "region)")
    out = {}
    for p in default_space(timeframe, names=_EXIT_DEFAULTS).parameters:
        low, high = float(p.low), float(p.high)
        mid = math.floor((low + high) / 2) if p.kind == "int" else (low + high) / 2
        out[p.name] = {"default": [low, high], "tight": [low, float(mid)],
                       "wide": [float(mid), high]}[name]
    return out
