"""Per-bar session flags: on which bars a position must be flat by the close.

``session_last[j]`` is True when bar j is the last bar that starts before its trade date's
flat time (the next bar starts at or after that flat time, or belongs to a later trade date),
or when bar j itself starts at or after the flat time. Flat times come from
``Session.trade_days``, so an exchange calendar's early close brings that day's flat forward.

Two cases flag nothing at all:

- a session without a daily flat (``Session.flat`` is None, 24/7 crypto): positions are held
  across trade dates, and only the last bar of the data ends one (the kernel's ``end`` rule);
- daily or coarser bars: one bar spans a whole trade date, so there is no bar before the flat
  to exit on, and holding across days is the point of a daily strategy. The bar size is
  ``bar_seconds`` when the caller knows it, else the smallest step between consecutive bar
  starts; one day or more (``DAILY_MIN_STEP_SECONDS``: a daily series steps at least 23 hours,
  across a daylight-saving change, and the coarsest intraday timeframe steps 12) counts.

The simulator exits at ``close[j]`` of the first flagged bar it checks (reason ``session``)
and opens no position whose signal or fill bar range contains a flagged bar. Computed once per
bars frame, vectorised, outside numba.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

import numpy as np
import pandas as pd

from stratforge.sessions import NS_PER_SECOND, Session, TradeDays

DAILY_MIN_STEP_SECONDS = 20 * 3600
"""Bars whose size (or smallest step) is at least this are daily or coarser: no flags."""
ONE_DAY_SECONDS = 86_400


@lru_cache(maxsize=64)
def _calendar(session: Session, first: date, last: date) -> TradeDays:
    return session.trade_days(first, last)


def is_daily_or_coarser(ts_ns: np.ndarray, bar_seconds: float | None = None) -> bool:
    """True when bars of size ``bar_seconds`` (or, if None, inferred from the smallest step
    between the bar starts ``ts_ns``) span a whole trade date or more."""
    if bar_seconds is not None:
        return bar_seconds >= ONE_DAY_SECONDS
    if len(ts_ns) < 2:
        return False
    return int(np.diff(ts_ns).min()) >= DAILY_MIN_STEP_SECONDS * NS_PER_SECOND


def session_last_flags(ts_ns: np.ndarray, session: Session, *,
                       bar_seconds: float | None = None) -> np.ndarray:
    """Boolean flag per bar (see module docstring) for bar start times ``ts_ns`` (UTC ns).

    ``bar_seconds`` is the bar size when known (a timeframe's seconds); None infers it."""
    ts = np.asarray(ts_ns, dtype=np.int64)
    n = len(ts)
    if n == 0 or not session.has_flat or is_daily_or_coarser(ts, bar_seconds):
        return np.zeros(n, dtype=np.bool_)
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
