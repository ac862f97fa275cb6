"""Resampling bars into coarser timeframes along the instrument's session.

Bar timestamps are the *start* of the bar's interval. Intraday buckets are anchored at the
session open of the bar's trade date and never straddle a trade-date boundary (a bucket that
would start before the trade date's first instant starts at that instant instead). ``1D`` bars
start at the trade date's first instant (for CME futures 17:00 America/Chicago the evening
before) and ``1W`` bars at the first instant of the Monday trade date of the trade date's ISO
week. Aggregation: open first, high max, low min, close last, volume sum; empty buckets give
no bar.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pandas as pd

from stratforge.data.bars import bars_from_arrays, ts_ns
from stratforge.sessions import Session, TradeDays
from stratforge.timeframes import Timeframe

_ONE_DAY = 86_400
_ONE_WEEK = 7 * 86_400


@dataclass(frozen=True)
class BarArrays:
    """Bars as plain numpy arrays (``ts`` in UTC epoch nanoseconds)."""

    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    @classmethod
    def from_frame(cls, bars: pd.DataFrame) -> BarArrays:
        """Arrays of a canonical bars frame."""
        return cls(ts_ns(bars), *(bars[c].to_numpy(dtype=np.float64)
                                  for c in ("open", "high", "low", "close", "volume")))

    def to_frame(self) -> pd.DataFrame:
        """A canonical bars frame of these arrays."""
        return bars_from_arrays(self.ts, self.open, self.high, self.low, self.close, self.volume)

    def __len__(self) -> int:
        return len(self.ts)

    @classmethod
    def empty(cls) -> BarArrays:
        """Bars with no rows."""
        return cls(np.empty(0, dtype=np.int64), *(np.empty(0) for _ in range(5)))

    @classmethod
    def concat(cls, parts: list[BarArrays]) -> BarArrays:
        """The rows of ``parts`` one after the other (no sorting)."""
        if not parts:
            return cls.empty()
        if len(parts) == 1:
            return parts[0]
        return cls(*(np.concatenate(columns) for columns in zip(
            *((p.ts, p.open, p.high, p.low, p.close, p.volume) for p in parts), strict=True)))

    def take(self, mask_or_slice: np.ndarray | slice) -> BarArrays:
        """The rows selected by a boolean mask or a slice."""
        return BarArrays(*(a[mask_or_slice] for a in (self.ts, self.open, self.high, self.low,
                                                       self.close, self.volume)))


def calendar_for(ts: np.ndarray, session: Session) -> TradeDays:
    """A trade-day calendar covering ``ts`` with room for weekly buckets (a week before)."""
    lo = pd.Timestamp(int(ts.min()), tz="UTC").date() - timedelta(days=9)
    hi = pd.Timestamp(int(ts.max()), tz="UTC").date() + timedelta(days=2)
    return session.trade_days(lo, hi)


def bucket_starts(ts: np.ndarray, timeframe: Timeframe, calendar: TradeDays) -> np.ndarray:
    """UTC ns start of the ``timeframe`` bar each timestamp belongs to (see module docstring)."""
    day = calendar.index_of(ts)
    if np.any(day < 0) or np.any(day >= len(calendar.dates)):
        raise ValueError("calendar does not cover the timestamps")
    day_start = calendar.day_start[day]
    if timeframe.intraday:
        anchor = calendar.session_open[day]
        step = timeframe.nanoseconds
        return np.maximum(anchor + np.floor_divide(ts - anchor, step) * step, day_start)
    if timeframe.seconds == _ONE_DAY:
        return day_start
    if timeframe.seconds == _ONE_WEEK:
        days = calendar.dates[day].astype(np.int64)
        monday = days - (days + 3) % 7  # 1970-01-01 was a Thursday
        first = calendar.dates[0].astype(np.int64)
        return calendar.day_start[monday - first]
    raise ValueError(f"unsupported timeframe {timeframe}")


def bar_end_times(ts: np.ndarray, timeframe: Timeframe, session: Session) -> np.ndarray:
    """UTC ns instant by which each bar (given by its start ``ts``) is certainly complete.

    Intraday: start + duration, but no later than the next trade date's first instant.
    ``1D``: the next trade date's first instant. ``1W``: the first instant of the trade date
    seven days after the week's Monday. A value known "as of the completed bar" may be used
    from this instant on, never earlier: that is what keeps as-of joins free of lookahead.
    """
    if len(ts) == 0:
        return ts.copy()
    calendar = session.trade_days(
        pd.Timestamp(int(ts.min()), tz="UTC").date() - timedelta(days=2),
        pd.Timestamp(int(ts.max()), tz="UTC").date() + timedelta(days=10))
    day = calendar.index_of(ts)
    next_day_start = calendar.day_start[day + 1]
    if timeframe.intraday:
        return np.minimum(ts + timeframe.nanoseconds, next_day_start)
    if timeframe.seconds == _ONE_DAY:
        return next_day_start
    if timeframe.seconds == _ONE_WEEK:
        return calendar.day_start[day + 7]
    raise ValueError(f"unsupported timeframe {timeframe}")


def aggregate(bars: BarArrays, buckets: np.ndarray) -> BarArrays:
    """OHLCV of each run of equal, non-decreasing bucket starts."""
    n = len(buckets)
    if n == 0:
        return bars.take(slice(0, 0))
    change = np.flatnonzero(buckets[1:] != buckets[:-1]) + 1
    starts = np.concatenate(([0], change))
    last = np.concatenate((change, [n])) - 1
    return BarArrays(
        ts=buckets[starts],
        open=bars.open[starts],
        high=np.maximum.reduceat(bars.high, starts),
        low=np.minimum.reduceat(bars.low, starts),
        close=bars.close[last],
        volume=np.add.reduceat(bars.volume, starts),
    )


def resample_arrays(bars: BarArrays, timeframe: Timeframe, session: Session,
                    calendar: TradeDays | None = None) -> BarArrays:
    """Resample sorted bar arrays into ``timeframe`` bars."""
    if len(bars) == 0:
        return bars
    cal = calendar if calendar is not None else calendar_for(bars.ts, session)
    return aggregate(bars, bucket_starts(bars.ts, timeframe, cal))


def resample_bars(bars: pd.DataFrame, timeframe: Timeframe, session: Session) -> pd.DataFrame:
    """Resample canonical bars into ``timeframe`` bars along ``session``."""
    return resample_arrays(BarArrays.from_frame(bars), timeframe, session).to_frame()


def nests_into(fine: Timeframe, coarse: Timeframe) -> bool:
    """True when every ``fine`` bar lies inside exactly one ``coarse`` bar."""
    if fine >= coarse:
        return False
    if coarse.intraday:
        return coarse.seconds % fine.seconds == 0
    return fine.intraday or fine.seconds == _ONE_DAY


def resample_chain(base: BarArrays, base_timeframe: Timeframe, targets: list[Timeframe],
                   session: Session) -> dict[Timeframe, BarArrays]:
    """Every target timeframe, each built from the coarsest finer one it nests into.

    Building 1W from 1D from 4h ... is much faster than from the base, and identical because
    the buckets nest (same anchor, same trade-date clipping).
    """
    built: dict[Timeframe, BarArrays] = {base_timeframe: base}
    if len(base) == 0:
        return {tf: base for tf in targets}
    calendar = calendar_for(base.ts, session)
    for target in sorted(targets):
        if target in built:
            continue
        source = max(tf for tf in built if tf == base_timeframe or nests_into(tf, target))
        built[target] = resample_arrays(built[source], target, session, calendar)
    return {tf: built[tf] for tf in targets}
