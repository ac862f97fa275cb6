"""Field-engine features: per-bar states of one timeframe and multi-timeframe feature vectors.

``compute_states(bars)`` turns canonical bars into the field engine's states (regression
centre and sigmas, Hurst exponent, z, forces, wave function, zone, trend, ADX/DMI, structure and
cascade flags); ``feature_vectors(states_by_tf, hierarchy, session=...)`` joins the states of a
timeframe hierarchy into the 14 template dimensions named by ``FEATURE_NAMES``. Every
template dimension is scale-free; with ``tick_size`` the states come from prices in ticks, so
the same market at another price level gives bit-identical dimensions. See docs/features.md.
"""

from stratforge.features.states import STATE_COLUMNS, TRENDS, ZONES, compute_states
from stratforge.features.vectors import FEATURE_NAMES, feature_vectors

__all__ = [
    "FEATURE_NAMES",
    "STATE_COLUMNS",
    "TRENDS",
    "ZONES",
    "compute_states",
    "feature_vectors",
]
