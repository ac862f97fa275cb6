"""Per-bar session flags: on which bars a position must be flat by the close.

``session_last[j]`` is True when bar j is the last bar that starts before its trade date's
flat time (the next bar starts at or after that flat time, or belongs to a later trade date),
or when bar j itself starts at or after the flat time. The simulator exits at ``close[j]`` of
the first flagged bar it checks (reason ``session``) and opens no position whose signal or
fill bar range contains a flagged bar. Computed once per bars frame, vectorised, outside numba.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

import numpy as np
import pandas as pd

from stratforge.sessions import Session, TradeDays


@lru_cache(maxsize=64)
def _calendar(session: Session, first: date, last: date) -> TradeDays:
    return session.trade_days(first, last)


def session_last_flags(ts_ns: np.ndarray, session: Session) -> np.ndarray:
    """Boolean flag per bar (see module docstring) for bar start times ``ts_ns`` (UTC ns)."""
    ts = np.asarray(ts_ns, dtype=np.int64)
    n = len(ts)
    if n == 0:
        return np.zeros(0, dtype=np.bool_)
    # the same span Session.trade_days_covering uses, cached for repeated calls
    first = pd.Timestamp(int(ts.min()), tz="UTC").date() - timedelta(days=2)
    last = pd.Timestamp(int(ts.max()), tz="UTC").date() + timedelta(days=2)
    days = _calendar(session, first, last)
    trade_day = days.index_of(ts)
    flat = days.flat[trade_day]
    flags = ts >= flat
    flags[:-1] |= ts[1:] >= flat[:-1]
    flags[:-1] |= trade_day[1:] != trade_day[:-1]
    return flags
