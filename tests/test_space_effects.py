"""Every parameter of the default space acts: changing one of them alone (low vs high end of
its range) changes the trades of a market with many signals, for two instrument kinds. The
old space sampled a wide trail that could never act (no widen threshold): it was inert."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stratforge.instruments import BUILTIN_INSTRUMENTS
from stratforge.search.space import DEFAULT_ORDER, default_space, measure_yardstick
from stratforge.sim import Costs, simulate


def random_walk(tick: float, start_price: float, n: int, seed: int) -> pd.DataFrame:
    """One-minute bars of a tick-grid random walk around ``start_price`` (UTC weekdays)."""
    rng = np.random.default_rng(seed)
    steps = rng.integers(-6, 7, size=(n, 4))
    close = start_price + np.cumsum(steps.sum(axis=1)) * tick
    open_ = np.concatenate(([start_price], close[:-1]))
    high = np.maximum(open_, close) + rng.integers(0, 6, n) * tick
    low = np.minimum(open_, close) - rng.integers(0, 6, n) * tick
    ts = pd.date_range("2024-03-04 14:00", periods=n, freq="1min", tz="UTC")
    return pd.DataFrame({"ts": ts, "open": open_, "high": high, "low": low, "close": close,
                         "volume": 1.0})


@pytest.mark.parametrize("symbol", ["MNQ", "EURUSD"])
def test_every_default_parameter_changes_the_trades(symbol):
    spec = BUILTIN_INSTRUMENTS[symbol]
    price = 18_000.0 if symbol == "MNQ" else 1.08
    bars = random_walk(spec.tick_size, price, 600, seed=5)
    yardstick = measure_yardstick(bars, spec.tick_size)
    space = default_space("1m", yardstick_ticks=yardstick, tick_size=spec.tick_size)
    assert set(space.names) == set(DEFAULT_ORDER)
    entries = np.arange(5, 590, 7)
    sides = np.where(np.arange(len(entries)) % 2 == 0, 1, -1)
    middle = {p.name: (p.low + p.high) / 2 if p.kind == "float" else (p.low + p.high) // 2
              for p in space.parameters}
    middle["trail_activation_ticks"] = space["trail_activation_ticks"].low  # trail at once
    costs = Costs()  # costs do not matter here; they are the same for every set

    def trades_of(params):
        frame = simulate(bars, entries, sides, params, instrument=spec, costs=costs)
        return frame[["entry_bar", "exit_bar", "exit_price", "reason"]]

    base = trades_of(middle)
    for p in space.parameters:
        low = trades_of({**middle, p.name: p.low})
        high = trades_of({**middle, p.name: p.high})
        assert not low.equals(high), f"{p.name} has no effect between {p.low} and {p.high}"
    assert len(base) > 20
