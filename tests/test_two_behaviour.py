"""The two-behaviour planted market (``TwoBehaviourRule``): events, drift shapes, arguments."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stratforge.data.synthetic import PlantedRule, TwoBehaviourRule, generate_market
from stratforge.errors import ConfigError
from stratforge.instruments import get_instrument


def test_two_behaviours_are_planted_with_their_shapes():
    mnq = get_instrument("MNQ")
    rule = TwoBehaviourRule()
    market = generate_market(mnq, days=20, seed=3, kind="planted", resolution="1m",
                             planted_rule=rule)
    spec = market.spec["planted"]
    assert spec["rule"] == "two_behaviour" and spec["slow_k_sigma"] == rule.slow_k_sigma
    events = pd.DataFrame(spec["events"])
    assert set(events["behaviour"]) == {"fast", "slow"} and events["reverted"].all()
    ratio = events["shock_ticks"] / events["sigma_ticks"]
    fast, slow = events["behaviour"] == "fast", events["behaviour"] == "slow"
    assert np.allclose(ratio[fast], rule.fast_k_sigma, atol=0.6)
    assert np.allclose(ratio[slow], rule.slow_k_sigma, atol=0.6)
    # the drift itself: a planted market minus its realistic twin (same noise draws)
    twin = generate_market(mnq, days=20, seed=3, kind="realistic", resolution="1m")
    drift = (market.bars["close"] - twin.bars["close"]).to_numpy() / mnq.tick_size
    stamps = market.bars["ts"].dt.as_unit("s").array.asi8
    for e in events.itertuples():
        start = int(pd.Timestamp(e.ts).timestamp())
        at = lambda minutes: drift[np.searchsorted(stamps, start + 60 * minutes) - 1]  # noqa: E731,B023
        base = at(0)
        shock = e.direction * (at(1) - base)
        assert shock == pytest.approx(e.shock_ticks, abs=1)
        if e.behaviour == "fast":  # back within 3 minutes, then the move runs on past it
            done = e.direction * (at(1 + rule.fast_horizon_minutes) - base)
            assert done == pytest.approx(e.shock_ticks - e.reversion_ticks, abs=1)
            relapse = round(rule.fast_relapse_fraction * e.reversion_ticks)
            assert e.direction * (at(14) - base) == pytest.approx(
                e.shock_ticks - e.reversion_ticks + relapse, abs=1)
        else:  # runs on for 5 minutes, then the whole shock and the extension come back
            extension = round(rule.slow_extension_k_sigma * e.sigma_ticks)
            assert e.reversion_ticks == pytest.approx(e.shock_ticks + extension, abs=1)
            ext = 1 + rule.slow_extension_minutes
            assert e.direction * (at(ext) - base) == pytest.approx(e.shock_ticks + extension,
                                                                   abs=1)
            assert e.direction * (at(ext + rule.slow_horizon_minutes) - base) == pytest.approx(
                e.shock_ticks + extension - e.reversion_ticks, abs=1)


def test_the_default_planted_market_is_unchanged_and_bad_use_is_refused():
    mnq = get_instrument("MNQ")
    default = generate_market(mnq, days=3, seed=1, kind="planted", resolution="1m")
    explicit = generate_market(mnq, days=3, seed=1, kind="planted", resolution="1m",
                               planted_rule=PlantedRule())
    pd.testing.assert_frame_equal(default.bars, explicit.bars)
    assert "behaviour" not in default.spec["planted"]["events"][0]
    with pytest.raises(ConfigError, match="planted_rule needs kind='planted'"):
        generate_market(mnq, days=3, seed=1, kind="null", planted_rule=TwoBehaviourRule())
    with pytest.raises(ConfigError, match="tick engine"):
        generate_market(get_instrument("EURUSD"), days=3, seed=1, kind="planted",
                        planted_rule=TwoBehaviourRule())
