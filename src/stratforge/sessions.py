"""Trading sessions: time zone, open, close and daily flat time, and the trade-date calendar.

A *trade date* D is the day a bar is booked to. For an overnight session (open after close in
clock time, such as CME Globex 17:00-16:00 America/Chicago) trade date D starts at the open on
the calendar day before D, so the trade date rolls at the open. For a day session (US equities
09:30-16:00) trade date D runs from local midnight to local midnight.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from stratforge.errors import ConfigError

NS_PER_SECOND = 1_000_000_000
NS_PER_DAY = 86_400 * NS_PER_SECOND
NO_FLAT = np.iinfo(np.int64).max
"""The ``TradeDays.flat`` value of a session with no daily flat (never reached)."""


@dataclass(frozen=True)
class TradeDays:
    """Calendar of consecutive trade dates with their boundaries as UTC epoch nanoseconds.

    ``dates`` covers every calendar day in the span (weekends included, flagged by
    ``is_trading_day``) so that ``day_start`` tiles time without holes.
    """

    dates: np.ndarray          # datetime64[D]
    day_start: np.ndarray      # int64 ns: first instant booked to the trade date
    session_open: np.ndarray   # int64 ns
    session_close: np.ndarray  # int64 ns
    flat: np.ndarray           # int64 ns: time by which positions are flat (int64 max: none)
    is_trading_day: np.ndarray  # bool

    def index_of(self, ts_ns: np.ndarray) -> np.ndarray:
        """Index into ``dates`` of the trade date each timestamp (UTC ns) is booked to."""
        return np.searchsorted(self.day_start, ts_ns, side="right") - 1


@dataclass(frozen=True)
class Session:
    """When an instrument trades, in its exchange's time zone.

    ``flat`` is the time by which positions are closed each trade date; ``None`` means the
    market has no daily flat (24/7 crypto): positions are held across trade dates.
    """

    timezone: str
    open: time
    close: time
    flat: time | None
    weekdays: tuple[int, ...] = field(default=(0, 1, 2, 3, 4))  # trade dates Mon..Fri

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(
                f"session time zone {self.timezone!r} is not a known IANA zone "
                "(use a name such as 'America/Chicago')") from exc
        if not self.weekdays or any(not 0 <= d <= 6 for d in self.weekdays):
            raise ConfigError(f"session weekdays {self.weekdays!r} must be numbers 0 (Mon) to 6")

    @property
    def has_flat(self) -> bool:
        """True when positions must be flat at a daily time."""
        return self.flat is not None

    @property
    def overnight(self) -> bool:
        """True when the session opens on the calendar day before its trade date.

        A session that opens and closes at local midnight (24/7 crypto in UTC) is a whole-day
        session, not an overnight one: trade date D runs from D 00:00 to D+1 00:00."""
        if self.open == self.close:
            return self.open != time(0)
        return self.open > self.close

    def trade_days(self, first: date, last: date) -> TradeDays:
        """Boundaries of every trade date from ``first`` to ``last`` inclusive."""
        if last < first:
            first, last = last, first
        days = pd.date_range(pd.Timestamp(first), pd.Timestamp(last), freq="D")
        before = -1 if self.overnight else 0
        day_start = self._local_to_utc(days, before, self.open if self.overnight else time(0))
        session_open = self._local_to_utc(days, before, self.open)
        close_day = 1 if (not self.overnight and self.close <= self.open) else 0
        session_close = self._local_to_utc(days, close_day, self.close)
        if self.flat is None:
            flat = np.full(len(days), NO_FLAT, dtype=np.int64)
        else:
            flat_day = before if (self.overnight and self.flat >= self.open) else 0
            flat = self._local_to_utc(days, flat_day, self.flat)
        dates = days.values.astype("datetime64[D]")
        weekday = days.day_of_week.to_numpy()
        return TradeDays(dates=dates, day_start=day_start, session_open=session_open,
                         session_close=session_close, flat=flat,
                         is_trading_day=np.isin(weekday, self.weekdays))

    def trade_days_covering(self, ts_ns: np.ndarray) -> TradeDays:
        """A trade-day calendar wide enough to book every timestamp in ``ts_ns``."""
        lo = pd.Timestamp(int(ts_ns.min()), tz="UTC").date() - timedelta(days=2)
        hi = pd.Timestamp(int(ts_ns.max()), tz="UTC").date() + timedelta(days=2)
        return self.trade_days(lo, hi)

    def _local_to_utc(self, days: pd.DatetimeIndex, day_offset: int, at: time) -> np.ndarray:
        local = days + pd.Timedelta(days=day_offset, hours=at.hour, minutes=at.minute,
                                    seconds=at.second)
        stamped = local.tz_localize(self.timezone, nonexistent="shift_forward",
                                    ambiguous=np.ones(len(local), dtype=bool))
        return stamped.tz_convert("UTC").as_unit("ns").asi8.astype(np.int64)

    def describe(self) -> str:
        """One line such as '17:00-16:00 America/Chicago (overnight), flat 15:55'."""
        kind = " (overnight)" if self.overnight else ""
        days = "" if tuple(self.weekdays) == (0, 1, 2, 3, 4) else (
            ", every day" if len(set(self.weekdays)) == 7 else
            f", weekdays {','.join(str(d) for d in self.weekdays)}")
        flat = f"flat {self.flat:%H:%M}" if self.flat is not None else "no daily flat"
        return f"{self.open:%H:%M}-{self.close:%H:%M} {self.timezone}{kind}{days}, {flat}"


CME_GLOBEX = Session("America/Chicago", time(17, 0), time(16, 0), time(15, 55))
US_EQUITY_RTH = Session("America/New_York", time(9, 30), time(16, 0), time(15, 55))
FX_24X5 = Session("America/New_York", time(17, 0), time(17, 0), time(16, 55))
CRYPTO_24X7 = Session("UTC", time(0, 0), time(0, 0), None, (0, 1, 2, 3, 4, 5, 6))

SESSION_PRESETS: dict[str, Session] = {
    "cme_globex": CME_GLOBEX,
    "us_equity_rth": US_EQUITY_RTH,
    "fx_24x5": FX_24X5,
    "crypto_24x7": CRYPTO_24X7,
}
