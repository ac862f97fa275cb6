"""Which trade days a training run may trade: never, unless told, the days its template
library was clustered on.

A library's *span* ends at the later of the ``train_end`` its clustering recorded
(``library.metadata["train_end"]``: patterns before it were clustered) and the close of its
latest member pattern's bar (a member id is ``"<timeframe>:<bar ts in ns>"``; a pattern is
known at its bar's close, so a coarse bar that straddles ``train_end`` used bars after it).
A trade day whose first bar opens before that end holds bars the templates were built on: it
is *in sample* for the library. By default the trainer starts on the first day after the span
(``first_trade_day``); ``--start`` on or before it is refused unless
``--allow-library-days``, which trades those days and labels them in-sample.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from stratforge.discovery.library import TemplateLibrary
from stratforge.errors import ConfigError, DataError
from stratforge.timeframes import parse_timeframe


@dataclass(frozen=True)
class LibrarySpan:
    """Where a template library's training data ends.

    ``end_ns``: the first instant the library never saw (ns since the epoch, UTC), None when
    the library records no training end and its member ids name no bar. ``recorded``: its
    metadata's ``train_end`` (ISO text or None); ``latest_member``: the close of its latest
    member pattern's bar (ISO text or None); ``source``: where it came from.
    """

    source: str
    end_ns: int | None
    recorded: str | None
    latest_member: str | None

    @property
    def end_text(self) -> str:
        """The end as ISO text ("unknown" when not known)."""
        return "unknown" if self.end_ns is None else \
            pd.Timestamp(self.end_ns, tz="UTC").isoformat()

    def describe(self) -> str:
        """One sentence: the library, its training end and where that figure comes from."""
        if self.end_ns is None:
            return (f"the template library from {self.source} records no training end "
                    "(no train_end in its metadata and no dated member pattern)")
        parts = []
        if self.recorded is not None:
            parts.append(f"train_end {self.recorded} in its metadata")
        if self.latest_member is not None:
            parts.append(f"its latest member pattern's bar closes at {self.latest_member}")
        return (f"the template library from {self.source} was trained on data up to "
                f"{self.end_text} ({'; '.join(parts)})")

    def to_json(self) -> dict[str, object]:
        """The span as a JSON object (for the training log)."""
        return {"source": self.source, "end": None if self.end_ns is None else self.end_text,
                "recorded_train_end": self.recorded, "latest_member_close": self.latest_member}


def _member_close_ns(member_id: str) -> int | None:
    """The close of a member pattern's bar (``"<tf>:<ts ns>"``), None when the id has no
    such form."""
    name, _, stamp = member_id.rpartition(":")
    try:
        return int(stamp) + parse_timeframe(name).seconds * 10**9
    except (ValueError, KeyError, TypeError):
        return None


def library_span(library: TemplateLibrary, source: str) -> LibrarySpan:
    """The span of ``library`` (see the module docstring)."""
    raw = library.metadata.get("train_end")
    recorded = None
    ends: list[int] = []
    if raw:
        stamp = pd.Timestamp(raw)
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
        recorded = stamp.isoformat()
        ends.append(int(stamp.value))
    closes = [c for t in library for m in t.member_ids if (c := _member_close_ns(m)) is not None]
    latest = max(closes) if closes else None
    if latest is not None:
        ends.append(latest)
    return LibrarySpan(source, max(ends) if ends else None, recorded,
                       None if latest is None else pd.Timestamp(latest, tz="UTC").isoformat())


def in_library_span(day_start_ns: np.ndarray, span: LibrarySpan) -> np.ndarray:
    """Per trade day (its first bar's time in ns): whether the library saw bars of it (its
    first bar opens before the span's end; every day when the end is unknown)."""
    starts = np.asarray(day_start_ns, dtype=np.int64)
    if span.end_ns is None:
        return np.ones(len(starts), dtype=bool)
    return starts < span.end_ns


def _options(span: LibrarySpan) -> str:
    return ("pass --allow-library-days to trade them anyway (labelled in-sample), use "
            "--templates warmup to discover templates on the first days instead, or build "
            "a library with an earlier train end" if span.end_ns is not None else
            "pass --allow-library-days to train anyway (every day labelled in-sample) or use "
            "--templates warmup")


def first_trade_day(days: list[str], day_first_bar_ns: np.ndarray, *, default_first: int,
                    start: date | None, span: LibrarySpan | None,
                    allow_library_days: bool) -> int:
    """The index of the first day to trade.

    ``default_first`` is the first day the run could trade at all (after the warm-up, and
    never day 0, which has no earlier bars for its yardstick). ``start`` (a trade date) moves
    it to the first trade day on or after that date. Without ``allow_library_days`` the days
    in ``span`` are refused: by default training starts after them, and a ``start`` inside
    them is a ConfigError naming the library's training end and the options. A DataError
    when no day is left to trade."""
    chosen = default_first
    if start is not None:
        dates = np.array([date.fromisoformat(d) for d in days], dtype=object)
        at = int(np.searchsorted(dates, start))
        if at >= len(days):
            raise ConfigError(f"--start {start} is after the last trade day of the data "
                              f"({days[-1]}); choose an earlier date or ingest more data")
        if at < default_first:
            raise ConfigError(f"--start {start} is before the first day the trainer can trade "
                              f"({days[default_first]}: the first trade day has no earlier "
                              "bars to measure volatility on, and warm-up days build the "
                              f"templates); start on {days[default_first]} or later")
        chosen = at
    if span is None or allow_library_days:
        return chosen
    inside = in_library_span(day_first_bar_ns, span)
    honest = np.flatnonzero(~inside)
    honest = honest[honest >= default_first]
    if start is not None and inside[chosen]:
        after = (f"start on {days[int(honest[0])]} or later, " if len(honest) else "")
        raise ConfigError(f"--start {start} trades days the templates were trained on: "
                          f"{span.describe()}; {after}or {_options(span)}")
    if not len(honest) or honest[-1] < chosen:
        raise DataError(f"no trade day to train on after the template library's training "
                        f"data: {span.describe()}, and the data ends on {days[-1]}; ingest "
                        f"later data, or {_options(span)}")
    return max(chosen, int(honest[0]))
