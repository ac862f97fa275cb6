"""``/templates``: the template library of a symbol (``<home>/discovery/<SYMBOL>/library``)."""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query

from stratforge.api.data import Symbol
from stratforge.api.deps import HomeDep
from stratforge.api.errors import NOT_FOUND
from stratforge.api.templates_models import LibraryOut
from stratforge.discovery.library import LIBRARY_FILE, TemplateLibrary, library_folder
from stratforge.features.vectors import FEATURE_NAMES
from stratforge.ops.operations import NotFoundError

router = APIRouter(prefix="/templates", tags=["templates"])


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return value


@router.get("/{symbol}", response_model=LibraryOut,
            responses=NOT_FOUND)
def library(symbol: Symbol, home: HomeDep,
            members: Annotated[bool, Query(description="Include each template's member "
                                                       "pattern ids.")] = False
            ) -> dict[str, Any]:
    """Every template of the symbol's library, with scalers' timeframes and metadata."""
    folder = library_folder(symbol, home)
    if not (folder / LIBRARY_FILE).is_file():
        raise NotFoundError(f"no template library for {symbol.upper()} in {folder}; build it "
                            f"with `stratforge discover --symbol {symbol.upper()}`")
    loaded = TemplateLibrary.load(folder)
    templates = []
    for template in loaded:
        row = _clean(asdict(template))
        if not members:
            row["member_ids"] = None
        templates.append(row)
    return {"symbol": symbol.upper(), "folder": str(folder), "feature_names": list(FEATURE_NAMES),
            "timeframes": sorted(loaded.scalers), "metadata": _clean(loaded.metadata),
            "count": len(templates), "templates": templates}
