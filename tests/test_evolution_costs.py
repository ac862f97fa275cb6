"""Evolution runs charge the instrument's cost model (optional overrides, never searched):
on an MNQ-like and an EURUSD-like market every trade pays the model's round trip, the
explained log states it in price units and currency, and the resolved model is part of the
simulation fingerprint."""

from __future__ import annotations

import numpy as np
import pytest

from cost_helpers import kind_bars
from stratforge.errors import ConfigError
from stratforge.evolution.config import GridPoint, make_evolution_config
from stratforge.evolution.simulation import execution_settings, simulate_point, trade_costs
from stratforge.instruments import get_instrument

# hand-computed round trips of the built-in models, one contract / lot, no fee:
# MNQ 3 ticks x 0.25 x 2 USD + 2 x 0.62 = 2.74 USD; EURUSD 12 ticks x 1 USD + 2 x 3.5 = 19 USD
ROUND_TRIP = {"MNQ": 2.74, "EURUSD": 19.0}
FREE = {"commission": 0.0, "spread_ticks": 0.0, "slippage_ticks": 0.0, "fee_bps": 0.0}


def _signals(symbol: str, n: int = 600) -> dict[str, np.ndarray]:
    bars = kind_bars(symbol, n, seed=9)
    rng = np.random.default_rng(3)
    span = np.where(np.arange(n) < n // 2, 1, 2)
    return {"ts": bars["ts"].array.asi8.copy(),
            **{k: bars[k].to_numpy(np.float64) for k in ("open", "high", "low", "close",
                                                         "volume")},
            "piece": np.zeros(n, dtype=np.int64), "span": span,
            "prediction": rng.normal(0.0, 1.0, n), "outlier": np.zeros(n),
            "regime_vol": np.zeros(n, dtype=np.int64), "regime_gmm": np.zeros(n, np.int64),
            "regime_gmm_p": np.ones(n)}


@pytest.mark.parametrize("symbol", ["MNQ", "EURUSD"])
def test_costs_are_the_instruments_with_overrides(symbol):
    instrument = get_instrument(symbol)
    assert trade_costs(make_evolution_config(symbol=symbol), instrument) == instrument.costs
    cheap = make_evolution_config(symbol=symbol, commission=0.25, fee_bps=1.0)
    costs = trade_costs(cheap, instrument)
    assert (costs.commission, costs.fee_bps) == (0.25, 1.0)
    assert costs.spread_ticks == instrument.costs.spread_ticks
    with pytest.raises(ConfigError, match="cost_per_trade"):
        make_evolution_config(cost_per_trade=1.0)
    with pytest.raises(ConfigError, match="slippage_ticks"):
        make_evolution_config(slippage_ticks=-1)


@pytest.mark.parametrize("symbol", ["MNQ", "EURUSD"])
def test_every_trade_pays_the_round_trip_and_the_log_says_so(symbol):
    instrument = get_instrument(symbol)
    signals = _signals(symbol)
    point = GridPoint(0.8, 0.0, "all")
    # no stop or target: exits come from the signal, the session and the end, so the same
    # trades are taken with and without costs
    charged = simulate_point(signals, 1.0, point, make_evolution_config(symbol=symbol),
                             instrument)
    free = simulate_point(signals, 1.0, point, make_evolution_config(symbol=symbol, **FREE),
                          instrument, explain=False)
    for span in ("validation", "test"):
        trades = charged[span]["trades"]
        assert trades == free[span]["trades"] > 5
        assert free[span]["total_pnl"] - charged[span]["total_pnl"] == pytest.approx(
            trades * ROUND_TRIP[symbol], rel=1e-9)
    lines = "\n".join(dict((h, ls) for h, ls in charged["explain"])["Costs and slippage"])
    expected = {"MNQ": "per round trip: 0.75 in price = 1.50 USD, plus commissions 1.24 USD "
                       "= 2.74 USD",
                "EURUSD": "per round trip: 0.00012 in price = 12.00 USD, plus commissions "
                          "7.00 USD = 19.00 USD"}[symbol]
    assert expected in lines


def test_resolved_cost_model_is_in_the_simulation_fingerprint_settings():
    eurusd = get_instrument("EURUSD")
    base = execution_settings(make_evolution_config(symbol="EURUSD"), eurusd)
    assert base["costs"] == eurusd.costs.to_dict()
    assert "cost_per_trade" not in base
    # the same resolved model written out gives the same settings; another one does not
    same = execution_settings(make_evolution_config(symbol="EURUSD", commission=3.5), eurusd)
    assert same == base
    other = execution_settings(make_evolution_config(symbol="EURUSD", spread_ticks=2), eurusd)
    assert other["costs"]["spread_ticks"] == 2.0 and other != base


def test_api_requests_take_cost_overrides_not_the_old_cost_settings():
    from pydantic import ValidationError

    from stratforge.api.evolution_models import EvolutionRunRequest
    from stratforge.api.training_models import TrainingRunRequest

    body = EvolutionRunRequest(symbol="EURUSD", spread_ticks=10, fee_bps=0.2)
    settings = body.model_dump(exclude_none=True)
    config = make_evolution_config(**settings)
    costs = trade_costs(config, get_instrument("EURUSD"))
    assert (costs.spread_ticks, costs.fee_bps, costs.commission) == (10.0, 0.2, 3.5)
    for model, old in ((EvolutionRunRequest, "cost_per_trade"),
                       (TrainingRunRequest, "cost_points")):
        with pytest.raises(ValidationError, match=old):
            model(**{old: 1.0})
        assert {"commission", "spread_ticks", "slippage_ticks", "fee_bps"} <= set(
            model.model_fields)
    with pytest.raises(ValidationError, match="commission"):
        EvolutionRunRequest(commission=-1)
