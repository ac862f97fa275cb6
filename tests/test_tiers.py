"""Tiers and the run-wide judgement: thresholds, the Benjamini-Hochberg step-up against a
plain reference, the out-of-sample p-value, and the DSR with run-wide effective trials."""

from __future__ import annotations

import math
from dataclasses import replace
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stratforge.errors import ConfigError
from stratforge.search.judgement import judge_run, oos_dsr, oos_p_value, run_deflation
from stratforge.search.tiers import Evidence, TierRules, assign_tier, benjamini_hochberg
from stratforge.search.validation import CandidateResult, ValidationSettings
from stratforge.sim.overfitting import deflated_sharpe_ratio, expected_max_sharpe

RULES = TierRules()
GOOD = Evidence(is_pnl=100.0, is_sharpe=1.0, oos_trades=30, oos_win_rate=0.46, oos_pnl=1.0,
                oos_sharpe=0.31, dsr=0.95, dsr_note="", pbo=0.49, pbo_note="",
                oos_accepted=True, oos_p_value=0.001)


@pytest.mark.parametrize(("change", "tier"), [
    ({}, 1),
    ({"oos_trades": 29, "dsr": math.nan, "dsr_note": "too few trades (29 < 30)"}, 2),
    ({"oos_win_rate": 0.45}, 2),                  # win rate must be above 0.45
    ({"dsr": 0.949}, 2),                          # DSR below 0.95
    ({"pbo": 0.5}, 2),                            # PBO must be below 0.5
    ({"pbo": math.nan, "pbo_note": "only one parameter set"}, 2),
    ({"oos_sharpe": 0.30}, 2),                    # Sharpe must be above 0.3
    ({"dsr": math.nan, "dsr_note": "the trades have no dispersion"}, 2),
    ({"oos_trades": 10, "oos_pnl": 0.01}, 2),
    ({"oos_trades": 10, "oos_pnl": 0.0}, 3),      # PnL must be above zero for Tier 2
    ({"oos_accepted": False}, 3),                 # not significant after BH: never CANDIDATE
    ({"is_pnl": -50.5, "is_sharpe": -1.9}, 3),    # lost in sample: never CANDIDATE
    ({"is_sharpe": 0.0}, 3),
    ({"oos_trades": 5, "oos_pnl": -100.0}, 3),
    ({"oos_trades": 4, "oos_pnl": 100.0}, 4),
])
def test_tiers_follow_the_thresholds(change, tier):
    assert assign_tier(replace(GOOD, **change), RULES)[0] == tier


def test_tier_reasons_name_every_failed_rule_once():
    bad = replace(GOOD, is_pnl=-1.0, oos_trades=5, oos_win_rate=0.3, oos_pnl=-1.0,
                  oos_sharpe=0.1, dsr=math.nan, dsr_note="too few trades (5 < 30)", pbo=0.7,
                  oos_accepted=False, oos_p_value=0.8)
    tier, why = assign_tier(bad, RULES)
    assert tier == 3
    for text in ("in-sample PnL -1.00 <= 0.0", "trades 5 < 10", "trades 5 < 20",
                 "PBO 0.700 >= 0.5", "DSR not computed: too few trades (5 < 30)",
                 "not significant after Benjamini-Hochberg (p 0.8"):
        assert text in why
    assert why.count("PnL -1.00 <= 0.0") == 2  # in sample once, out of sample once
    assert assign_tier(replace(GOOD, oos_trades=40, dsr=0.5), RULES) == (2, "DSR 0.500 < 0.95")


def test_tier_rules_are_configurable_and_checked():
    loose = TierRules.from_mapping({"production_min_dsr": 0.5, "dsr_min_trades": 20})
    assert assign_tier(replace(GOOD, oos_trades=20, dsr=0.6), loose)[0] == 1
    with pytest.raises(ConfigError, match="unknown tier rule"):
        TierRules.from_mapping({"production_min_dsr_typo": 0.5})
    with pytest.raises(ConfigError, match="candidate_fdr"):
        TierRules(candidate_fdr=0.0)


def plain_bh(p: list[float], q: float) -> set[int]:
    """The textbook step-up, one hypothesis at a time."""
    k_total = len(p)
    order = sorted(range(k_total), key=lambda i: (math.inf if math.isnan(p[i]) else p[i], i))
    largest = 0
    for rank, i in enumerate(order, 1):
        if not math.isnan(p[i]) and p[i] <= rank * q / k_total:
            largest = rank
    return set(order[:largest])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.floats(0.0, 1.0), st.just(math.nan)), max_size=40),
       st.sampled_from([0.01, 0.05, 0.1, 0.3]))
def test_benjamini_hochberg_matches_the_textbook_step_up(p, q):
    got = benjamini_hochberg(np.array(p, dtype=np.float64), q)
    assert set(np.flatnonzero(got).tolist()) == plain_bh(p, q)


def test_benjamini_hochberg_hand_case():
    # K = 5, q = 0.05: thresholds 0.01 0.02 0.03 0.04 0.05; sorted p 0.001 0.03 0.035 0.2 0.9
    # p(3) = 0.035 > 0.03 and p(2) = 0.03 > 0.02, so only the first is rejected
    p = np.array([0.9, 0.03, 0.001, 0.2, 0.035])
    assert benjamini_hochberg(p, 0.05).tolist() == [False, False, True, False, False]
    # step-up: p(3) <= 0.03 lets p(2) through although p(2) > its own threshold 0.02
    p = np.array([0.9, 0.025, 0.001, 0.2, 0.029])
    assert benjamini_hochberg(p, 0.05).tolist() == [False, True, True, False, True]


def test_benjamini_hochberg_keeps_the_familywise_rate_under_the_global_null():
    rng = np.random.default_rng(5)
    any_rejected = np.mean([benjamini_hochberg(rng.uniform(size=50), 0.05).any()
                            for _ in range(4000)])
    assert any_rejected == pytest.approx(0.05, abs=0.012)


def test_oos_p_value_is_one_minus_the_psr_against_zero():
    # trades of +-1 (plus 0.25): skew 0 and raw kurtosis 1, so the PSR's variance term
    # 1 - skew SR + (kurtosis - 1) / 4 SR^2 is exactly 1 and p = 1 - Phi(SR sqrt(n - 1))
    pnl = np.array([1.0, -1.0] * 20) + 0.25
    sr = 0.25 / np.std(pnl, ddof=1)
    got = oos_p_value(pnl)
    z = sr * math.sqrt(39)
    assert got == pytest.approx(1 - NormalDist().cdf(z), rel=1e-9)
    assert oos_p_value(np.array([1.0, 2.0])) == 1.0         # too few trades
    assert oos_p_value(np.full(20, 3.0)) == 1.0             # no dispersion


def _result(oos_pnl: np.ndarray, daily: pd.DataFrame, eligible: int, strategy: str
            ) -> CandidateResult:
    row = {"strategy_id": strategy, "is_pnl": 10.0, "is_sharpe": 1.0,
           "oos_trades": len(oos_pnl), "oos_win_rate": float(np.mean(oos_pnl > 0)),
           "oos_pnl": float(oos_pnl.sum()), "oos_sharpe": 1.0, "pbo": 0.2, "pbo_note": ""}
    empty = pd.DataFrame({"exit_time": [], "pnl": []})
    return CandidateResult(row, empty, empty, oos_pnl, daily, eligible)


def test_dsr_counts_the_effective_trials_of_the_whole_run():
    # two combos whose sampled sets are copies of one series each (independent of each
    # other): 2 effective trials out of 300 eligible, so the DSR deflates by N = 2
    rng = np.random.default_rng(6)
    days = pd.date_range("2024-01-01", periods=400)
    a, b = rng.normal(size=(2, 400))
    results = [_result(rng.normal(0.5, 1.0, 40), pd.DataFrame(np.outer(a, [1, 2, 3]),
                                                              index=days), 150, "A"),
               _result(rng.normal(0.5, 1.0, 40), pd.DataFrame(np.outer(b, [1, 2]),
                                                              index=days), 150, "B")]
    trials = pd.DataFrame({"trades": [40] * 300 + [3] * 100,
                           "sharpe_per_trade": np.r_[rng.normal(0, 0.2, 300),
                                                     rng.normal(0, 3.0, 100)]})
    deflation = run_deflation(trials, results, ValidationSettings())
    assert deflation.trials.raw == 400 and deflation.eligible_trials == 300
    assert deflation.trials.effective == pytest.approx(2.0, rel=0.02)
    t_stats = trials["sharpe_per_trade"][:300] * np.sqrt(40)  # thin trials left out
    assert deflation.observed_t_variance == pytest.approx(float(np.var(t_stats, ddof=1)))
    assert deflation.t_variance == 1.0  # the DSR's null: SR * sqrt(n) is standard normal
    dsr, note = oos_dsr(results[0].oos_trade_pnl, deflation, 30)
    assert note == ""
    # the null variance on the tested track of 40 trades: 1 / 40
    variance = 1.0 / 40
    assert dsr == pytest.approx(deflated_sharpe_ratio(
        results[0].oos_trade_pnl, n_trials=deflation.trials.effective,
        sharpe_variance=variance))
    assert deflation.threshold_t / math.sqrt(40) == pytest.approx(
        expected_max_sharpe(deflation.trials.effective, variance))
    short, why = oos_dsr(results[0].oos_trade_pnl[:29], deflation, 30)
    assert math.isnan(short) and why == "too few trades (29 < 30)"
    rows, block = judge_run(trials, results, ValidationSettings())
    assert block["trials"]["raw"] == 400 and block["oos_test"]["candidates_tested"] == 2
    assert {r["strategy_id"] for r in rows} == {"A", "B"}
    assert all(r["dsr"] == pytest.approx(oos_dsr(res.oos_trade_pnl, deflation, 30)[0])
               for r, res in zip(rows, results, strict=True))


def test_trials_of_different_lengths_share_one_noise_scale():
    # skill-less trials of 10 to 400 trades: their per-trade Sharpe ratios scatter with
    # variance ~ mean(1/n), but SR * sqrt(n) is standard normal whatever n: the null variance
    # the DSR uses, 1 divided by the tested track's length, is what such trials show
    rng = np.random.default_rng(8)
    n = rng.integers(10, 400, 3000)
    sharpe = np.array([per_trade(rng.normal(0.0, 1.0, k)) for k in n])
    trials = pd.DataFrame({"trades": n, "sharpe_per_trade": sharpe})
    deflation = run_deflation(trials, [], ValidationSettings())
    # what the DSR assumes (variance 1) is what skill-less trials of any length show
    assert deflation.observed_t_variance == pytest.approx(1.0, abs=0.1)  # Student t: 1 + 2/n
    assert deflation.sharpe_variance(100) == pytest.approx(1.0 / 100)


def per_trade(pnl: np.ndarray) -> float:
    """Mean over std (ddof 1)."""
    return float(pnl.mean() / pnl.std(ddof=1))


def test_real_edges_spread_the_trials_but_not_the_benchmark():
    # half the trials have a real edge (t around 4): their observed t variance is large, yet
    # the benchmark stays the expected best of that many skill-less trials
    rng = np.random.default_rng(10)
    n = np.full(2000, 100)
    t = np.r_[rng.normal(0.0, 1.0, 1000), rng.normal(4.0, 1.0, 1000)]
    trials = pd.DataFrame({"trades": n, "sharpe_per_trade": t / np.sqrt(n)})
    deflation = run_deflation(trials, [], ValidationSettings())
    assert deflation.observed_t_variance > 4.5
    assert deflation.threshold_t == expected_max_sharpe(deflation.n_trials, 1.0)


def test_only_candidates_that_could_become_candidates_are_tested():
    # 2 candidates pass the in-sample rules with 40 out-of-sample trades; 40 others lost in
    # sample or have too few trades: they never enter the Benjamini-Hochberg family
    rng = np.random.default_rng(12)
    days = pd.date_range("2024-01-01", periods=100)
    daily = pd.DataFrame(rng.normal(size=(100, 2)), index=days)
    good = [_result(rng.normal(0.6, 1.0, 40), daily, 20, f"G{i}") for i in range(2)]
    lost = [_result(rng.normal(0.0, 1.0, 40), daily, 20, f"L{i}") for i in range(20)]
    for r in lost:
        r.row["is_pnl"] = -5.0
    thin = [_result(rng.normal(0.0, 1.0, 9), daily, 20, f"T{i}") for i in range(20)]
    trials = pd.DataFrame({"trades": [40] * 100, "sharpe_per_trade": rng.normal(0, 0.1, 100)})
    rows, block = judge_run(trials, good + lost + thin, ValidationSettings())
    assert block["oos_test"]["candidates_tested"] == 2 and block["oos_test"]["candidates"] == 42
    by_id = {r["strategy_id"]: r for r in rows}
    assert all(math.isnan(by_id[f"L{i}"]["oos_p_value"]) for i in range(20))
    assert all(not by_id[f"T{i}"]["oos_accepted"] for i in range(20))
    # the two tested ones: BH over K = 2, exactly as the plain step-up over their p-values
    p = [oos_p_value(r.oos_trade_pnl) for r in good]
    assert [by_id[f"G{i}"]["oos_accepted"] for i in range(2)] == \
        [i in plain_bh(p, 0.05) for i in range(2)]
