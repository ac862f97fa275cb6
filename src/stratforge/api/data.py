"""``/data``: the symbols in the ATLAS, its timeframes, and what one symbol's store holds."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Path

from stratforge.api.data_models import AtlasInfoOut, SymbolList, TimeframeList
from stratforge.api.deps import SYMBOL_PATTERN, HomeDep
from stratforge.api.errors import NOT_FOUND
from stratforge.data import atlas_info, list_symbols
from stratforge.ops.operations import NotFoundError
from stratforge.timeframes import ATLAS_TIMEFRAMES

router = APIRouter(prefix="/data", tags=["data"])
Symbol = Annotated[str, Path(pattern=SYMBOL_PATTERN, description="A symbol such as MNQ.")]


@router.get("/symbols", response_model=SymbolList)
def symbols(home: HomeDep) -> dict[str, Any]:
    """Symbols that have an ATLAS store."""
    return {"symbols": list_symbols(home)}


@router.get("/timeframes", response_model=TimeframeList)
def timeframes() -> dict[str, Any]:
    """Every timeframe the ATLAS builds, shortest first."""
    return {"timeframes": [{"name": tf.name, "seconds": tf.seconds, "intraday": tf.intraday}
                           for tf in ATLAS_TIMEFRAMES]}


@router.get("/symbols/{symbol}", response_model=AtlasInfoOut,
            responses=NOT_FOUND)
def symbol_info(symbol: Symbol, home: HomeDep) -> dict[str, Any]:
    """Per timeframe: rows, span, partitions, missing days, longest gap, stale months."""
    rows = atlas_info(symbol, home)
    if not rows:
        known = ", ".join(list_symbols(home)) or "none"
        raise NotFoundError(f"no ATLAS store for {symbol.upper()} (symbols: {known}); ingest "
                            "data with `stratforge data ingest` or `stratforge data synth`")
    return {"symbol": symbol.upper(), "timeframes": [asdict(row) for row in rows]}
