"""The intraday variance profile of the bar-path engine, per sub-step of each trade date.

A day session (a stock exchange's regular hours) takes the U-shape of the tick engine's core
hours. A long session (FX 24x5, crypto 24/7, CME Globex) is busier while the big financial
centres are open: the variance weight of a step is ``1 + w * sum(share of each centre open
at the step's middle)``, with ``w`` = ``PathModel.centre_weight`` for markets that rest on
some days and the mild ``always_open_centre_weight`` for markets that never close.
"""

from __future__ import annotations

from datetime import time

import numpy as np

from stratforge.data.synthetic.calendar import SessionDays, local_seconds
from stratforge.data.synthetic.model import MarketModel, PathModel
from stratforge.data.synthetic.profile import intraday_profile
from stratforge.sessions import Session

CENTRES: tuple[tuple[str, time, time, float], ...] = (
    ("Asia/Tokyo", time(9, 0), time(15, 0), 0.5),
    ("Europe/London", time(8, 0), time(16, 30), 1.0),
    ("America/New_York", time(8, 0), time(17, 0), 1.0),
)
"""Financial centres: time zone, local opening hours and relative weight."""


class StepProfiles:
    """Variance shares per sub-step (summing to one) for each trade date of a calendar."""

    def __init__(self, session: Session, calendar: SessionDays, step_seconds: int,
                 model: PathModel) -> None:
        self._calendar = calendar
        self._step = step_seconds
        self._model = model
        self._day_session = bool(np.all(
            calendar.close_s - calendar.open_s <= model.day_session_hours * 3600))
        self._weight = (model.centre_weight if len(set(session.weekdays)) < 7
                        else model.always_open_centre_weight)
        self._known: dict[tuple[int, ...], np.ndarray] = {}
        dates = np.asarray(calendar.dates, dtype="datetime64[D]")
        self._centre_hours = [
            (local_seconds(zone, dates, opens), local_seconds(zone, dates, closes), share)
            for zone, opens, closes, share in CENTRES] if not self._day_session else []

    def shares(self, day: int) -> np.ndarray:
        """Variance share of every sub-step of trade date ``day`` (index into the calendar)."""
        cal = self._calendar
        open_s, length = int(cal.open_s[day]), int(cal.close_s[day] - cal.open_s[day])
        if self._day_session:
            key = (length, int(cal.core_start[day]), int(cal.core_end[day]))
        else:
            key = (length, *(int(x) for start, end, _ in self._centre_hours
                             for x in (start[day] - open_s, end[day] - open_s)))
        if key not in self._known:
            self._known[key] = self._day_shares(key)
        return self._known[key]

    def _day_shares(self, key: tuple[int, ...]) -> np.ndarray:
        length, step = key[0], self._step
        first = np.arange(0, length, step)
        if self._day_session:
            per_second = intraday_profile(length, key[1], key[2], MarketModel()).variance_share
            return np.add.reduceat(per_second, first)
        middle = np.minimum(first + step / 2, length)
        weight = np.ones(len(first))
        for k, (_, _, share) in enumerate(self._centre_hours):
            start, end = key[1 + 2 * k], key[2 + 2 * k]
            weight += self._weight * share * ((middle >= start) & (middle < end))
        return weight / weight.sum()
