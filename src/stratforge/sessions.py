"""Trading sessions: time zone, open, close and daily flat time, and the trade-date calendar.

A *trade date* D is the day a bar is booked to. For an overnight session (open after close in
clock time, such as CME Globex 17:00-16:00 America/Chicago) trade date D starts at the open on
the calendar day before D, so the trade date rolls at the open. For a day session (US equities
09:30-16:00) trade date D runs from local midnight to local midnight.

A session may name an exchange calendar of the ``exchange_calendars`` library (``CMES`` for
CME Globex equity futures, ``XNYS`` for US equities). Its holidays are not trading days and its
early closes move that trade date's close, and the daily flat by the same margin the regular
flat keeps before the regular close. The calendar covers ``CALENDAR_FIRST`` to
``CALENDAR_LAST`` (or the library's own limits, if narrower); dates outside that range follow
the plain weekday rule.
"""

from __future__ import annotations

import difflib
import warnings
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from stratforge.errors import ConfigError

NS_PER_SECOND = 1_000_000_000
NS_PER_DAY = 86_400 * NS_PER_SECOND
NO_FLAT = np.iinfo(np.int64).max
"""The ``TradeDays.flat`` value of a session with no daily flat (never reached)."""
CALENDAR_FIRST = date(2000, 1, 1)
CALENDAR_LAST = date(2035, 12, 31)
"""The span of exchange-calendar dates loaded (fixed, so results do not depend on today)."""


@dataclass(frozen=True)
class ExchangeCalendar:
    """One exchange calendar's sessions and early closes as sorted arrays, for fast lookups.

    ``sessions`` are the library's session labels (trade dates: an overnight CME session is
    labelled with the date it closes on); ``early_close`` is the UTC ns close of each date in
    ``early_dates``.
    """

    name: str
    first: np.datetime64
    last: np.datetime64
    sessions: np.ndarray      # datetime64[D], sorted
    early_dates: np.ndarray   # datetime64[D], sorted
    early_close: np.ndarray   # int64 UTC ns

    def covers(self, dates: np.ndarray) -> np.ndarray:
        """True for each date inside the calendar's range."""
        return (dates >= self.first) & (dates <= self.last)

    def is_session(self, dates: np.ndarray) -> np.ndarray:
        """True for each date the exchange trades (False outside the range too)."""
        return _member(self.sessions, dates)

    def early_closes(self, dates: np.ndarray) -> np.ndarray:
        """UTC ns of each date's early close, ``NO_FLAT`` where the date closes normally."""
        at = np.searchsorted(self.early_dates, dates)
        hit = _member(self.early_dates, dates)
        out = np.full(len(dates), NO_FLAT, dtype=np.int64)
        out[hit] = self.early_close[at[hit]]
        return out


def _member(sorted_days: np.ndarray, dates: np.ndarray) -> np.ndarray:
    at = np.minimum(np.searchsorted(sorted_days, dates), max(len(sorted_days) - 1, 0))
    return sorted_days[at] == dates if len(sorted_days) else np.zeros(len(dates), dtype=bool)


def calendar_names() -> list[str]:
    """Every exchange calendar name the library offers (aliases included), sorted."""
    import exchange_calendars

    return sorted(exchange_calendars.get_calendar_names(include_aliases=True))


def check_calendar_name(name: str) -> str:
    """``name`` if the library offers that calendar, else a ConfigError naming similar ones."""
    names = calendar_names()
    if name in names:
        return name
    by_upper = {n.upper(): n for n in names}
    close = difflib.get_close_matches(name.upper(), list(by_upper), n=4, cutoff=0.5)
    hint = (f"did you mean {', '.join(by_upper[c] for c in close)}? " if close else "")
    raise ConfigError(
        f"unknown exchange calendar {name!r}; {hint}for example CMES (CME Globex equity "
        f"futures), XNYS (NYSE), XNAS, XLON, XETR, XTKS ({len(names)} names in the "
        "exchange_calendars library: exchange_calendars.get_calendar_names())")


@lru_cache(maxsize=16)
def exchange_calendar(name: str) -> ExchangeCalendar:
    """The named exchange calendar, loaded once per process (see ``CALENDAR_FIRST``)."""
    import exchange_calendars

    check_calendar_name(name)
    with warnings.catch_warnings():
        # the library trips pandas deprecation warnings that are not ours to act on
        warnings.simplefilter("ignore")
        try:
            source = exchange_calendars.get_calendar(name, start=CALENDAR_FIRST.isoformat(),
                                                     end=CALENDAR_LAST.isoformat())
        except ValueError:  # the library's own bounds are narrower: take its default span
            source = exchange_calendars.get_calendar(name)
        sessions = source.sessions
        early = source.early_closes
        closes = source.schedule["close"]
    early_close = pd.DatetimeIndex(closes.loc[early]).as_unit("ns").asi8.astype(np.int64)
    return ExchangeCalendar(
        name=name, first=np.datetime64(sessions[0].date(), "D"),
        last=np.datetime64(sessions[-1].date(), "D"),
        sessions=sessions.values.astype("datetime64[D]"),
        early_dates=early.values.astype("datetime64[D]"), early_close=early_close)


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
    ``calendar`` names an ``exchange_calendars`` calendar (``CMES``, ``XNYS``) whose holidays
    and early closes apply (see the module docstring); ``None``: weekdays only.
    """

    timezone: str
    open: time
    close: time
    flat: time | None
    weekdays: tuple[int, ...] = field(default=(0, 1, 2, 3, 4))  # trade dates Mon..Fri
    calendar: str | None = None

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(
                f"session time zone {self.timezone!r} is not a known IANA zone "
                "(use a name such as 'America/Chicago')") from exc
        if not self.weekdays or any(not 0 <= d <= 6 for d in self.weekdays):
            raise ConfigError(f"session weekdays {self.weekdays!r} must be numbers 0 (Mon) to 6")
        if self.calendar is not None and (not isinstance(self.calendar, str)
                                          or not self.calendar):
            raise ConfigError(f"session calendar {self.calendar!r} must be a calendar name "
                              "such as 'XNYS' or 'CMES', or None")

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
        """Boundaries of every trade date from ``first`` to ``last`` inclusive.

        With a ``calendar``, exchange holidays are not trading days and an early close moves
        ``session_close`` to it and ``flat`` earlier by the regular close-to-flat margin."""
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
        trading = np.isin(days.day_of_week.to_numpy(), self.weekdays)
        if self.calendar is not None:
            exchange = exchange_calendar(self.calendar)
            trading &= ~exchange.covers(dates) | exchange.is_session(dates)
            early = exchange.early_closes(dates)
            shorter = early < session_close
            if self.flat is not None:
                margin = session_close - flat  # the regular flat's lead on the close, per day
                flat = np.where(shorter, np.minimum(flat, early - margin), flat)
            session_close = np.where(shorter, early, session_close)
        return TradeDays(dates=dates, day_start=day_start, session_open=session_open,
                         session_close=session_close, flat=flat, is_trading_day=trading)

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

    def hours(self) -> str:
        """Open-close, time zone and trade weekdays, e.g. '17:00-16:00 America/Chicago
        (overnight)' or '00:00-00:00 UTC, every day'."""
        kind = " (overnight)" if self.overnight else ""
        days = "" if tuple(self.weekdays) == (0, 1, 2, 3, 4) else (
            ", every day" if len(set(self.weekdays)) == 7 else
            f", weekdays {','.join(str(d) for d in self.weekdays)}")
        return f"{self.open:%H:%M}-{self.close:%H:%M} {self.timezone}{kind}{days}"

    def flat_text(self) -> str:
        """'flat 15:55', or 'no daily flat'."""
        return f"flat {self.flat:%H:%M}" if self.flat is not None else "no daily flat"

    def describe(self) -> str:
        """One line such as '17:00-16:00 America/Chicago (overnight), flat 15:55, calendar
        CMES'."""
        calendar = f", calendar {self.calendar}" if self.calendar else ""
        return f"{self.hours()}, {self.flat_text()}{calendar}"

CME_GLOBEX = Session("America/Chicago", time(17, 0), time(16, 0), time(15, 55),
                     calendar="CMES")
US_EQUITY_RTH = Session("America/New_York", time(9, 30), time(16, 0), time(15, 55),
                        calendar="XNYS")
FX_24X5 = Session("America/New_York", time(17, 0), time(17, 0), time(16, 55))
CRYPTO_24X7 = Session("UTC", time(0, 0), time(0, 0), None, (0, 1, 2, 3, 4, 5, 6))

SESSION_PRESETS: dict[str, Session] = {
    "cme_globex": CME_GLOBEX,
    "us_equity_rth": US_EQUITY_RTH,
    "fx_24x5": FX_24X5,
    "crypto_24x7": CRYPTO_24X7,
}
