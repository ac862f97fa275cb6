"""Synthetic markets written into the store, and the synthetic market the main job falls back
to when a symbol with a synthetic profile has no data."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from stratforge.data.ingest import IngestReport, write_base_bars
from stratforge.data.load import list_symbols
from stratforge.data.resample import BarArrays
from stratforge.data.store import AtlasStore
from stratforge.errors import DataError
from stratforge.instruments import get_instrument, list_instruments
from stratforge.progress import ProgressCallback, no_progress
from stratforge.timeframes import parse_timeframe

SPEC_FILE = "synthetic.json"
DEMO_SYMBOL = "MNQ"
DEMO_KIND = "realistic"
DEMO_DAYS = 60
"""The span of the MNQ demo market (its synthetic profile's default span)."""
DEMO_SEED = 7


def synthetic_symbols(home: Path | str | None = None) -> list[str]:
    """Symbols whose instrument has a synthetic profile (a market the main job can build)."""
    from stratforge.data.synthetic import has_synthetic_profile

    return sorted(symbol for symbol, instrument in list_instruments(home).items()
                  if has_synthetic_profile(instrument))


def ensure_symbol_data(symbol: str, home: Path | str | None = None,
                       progress: ProgressCallback = no_progress, phase: str = "data") -> bool:
    """Make sure ``symbol`` has bars: with none at all for a symbol whose instrument has a
    synthetic profile (MNQ, EURUSD, AAPL, BTCUSD built in), build its synthetic market
    (``DEMO_KIND``, the profile's bar size and default span, ``DEMO_SEED``) and report it
    through ``progress(phase, ...)``; any other symbol without data is a DataError naming the
    symbols that have data. Returns True when a synthetic market was built."""
    from stratforge.data.synthetic import default_days, has_synthetic_profile, native_timeframe

    if AtlasStore.open(symbol, home).exists:
        return False
    instrument = list_instruments(home).get(symbol.upper())
    if instrument is None or not has_synthetic_profile(instrument):
        known = ", ".join(list_symbols(home)) or "none"
        raise DataError(f"no data for {symbol.upper()} (symbols with data: {known}); ingest "
                        f"bars with `stratforge data ingest` or use a symbol with a built-in "
                        f"synthetic market ({', '.join(synthetic_symbols(home))})")
    days, timeframe = default_days(instrument), native_timeframe(instrument)
    progress(phase, 0, 2, f"no data for {instrument.symbol}: building its synthetic demo "
                          f"market ({DEMO_KIND}, {days:,} trading days of {timeframe} bars, "
                          f"seed {DEMO_SEED})")
    synthesize_into_store(instrument.symbol, seed=DEMO_SEED, kind=DEMO_KIND, home=home)
    return True


def synthesize_into_store(symbol: str, *, days: int | None = None, seed: int,
                          kind: str = "realistic", resolution: str | None = None,
                          start: date | None = None, replace: bool = False,
                          home: Path | str | None = None,
                          progress: ProgressCallback = no_progress) -> IngestReport:
    """Generate a synthetic market for ``symbol`` and make it the symbol's whole store.

    ``days``, ``resolution`` and ``start`` default to the instrument's synthetic profile
    (MNQ: 60 trading days of 1s bars; EURUSD: 520 of 1h; AAPL: 2,520 of 1D; BTCUSD: 90 of
    1m). The generator's specification (kind, seed, and for ``planted`` the planted rule and
    its events) is written next to the data as ``synthetic.json``. An existing store is
    replaced only with ``replace``.
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
                           parse_timeframe(market.spec["resolution"]), replace_all=True,
                           source=f"synthetic {kind} seed {seed}",
                           extra_files={SPEC_FILE: spec})


def describe_synthetic_market(spec: dict) -> str:
    """One line such as 'synthetic BTCUSD, realistic, seed 7, 90 trading days of 1m bars'."""
    return (f"synthetic {spec['symbol']}, {spec['kind']}, seed {spec['seed']}, "
            f"{spec['days']:,} trading days of {spec['resolution']} bars")


def synthetic_spec(symbol: str, home: Path | str | None = None) -> dict | None:
    """The specification of the synthetic market stored for ``symbol``, if it is one."""
    path = AtlasStore.open(symbol, home).root / SPEC_FILE
    return json.loads(path.read_text()) if path.exists() else None
