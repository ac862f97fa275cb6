"""The built-in ``simulation`` and ``sweep`` jobs charge the instrument's cost model (job
parameters override parts of it; ``cost_points`` is refused) and the sweep samples the
default space in volatility units, never a cost. On MNQ-like and EURUSD-like bars."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from cost_helpers import kind_bars
from stratforge.costs import COST_FIELDS
from stratforge.errors import ConfigError
from stratforge.instruments import get_instrument
from stratforge.ops import builtin_jobs
from stratforge.search.space import YARDSTICK_RANGES, measure_yardstick


def _context(params):
    return SimpleNamespace(parameters=params, progress=lambda *a, **k: None)


@pytest.fixture
def fake_signals(monkeypatch):
    """``_signals`` (the job's data loading) on hand-made bars of the job's symbol."""
    def signals(params):
        symbol = str(params["symbol"]).upper()
        bars = kind_bars(symbol, 400, seed=6)
        entries = np.arange(3, 390, 5)
        return symbol, bars, entries, np.where(entries % 2 == 0, 1, -1)

    monkeypatch.setattr(builtin_jobs, "_signals", signals)
    return signals


@pytest.mark.parametrize("symbol", ["MNQ", "EURUSD"])
def test_sweep_job_space_is_in_yardsticks_and_costs_are_the_instruments(symbol,
                                                                        fake_signals):
    instrument = get_instrument(symbol)
    params = {"symbol": symbol, "timeframe": "1h" if symbol == "EURUSD" else "1m", "n": 64,
              "min_trades": 1, "top": 64, "fee_bps": 0.5}
    result = builtin_jobs.sweep_job(_context(params))
    _, bars, _, _ = fake_signals(params)
    yardstick = measure_yardstick(bars, instrument.tick_size)
    assert result["yardstick_ticks"] == yardstick
    assert result["costs"] == instrument.costs.with_overrides(fee_bps=0.5).to_dict()
    assert result["best"]
    low, high = YARDSTICK_RANGES["stop_ticks"]
    for row in result["best"]:
        assert not set(row) & (set(COST_FIELDS) | {"cost_points"})
        assert round(low * yardstick) <= row["stop_ticks"] <= round(high * yardstick)


@pytest.mark.parametrize("symbol", ["MNQ", "EURUSD"])
def test_simulation_job_pays_the_round_trip(symbol, fake_signals):
    # timeouts only: gross PnL minus the round trip of the built-in model (hand-computed:
    # MNQ 0.75 points x 2 + 2 x 0.62 = 2.74 USD; EURUSD 0.00012 x 100,000 + 2 x 3.5 = 19 USD)
    expected = {"MNQ": 2.74, "EURUSD": 19.0}[symbol]
    params = {"symbol": symbol, "params": {"max_hold_bars": 2}}
    charged = builtin_jobs.simulation_job(_context(params))["metrics"]
    free = builtin_jobs.simulation_job(_context({
        **params, "commission": 0, "spread_ticks": 0, "slippage_ticks": 0}))["metrics"]
    assert charged["trades"] == free["trades"] > 10
    assert free["total_pnl"] - charged["total_pnl"] == pytest.approx(
        expected * charged["trades"])


def test_jobs_refuse_the_old_cost_points_and_bad_costs(fake_signals):
    with pytest.raises(ConfigError, match=r"cost_points no longer exists.*instruments\.yaml"):
        builtin_jobs.sweep_job(_context({"symbol": "MNQ", "cost_points": 0.5}))
    with pytest.raises(ConfigError, match="slippage_ticks"):
        builtin_jobs.simulation_job(_context({"symbol": "MNQ", "slippage_ticks": -2}))
