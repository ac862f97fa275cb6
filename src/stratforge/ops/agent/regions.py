"""Parameter-region presets: the boxes of exit parameters the designer can propose.

Every preset starts from the house default space of the timeframe (``search.space.
default_space``) in volatility units: stop, target, trail and widen-threshold ranges are
multiples of the timeframe's yardstick (the median true range in ticks of the agent's
training-span bars, ``search.space.measure_yardstick``) resolved to ticks (the widen
threshold to price units); max hold in bars. A region never holds a cost: costs are the
instrument's cost model (with the spec's overrides), never optimised.

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
from stratforge.search.space import DEFAULT_ORDER, default_space

REGION_NAMES: tuple[str, ...] = ("default", "tight", "wide")
"""Preset names, in the order the designer tries them within one arm."""


def region_bounds(name: str, timeframe: str, *, yardstick_ticks: float,
                  tick_size: float) -> dict[str, list[float]]:
    """The bounds of preset ``name`` on ``timeframe`` (``{parameter: [low, high]}``), the
    default space resolved with the timeframe's yardstick (``yardstick_ticks``, measured on
    the training span) and the instrument's ``tick_size``."""
    if name not in REGION_NAMES:
        raise ConfigError(f"region.name {name!r} is not a preset; presets: "
                          f"{', '.join(REGION_NAMES)} (or give region.bounds for a custom "
                          "region)")
    out = {}
    space = default_space(timeframe, yardstick_ticks=yardstick_ticks, tick_size=tick_size,
                          names=DEFAULT_ORDER)
    for p in space.parameters:
        low, high = float(p.low), float(p.high)
        mid = math.floor((low + high) / 2) if p.kind == "int" else (low + high) / 2
        out[p.name] = {"default": [low, high], "tight": [low, float(mid)],
                       "wide": [float(mid), high]}[name]
    return out
