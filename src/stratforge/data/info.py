"""A summary of what a symbol's store holds: rows, span, gaps and staleness per timeframe."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stratforge.data.atlas import source_signature
from stratforge.data.store import AtlasStore, iso, month_name
from stratforge.instruments import get_instrument
from stratforge.sessions import Session


@dataclass(frozen=True)
class TimeframeInfo:
    """One row of ``stratforge data info``."""

    timeframe: str
    rows: int
    first: str
    last: str
    files: int
    missing_days: int | None   # trading days inside the span without a bar (see _gaps)
    max_gap_seconds: float | None  # longest pause between bars within one trade date
    stale_files: int  # derived months whose base bars changed since they were built


def _gaps(ts: np.ndarray, session: Session) -> tuple[int, float]:
    """Trading days without a bar between the first and last bar's trade dates, and the
    longest pause (seconds) between bars of one trade date. Trading days are the session's
    weekdays less its exchange calendar's holidays (``Session.trade_days``), so neither
    weekends nor holidays count as missing."""
    calendar = session.trade_days_covering(ts)
    day = calendar.index_of(ts)
    trading = calendar.is_trading_day[day[0]:day[-1] + 1]
    present = np.zeros(len(trading), dtype=bool)
    present[day - day[0]] = True
    same_day = day[1:] == day[:-1]
    steps = np.diff(ts)[same_day]
    return int((trading & ~present).sum()), float(steps.max() / 1e9) if len(steps) else 0.0


def atlas_info(symbol: str, home: Path | str | None = None) -> list[TimeframeInfo]:
    """Per-timeframe summary of the store of ``symbol`` (empty for an unknown symbol)."""
    store = AtlasStore.open(symbol, home)
    if not store.exists:
        return []
    session = get_instrument(symbol, home).session
    with store.reading():  # one consistent view of the store for the whole summary
        base_tf = store.base_timeframe
        base = store.entries(base_tf) if base_tf else {}
        expected_months = sorted(set(base) | {m - 1 for m in base})
        rows = []
        for tf in store.timeframes():
            entries = store.entries(tf)
            bars = store.read_range(tf, None, None)
            missing, max_gap = (None, None)
            if tf.seconds <= 86_400 and len(bars) > 1:
                missing, gap = _gaps(bars.ts, session)
                max_gap = gap if tf.intraday else None
            built = store.manifest.get("built", {}).get(str(tf), {})
            stale = 0 if tf == base_tf else sum(
                built.get(month_name(month)) != source_signature(session, base, month)
                for month in expected_months)
            rows.append(TimeframeInfo(str(tf), len(bars), iso(bars.ts[0]) if len(bars) else "",
                                      iso(bars.ts[-1]) if len(bars) else "", len(entries), missing,
                                      max_gap, stale))
        return rows
