"""Unit tests of the search phases: refinement allocation, pair seeds, best sets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stratforge.errors import ConfigError
from stratforge.search.brain import brain_key
from stratforge.search.refine import allocate, best_params, round_budgets
from stratforge.search.sweep import outcomes, pair_seed

draws = st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=1, max_size=30)


@settings(max_examples=300, deadline=None)
@given(draws, st.integers(0, 5000), st.integers(1, 50))
def test_allocation_gives_every_combo_its_minimum_and_spends_the_round(d, total, minimum):
    counts = allocate(np.asarray(d), total, minimum)
    assert (counts >= minimum).all()
    assert counts.sum() == max(total, minimum * len(d))
    # a larger draw never gets fewer sets than a smaller one
    order = np.argsort(d, kind="stable")
    assert (np.diff(counts[order]) >= 0).all() or len(set(d)) < len(d)


def test_allocation_hand_case():
    # 100 sets, minimum 10 each for 3 combos: 70 left, split 0.5 : 0.25 : 0.25 of the draws
    assert allocate(np.array([0.6, 0.3, 0.3]), 100, 10).tolist() == [45, 28, 27]
    # all-zero draws share evenly; the remainder goes to the earlier combos
    assert allocate(np.zeros(3), 32, 10).tolist() == [11, 11, 10]


def test_allocation_refuses_bad_draws():
    with pytest.raises(ConfigError):
        allocate(np.array([0.5, np.nan]), 10, 1)
    with pytest.raises(ConfigError):
        allocate(np.array([]), 10, 1)


@given(st.integers(0, 100_000), st.integers(1, 200))
def test_round_budgets_spend_the_budget_evenly(budget, rounds):
    parts = round_budgets(budget, rounds)
    assert len(parts) == rounds and sum(parts) == budget
    assert max(parts) - min(parts) <= 1


def test_pair_seed_depends_on_the_pair_and_seed_only():
    assert pair_seed(7, "T0001", "5m") == pair_seed(7, "T0001", "5m")
    seeds = {pair_seed(7, t, tf) for t in ("T0001", "T0002") for tf in ("1m", "5m")}
    assert len(seeds) == 4
    assert pair_seed(8, "T0001", "5m") != pair_seed(7, "T0001", "5m")
    assert 0 <= pair_seed(7, "T0001", "5m") < 2**63


def test_brain_outcomes_use_the_shared_key_and_skip_sets_without_trades():
    summaries = pd.DataFrame({"template_id": ["T0001", "T0001", "T0002"],
                              "timeframe": ["5m", "5m", "1h"], "trades": [3, 0, 5],
                              "total_pnl": [10.0, 0.0, -2.0]})
    keys, wins, losses = outcomes(summaries)
    assert keys == [brain_key("T0001", "5m"), brain_key("T0002", "1h")] == ["T0001_5m",
                                                                          "T0002_1h"]
    assert wins.tolist() == [1, 0] and losses.tolist() == [0, 1]


def test_best_params_prefers_enough_trades_then_sharpe():
    rows = pd.DataFrame({"stop_ticks": [10, 20, 30, 40], "trades": [5, 50, 40, 50],
                         "sharpe_per_trade": [3.0, 0.2, 0.4, np.nan]})
    assert best_params(rows, ["stop_ticks"], 20) == {"stop_ticks": 30.0}
    assert best_params(rows, ["stop_ticks"], 100) == {"stop_ticks": 10.0}   # none has 100
