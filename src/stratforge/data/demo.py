"""Synthetic markets written into the store, and the demo market the main job falls back to."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from stratforge.data.ingest import IngestReport, write_base_bars
from stratforge.data.load import list_symbols
from stratforge.data.resample import BarArrays
from stratforge.data.store import AtlasStore
from stratforge.errors import DataError
from stratforge.instruments import get_instrument
from stratforge.progress import ProgressCallback, no_progress
from stratforge.timeframes import parse_timeframe

SPEC_FILE = "synthetic.json"
DEMO_SYMBOL = "MNQ"
DEMO_KIND = "realistic"
DEMO_DAYS = 60
DEMO_SEED = 7
DEMO_START = date(2023, 1, 2)


def ensure_symbol_data(symbol: str, home: Path | str | None = None,
                       progress: ProgressCallback = no_progress, phase: str = "data") -> bool:
    """Make sure ``symbol`` has bars: with none at all for the demo symbol, build the demo
    market (``DEMO_KIND`` MNQ, ``DEMO_DAYS`` days, ``DEMO_SEED``) and report it through
    ``progress(phase, ...)``; any other symbol without data is a DataError naming the symbols
    that have data. Returns True when the demo market was built."""
    if AtlasStore.open(symbol, home).exists:
        return False
    if symbol.upper() != DEMO_SYMBOL:
        known = ", ".join(list_symbols(home)) or "none"
        raise DataError(f"no data for {symbol.upper()} (symbols with data: {known}); ingest "
                        f"bars with `stratforge data ingest` or use {DEMO_SYMBOL} for the demo "
                        "market")
    progress(phase, 0, 2, f"no data: building the demo market ({DEMO_KIND} {DEMO_SYMBOL}, "
                          f"{DEMO_DAYS} days, seed {DEMO_SEED})")
    synthesize_into_store(DEMO_SYMBOL, days=DEMO_DAYS, seed=DEMO_SEED, kind=DEMO_KIND,
                          start=DEMO_START, home=home)
    return True


def synthesize_into_store(symbol: str, *, days: int, seed: int, kind: str = "realistic",
                          resolution: str = "1s", start: date | None = None,
                          replace: bool = False, home: Path | str | None = None,
                          progress: ProgressCallback = no_progress) -> IngestReport:
    """Generate a synthetic market for ``symbol`` and make it the symbol's whole store.

    The generator's specification (kind, seed, and for ``planted`` the planted rule and its
    events) is written next to the data as ``synthetic.json``. An existing store is replaced
    only with ``replace``.
    """
    from stratforge.data.synthetic import generate_market

    store = AtlasStore.open(symbol, home)
    if store.exists and not replace:
        raise DataError(f"{store.symbol} already has data in {store.root}; pass --replace to "
                        "overwrite it with a synthetic market, or choose another --symbol")
    instrument = get_instrument(symbol, home)
    market = generate_market(instrument, days=days, seed=seed, kind=kind, resolution=resolution,
                             start=start, progress=progress)
    spec = json.dumps(market.spec, indent=2, sort_keys=True).encode() + b"\n"
    return write_base_bars(store, BarArrays.from_frame(market.bars),
                           parse_timeframe(resolution), replace_all=True,
                           source=f"synthetic {kind} seed {seed}",
                           extra_files={SPEC_FILE: spec})


def synthetic_spec(symbol: str, home: Path | str | None = None) -> dict | None:
    """The specification of the synthetic market stored for ``symbol``, if it is one."""
    path = AtlasStore.open(symbol, home).root / SPEC_FILE
    return json.loads(path.read_text()) if path.exists() else None
