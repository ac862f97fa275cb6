"""Prices in ticks: the scale-free form of a price series on its instrument's tick grid.

Multiplying every price and the tick size by the same constant leaves ``price / tick``
unchanged up to rounding. For prices on the tick grid ``prices_in_ticks`` snaps each quotient
to the nearest whole number, so a market and the same market at 1000x its price level (and
1000x its tick) give **bit-identical** inputs to every feature kernel, and no equality test
(a tie between an up and a down move, a cascade exactly at its threshold) can flip with the
price level. Off-grid prices (adjusted equity closes, mid prices) keep their exact quotient.
"""

from __future__ import annotations

import math

import numpy as np

from stratforge.errors import ConfigError

SNAP_TICKS = 1e-6
"""A quotient within this many ticks of a whole number (plus 1e-12 of its size) is snapped."""
_SNAP_RELATIVE = 1e-12


def check_tick_size(tick_size: float, where: str) -> float:
    """``tick_size`` as a float; ConfigError unless it is finite and positive."""
    value = float(tick_size)
    if not (math.isfinite(value) and value > 0.0):
        raise ConfigError(f"{where}: tick_size must be a finite positive price step, got "
                          f"{tick_size!r}; take it from the instrument (instruments.yaml)")
    return value


def prices_in_ticks(prices: np.ndarray, tick_size: float) -> np.ndarray:
    """``prices / tick_size`` as float64, each value within ``SNAP_TICKS`` (plus a relative
    1e-12) of a whole number replaced by that whole number."""
    ticks = np.asarray(prices, dtype=np.float64) / tick_size
    nearest = np.rint(ticks)
    near = np.abs(ticks - nearest) <= SNAP_TICKS + _SNAP_RELATIVE * np.abs(nearest)
    return np.ascontiguousarray(np.where(near, nearest, ticks))
