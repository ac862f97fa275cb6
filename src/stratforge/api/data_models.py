"""Response models of the data routes."""

from __future__ import annotations

from pydantic import BaseModel, Field


class SymbolList(BaseModel):
    """Symbols that have an ATLAS store under the home folder."""

    symbols: list[str]


class TimeframeOut(BaseModel):
    """One timeframe the ATLAS stores."""

    name: str = Field(description="Such as `1m`, `4h`, `1D`.")
    seconds: int = Field(description="Nominal duration (a trade date counts 86400).")
    intraday: bool


class TimeframeList(BaseModel):
    """The ATLAS timeframes, shortest first."""

    timeframes: list[TimeframeOut]


class TimeframeInfoOut(BaseModel):
    """What a symbol's store holds at one timeframe (``stratforge data info``)."""

    timeframe: str
    rows: int
    first: str = Field(description="First bar time (ISO 8601 UTC), empty without bars.")
    last: str
    files: int = Field(description="Monthly Parquet partitions.")
    missing_days: int | None = Field(description="Trading weekdays in the span without a bar.")
    max_gap_seconds: float | None = Field(
        description="Longest pause between bars within one trade date (intraday only).")
    stale_files: int = Field(description="Derived months whose base bars changed since.")


class AtlasInfoOut(BaseModel):
    """A summary of one symbol's ATLAS store."""

    symbol: str
    timeframes: list[TimeframeInfoOut]
