"""Which trade dates the synthetic market covers and where each one's core hours lie."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time, timedelta

import numpy as np
import pandas as pd

from stratforge.data.synthetic.model import MarketModel
from stratforge.sessions import NS_PER_SECOND, Session

# Local cash-market hours of the big exchange time zones: the "core" of a longer session.
CORE_HOURS: dict[str, tuple[time, time]] = {
    "America/Chicago": (time(8, 30), time(15, 0)),
    "America/New_York": (time(9, 30), time(16, 0)),
    "Europe/London": (time(8, 0), time(16, 30)),
    "Europe/Berlin": (time(9, 0), time(17, 30)),
    "Europe/Paris": (time(9, 0), time(17, 30)),
    "Europe/Amsterdam": (time(9, 0), time(17, 30)),
    "Europe/Zurich": (time(9, 0), time(17, 30)),
    "Asia/Tokyo": (time(9, 0), time(15, 0)),
    "Asia/Hong_Kong": (time(9, 30), time(16, 0)),
    "Australia/Sydney": (time(10, 0), time(16, 0)),
}
_GENERIC_CORE = (7.5 * 3600, 1.0 * 3600)  # core = [close - 7.5 h, close - 1 h] of long sessions


@dataclass(frozen=True)
class SessionDays:
    """The trade dates of a synthetic market, as plain arrays (one entry per trade date).

    Times are UTC epoch seconds; ``core_start``/``core_end`` count seconds from the session
    open; ``break_seconds`` is the time since the previous trading day's close;
    ``day_start_s`` is the trade date's first instant (where ``stratforge.data.resample``
    starts the date's 1D bar).
    """

    dates: list[date]
    open_s: np.ndarray
    close_s: np.ndarray
    core_start: np.ndarray
    core_end: np.ndarray
    break_seconds: np.ndarray
    day_start_s: np.ndarray

    def __len__(self) -> int:
        return len(self.dates)


def session_days(session: Session, start: date, days: int, model: MarketModel) -> SessionDays:
    """The first ``days`` trading days of ``session`` on or after ``start``."""
    per_week = len(session.weekdays)
    span = 7 * (days // per_week + 2) + 10
    first = start - timedelta(days=10)  # room for the trading day before ``start``
    while True:  # widen the span until it holds ``days`` trading days (holidays skip some)
        cal = session.trade_days(first, start + timedelta(days=span))
        trading = np.flatnonzero(cal.is_trading_day)
        chosen = trading[cal.dates[trading] >= np.datetime64(start, "D")][:days]
        if len(chosen) == days:
            break
        span += 7 * ((days - len(chosen)) // per_week + 2)
    previous = trading[np.searchsorted(trading, chosen) - 1]
    open_s = cal.session_open[chosen] // NS_PER_SECOND
    close_s = cal.session_close[chosen] // NS_PER_SECOND
    dates = [d.astype(object) for d in cal.dates[chosen]]
    core_start, core_end = core_window(session, cal.dates[chosen], open_s, close_s, model)
    return SessionDays(dates=dates, open_s=open_s, close_s=close_s, core_start=core_start,
                       core_end=core_end,
                       break_seconds=open_s - cal.session_close[previous] // NS_PER_SECOND,
                       day_start_s=cal.day_start[chosen] // NS_PER_SECOND)


def core_window(session: Session, dates: np.ndarray, open_s: np.ndarray, close_s: np.ndarray,
                model: MarketModel) -> tuple[np.ndarray, np.ndarray]:
    """Seconds from the open at which each date's core (regular trading) hours start and end.

    The core is the local cash-market hours of the session's time zone (``CORE_HOURS``) when
    they lie inside that date's session; otherwise the whole session when it lasts at most
    ``model.core_max_session_hours``, else the 6.5 hours ending one hour before the close
    (for CME Globex both give 08:30-15:00 America/Chicago).
    """
    length = close_s - open_s
    long_session = length > model.core_max_session_hours * 3600
    start = np.where(long_session, length - _GENERIC_CORE[0], 0).astype(np.int64)
    end = np.where(long_session, length - _GENERIC_CORE[1], length).astype(np.int64)
    hours = CORE_HOURS.get(session.timezone)
    if hours is not None:
        local_open = local_seconds(session.timezone, dates, hours[0]) - open_s
        local_close = local_seconds(session.timezone, dates, hours[1]) - open_s
        inside = (local_open >= 0) & (local_open < local_close) & (local_close <= length)
        start = np.where(inside, local_open, start)
        end = np.where(inside, local_close, end)
    return start, end


def local_seconds(timezone: str, dates: np.ndarray, at: time) -> np.ndarray:
    """UTC epoch seconds of clock time ``at`` in ``timezone`` on each date."""
    local = pd.DatetimeIndex(dates.astype("datetime64[ns]")) + pd.Timedelta(
        hours=at.hour, minutes=at.minute, seconds=at.second)
    stamped = local.tz_localize(timezone, nonexistent="shift_forward",
                                ambiguous=np.ones(len(local), dtype=bool))
    return stamped.tz_convert("UTC").as_unit("ns").asi8 // NS_PER_SECOND
