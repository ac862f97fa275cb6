"""Acceptance on synthetic markets with a known truth (in-process backend, one-minute bars):
on the planted shock-and-reversion market a generation's best model beats buy-and-hold out
of sample after costs; on null markets (no edge) no model is promoted."""

from __future__ import annotations

import pytest

from research_helpers import make_market
from stratforge.evolution.config import make_evolution_config
from stratforge.evolution.loop import LocalBackend, evolve
from stratforge.evolution.pipeline import prepare_data

pytestmark = pytest.mark.slow
DAYS = 120
# the planted reversion plays out over 15 minutes: a 10-bar target; default delay (4 bars),
# the instrument's own cost model (MNQ: 2.74 USD a round trip) and default promotion criteria
SETTINGS = {"max_generations": 3, "horizon": 10, "thresholds": [1.0, 2.0, 3.0, 4.0]}


def _evolve(home):
    config = make_evolution_config(**SETTINGS)
    assert config.delay_bars == 4 and config.commission is None  # MNQ's own cost model
    prepared = prepare_data(config, home)
    return evolve(prepared, LocalBackend(config, home), home=home)


def test_planted_market_beats_buy_and_hold_out_of_sample(tmp_path):
    home = tmp_path / "planted"
    make_market(home, "planted", DAYS, seed=3)
    outcome = _evolve(home)
    bests = [g.best for g in outcome.generations if g.best is not None]
    assert bests, outcome
    winners = [b for b in bests if b["beats_buy_and_hold"] and b["total_pnl"] > 0
               and b["total_pnl"] > b["buy_hold_pnl"] and b["trades"] >= 50]
    assert winners, [(b["total_pnl"], b["buy_hold_pnl"], b["trades"]) for b in bests]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_null_market_promotes_nothing(tmp_path, seed):
    home = tmp_path / f"null{seed}"
    make_market(home, "null", DAYS, seed=seed)
    outcome = _evolve(home)
    assert outcome.generations
    assert not any(g.promoted for g in outcome.generations)
    assert all(g.failed_criteria for g in outcome.generations)
