"""Reading bars back out of the ATLAS, and what a symbol's store holds."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pandas as pd

from stratforge.config import resolve_home
from stratforge.data.store import AtlasStore
from stratforge.data.timeframe_choice import (
    DEFAULT_LIMIT,
    DEFAULT_MIN_BARS,
    TIMEFRAME_LADDER,
    can_build,
    choose_timeframes,
    estimated_rows,
)
from stratforge.errors import DataError
from stratforge.timeframes import Timeframe, parse_timeframe

TimeLike = str | date | datetime | pd.Timestamp | None


def _to_ns(value: TimeLike) -> int | None:
    if value is None:
        return None
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return int(stamp.as_unit("ns").value)


def list_symbols(home: Path | str | None = None) -> list[str]:
    """Symbols that have a store under the home folder."""
    root = resolve_home(home) / "atlas"
    if not root.exists():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "manifest.json").exists())


def load_bars(symbol: str, timeframe: str | Timeframe, start: TimeLike = None,
              end: TimeLike = None, *, home: Path | str | None = None) -> pd.DataFrame:
    """Canonical bars of ``symbol`` at ``timeframe`` with ``start <= ts < end``.

    ``start`` and ``end`` accept anything ``pandas.Timestamp`` does; naive times are UTC; None
    leaves that side open. Raises DataError naming the symbols or timeframes that do exist.
    """
    store = AtlasStore.open(symbol, home)
    if not store.exists:
        known = ", ".join(list_symbols(home)) or "none"
        raise DataError(f"no store for {symbol.upper()} under {store.root.parent} (symbols: "
                        f"{known}); ingest data with `stratforge data ingest` or "
                        "`stratforge data synth`")
    tf = timeframe if isinstance(timeframe, Timeframe) else parse_timeframe(timeframe)
    return store.read_range(tf, _to_ns(start), _to_ns(end)).to_frame()


def store_timeframes(symbol: str, home: Path | str | None = None) -> dict[str, int]:
    """Rows per timeframe held in the store of ``symbol``, finest first (empty for no store).

    Counts come from the store's manifest; no bar file is read."""
    return AtlasStore.open(symbol, home).row_counts()


def store_base_timeframe(symbol: str, home: Path | str | None = None) -> str | None:
    """The base timeframe (bar size of the ingested bars) of ``symbol``, or None."""
    base = AtlasStore.open(symbol, home).base_timeframe
    return None if base is None else str(base)


def default_timeframes(symbol: str, home: Path | str | None = None, *,
                       min_bars: int = DEFAULT_MIN_BARS,
                       limit: int = DEFAULT_LIMIT) -> tuple[str, ...]:
    """Default research timeframes of ``symbol``, from what its store holds.

    See ``timeframe_choice.choose_timeframes``: the ladder 1m 5m 15m 1h 4h 1D 1W from the
    finest timeframe at or above the base, those with at least ``min_bars`` bars, at most
    ``limit``. A ladder timeframe the ATLAS has not built yet counts the rows it would get
    (estimated from the base), so a store of base bars alone already gets its defaults and the
    missing-timeframes message then says to run ``stratforge data atlas``. Empty for no store.
    """
    rows = store_timeframes(symbol, home)
    base = store_base_timeframe(symbol, home)
    if base is None or base not in rows:
        return ()
    for tf in TIMEFRAME_LADDER:
        if str(tf) not in rows and can_build(base, tf):
            rows[str(tf)] = estimated_rows(base, rows[base], tf)
    return choose_timeframes(rows, base, min_bars=min_bars, limit=limit)
