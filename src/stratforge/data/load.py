"""Reading bars back out of the ATLAS."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pandas as pd

from stratforge.config import resolve_home
from stratforge.data.store import AtlasStore
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
