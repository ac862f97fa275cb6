"""Acceptance of the research pipeline on synthetic markets with a known truth.

A market with a planted shock-and-reversion edge must give a Tier 1 (PRODUCTION) strategy
that trades the planted shocks against their direction; null markets (no edge at all) over
five seeds must give none. The runs use the one-minute timeframe (the planted edge lives
there), small search sizes and a parameter space scaled to the market (tests/data).
"""

from __future__ import annotations

import json

import pytest

from research_helpers import SMALL, WIDE_SPACE, make_market, planted_share
from stratforge.research.config import make_config
from stratforge.research.pipeline import run_research

pytestmark = pytest.mark.slow
DAYS = 250
SETTINGS = {**SMALL, "mc_iters": 200, "top_combos": 10, "refine_budget": 1000,
            "refine_rounds": 5, "timeframes": "1m", "space_path": WIDE_SPACE, "workers": 2}


def test_planted_edge_reaches_tier_one(tmp_path):
    home = tmp_path / "planted"
    make_market(home, "planted", DAYS, seed=3)
    result = run_research(make_config(**SETTINGS), home=home)
    playbook = json.loads((result.path / "playbook.json").read_text())
    assert playbook["strategies"], f"no Tier 1 strategy: {result.summary['tiers']}"
    checked = []
    for strategy in playbook["strategies"]:
        share, fade, trades = planted_share(home, result.path, strategy)
        checked.append((strategy["strategy_id"], share, fade, trades))
    # the best Tier 1 strategy trades the planted shocks, against the shock
    assert any(share >= 0.4 and fade >= 0.95 and trades >= 20
               for _, share, fade, trades in checked), checked


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_null_market_has_no_tier_one(tmp_path, seed):
    home = tmp_path / f"null{seed}"
    make_market(home, "null", DAYS, seed=seed)
    result = run_research(make_config(**SETTINGS), home=home)
    playbook = json.loads((result.path / "playbook.json").read_text())
    assert result.summary["tiers"]["PRODUCTION"] == 0
    assert playbook["strategies"] == []
    assert result.summary["phases"]["validation"]["candidates"] > 0
