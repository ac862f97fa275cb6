"""One market context per command: symbol, instrument, store, timeframes and cost model.

:func:`resolve_market` resolves a symbol once (the instrument from the built-ins and the
user's ``instruments.yaml``, the ATLAS store, its base timeframe and the timeframes it holds,
the cost model with the run's overrides) and the resulting :class:`Market` is passed down, so
lower layers never re-resolve a symbol string.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from stratforge.config import resolve_home
from stratforge.costs import Costs
from stratforge.data.load import TimeLike, load_bars
from stratforge.data.store import AtlasStore
from stratforge.instruments import Instrument, get_instrument
from stratforge.sessions import Session


@dataclass(frozen=True)
class Market:
    """The market a command works on (see the module docstring).

    Attributes:
        symbol: upper-case symbol.
        instrument: its tick size, point value, currency, session and default cost model.
        home: the resolved home folder.
        base_timeframe: the timeframe of the ingested bars (None for an empty store).
        bar_counts: rows per timeframe the store holds, finest first.
        costs: the cost model every simulated trade of the command pays.
    """

    symbol: str
    instrument: Instrument
    home: Path
    base_timeframe: str | None
    bar_counts: dict[str, int] = field(default_factory=dict)
    costs: Costs = field(default_factory=Costs)

    @property
    def timeframes(self) -> tuple[str, ...]:
        """Timeframes the store holds, finest first."""
        return tuple(self.bar_counts)

    @property
    def session(self) -> Session:
        """The instrument's trading session."""
        return self.instrument.session

    @property
    def tick_size(self) -> float:
        """The instrument's tick size."""
        return float(self.instrument.tick_size)

    @property
    def store(self) -> AtlasStore:
        """The symbol's ATLAS store."""
        return AtlasStore.open(self.symbol, self.home)

    def bars(self, timeframe: str, start: TimeLike = None, end: TimeLike = None
             ) -> pd.DataFrame:
        """Canonical bars of one timeframe with ``start <= ts < end``."""
        return load_bars(self.symbol, timeframe, start, end, home=self.home)

    def cost_block(self, price: float) -> dict[str, Any]:
        """The cost model's settings plus one fill and one round trip at ``price`` in price
        units and in the instrument's currency (what summaries and reports state)."""
        spec = self.instrument
        return {**self.costs.to_dict(), "currency": spec.currency, "reference_price": price,
                **self.costs.figures(spec.tick_size, spec.point_value, price),
                "description": self.costs.describe()}


def resolve_market(symbol: str, home: Path | str | None = None, *,
                   cost_overrides: Mapping[str, float | None] | None = None) -> Market:
    """The market context of ``symbol``: the instrument (ConfigError for an unknown one), what
    its store holds, and the instrument's cost model with ``cost_overrides`` applied (None
    values keep the instrument's setting)."""
    root = resolve_home(home)
    instrument = get_instrument(symbol, root)
    store = AtlasStore.open(symbol, root)
    counts: dict[str, int] = {}
    base = None
    if store.exists:
        base_tf = store.base_timeframe
        base = str(base_tf) if base_tf is not None else None
        counts = store.row_counts()
    costs = instrument.costs.with_overrides(**dict(cost_overrides or {}))
    return Market(symbol.upper(), instrument, root, base, counts, costs)
