"""Market data: ingest, validation, the ATLAS multi-timeframe store and synthetic markets."""

from stratforge.data.atlas import BuildReport, build_atlas
from stratforge.data.bars import BAR_COLUMNS, repair_bars, validate_bars
from stratforge.data.info import TimeframeInfo, atlas_info
from stratforge.data.ingest import IngestReport, ingest_files
from stratforge.data.load import list_symbols, load_bars

__all__ = [
    "BAR_COLUMNS",
    "BuildReport",
    "IngestReport",
    "TimeframeInfo",
    "atlas_info",
    "build_atlas",
    "ingest_files",
    "list_symbols",
    "load_bars",
    "repair_bars",
    "validate_bars",
]
