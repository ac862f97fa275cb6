"""Unit tests of the search phases: refinement allocation, tiers, pair seeds, best sets."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stratforge.errors import ConfigError
from stratforge.search.brain import brain_key
from stratforge.search.refine import allocate, best_params, round_budgets
from stratforge.search.sweep import outcomes, pair_seed
from stratforge.search.validation import (
    TierRules,
    assign_tier,
    deflated_oos_sharpe,
    production_failures,
)
from stratforge.sim.overfitting import deflated_sharpe_ratio

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


RULES = TierRules()


@pytest.mark.parametrize(("args", "tier"), [
    ((30, 0.46, 1.0, 0.31, 0.95, 0.49), 1),
    ((29, 0.46, 1.0, 0.31, 0.99, 0.49), 2),       # too few trades for a deflated Sharpe
    ((30, 0.45, 1.0, 0.31, 0.95, 0.49), 2),       # win rate must be above 0.45
    ((30, 0.46, 1.0, 0.31, 0.949, 0.49), 2),      # DSR below 0.95
    ((30, 0.46, 1.0, 0.31, 0.95, 0.5), 2),        # PBO must be below 0.5
    ((30, 0.46, 1.0, 0.31, 0.95, math.nan), 2),   # PBO not computed
    ((30, 0.46, 1.0, 0.30, 0.95, 0.1), 2),        # Sharpe must be above 0.3
    ((30, 0.46, 1.0, 0.31, math.nan, 0.1), 2),    # trades without dispersion: no DSR
    ((10, 0.9, 0.01, 5.0, 1.0, 0.0), 2),
    ((10, 0.9, 0.0, 5.0, 1.0, 0.0), 3),           # PnL must be above zero for Tier 2
    ((5, 0.0, -100.0, -1.0, 0.0, 1.0), 3),
    ((4, 1.0, 100.0, 9.0, 1.0, 0.0), 4),
])
def test_tiers_follow_the_thresholds(args, tier):
    assert assign_tier(*args, RULES)[0] == tier


def test_tier_reasons_name_every_failed_rule():
    failed = production_failures(5, 0.3, -1.0, 0.1, 0.5, 0.7, RULES)
    assert len(failed) == 6
    _, why = assign_tier(5, 0.3, -1.0, 0.1, 0.5, 0.7, RULES)
    assert "trades 5 < 20" in why and "PBO 0.700 >= 0.5" in why
    assert "DSR not computed: too few trades (5 < 30)" in why
    _, why = assign_tier(40, 0.5, 1.0, 1.0, 0.5, 0.1, RULES)
    assert why == "DSR 0.500 < 0.95"


def test_the_deflated_sharpe_needs_enough_trades_and_ignores_thin_trials():
    rng = np.random.default_rng(4)
    pnl = rng.normal(1.0, 2.0, 40)
    sharpes = np.array([0.1, -0.2, 0.3, 5.0, -6.0])
    trades = np.array([40, 35, 50, 2, 3])  # the wild Sharpe ratios come from 2-3 trades
    assert math.isnan(deflated_oos_sharpe(pnl[:29], sharpes, trades, 30, 10))
    got = deflated_oos_sharpe(pnl, sharpes, trades, 30, 10)
    # hand-built reference: five trials, the variance of the three with >= 10 trades only
    expected = deflated_sharpe_ratio(pnl, n_trials=5,
                                     sharpe_variance=float(np.var([0.1, -0.2, 0.3], ddof=1)))
    assert got == pytest.approx(expected)
    inflated = deflated_sharpe_ratio(pnl, n_trials=5,
                                     sharpe_variance=float(np.var(sharpes, ddof=1)))
    assert got > inflated  # the thin trials' Sharpe ratios no longer inflate the benchmark


def test_tier_rules_are_configurable_and_checked():
    loose = TierRules.from_mapping({"production_min_dsr": 0.5, "dsr_min_trades": 20})
    assert assign_tier(20, 0.5, 1.0, 1.0, 0.6, 0.1, loose)[0] == 1
    with pytest.raises(ConfigError, match="unknown tier rule"):
        TierRules.from_mapping({"production_min_dsr_typo": 0.5})
