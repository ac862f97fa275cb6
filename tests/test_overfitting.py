"""PSR, DSR, expected maximum Sharpe and PBO against cases worked by hand."""

from __future__ import annotations

import math
from itertools import pairwise
from statistics import NormalDist

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.stats import norm

from stratforge.errors import ConfigError
from stratforge.sim.overfitting import (
    ReturnMoments,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    probabilistic_sharpe_ratio,
    probability_of_backtest_overfitting,
    return_moments,
    sharpe_metric,
)

GAMMA = 0.5772156649015329  # Euler-Mascheroni
PHI_INV = NormalDist().inv_cdf  # the standard library's normal, independent of scipy


# ---------------------------------------------------------------- PSR


def test_psr_hand_case_non_normal():
    # SR = 0.1 per observation, n = 100, skew = -0.5, raw kurtosis = 4:
    # variance term = 1 - (-0.5)(0.1) + (4 - 1)/4 * 0.1^2 = 1 + 0.05 + 0.0075 = 1.0575
    # z = 0.1 * sqrt(99) / sqrt(1.0575) = 0.99498744 / 1.02834819 = 0.96755...
    z = 0.1 * math.sqrt(99) / math.sqrt(1.0575)
    assert probabilistic_sharpe_ratio(0.1, 100, -0.5, 4.0) == pytest.approx(norm.cdf(z), 1e-12)
    assert probabilistic_sharpe_ratio(0.1, 100, -0.5, 4.0) == pytest.approx(0.83337, abs=1e-5)


def test_psr_hand_case_against_a_benchmark():
    # SR = 0.2, SR* = 0.05, n = 60, skew = 0.3, kurtosis = 5:
    # variance term = 1 - 0.3 * 0.2 + (5 - 1)/4 * 0.04 = 1 - 0.06 + 0.04 = 0.98
    # z = 0.15 * sqrt(59) / sqrt(0.98)
    z = 0.15 * math.sqrt(59) / math.sqrt(0.98)
    got = probabilistic_sharpe_ratio(0.2, 60, 0.3, 5.0, benchmark_sharpe=0.05)
    assert got == pytest.approx(norm.cdf(z), 1e-12)


def test_psr_normal_defaults_and_symmetry():
    # normal returns: variance term = 1 + (3 - 1)/4 SR^2 = 1 + 0.5 * 0.25^2 = 1.03125
    z = 0.25 * math.sqrt(39) / math.sqrt(1.03125)
    assert probabilistic_sharpe_ratio(0.25, 40) == pytest.approx(norm.cdf(z), 1e-12)
    assert probabilistic_sharpe_ratio(0.0, 40) == 0.5  # SR equal to the benchmark
    assert probabilistic_sharpe_ratio(0.3, 50, benchmark_sharpe=0.3) == 0.5


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"sharpe": 0.1, "n_obs": 1}, "n_obs"),
    ({"sharpe": 0.1, "n_obs": 10, "skew": 1.5, "kurtosis": 0.0}, "raw kurtosis"),
    ({"sharpe": math.nan, "n_obs": 10}, "finite"),
])
def test_psr_rejects_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        probabilistic_sharpe_ratio(**kwargs)


def test_return_moments_hand_case():
    # r = 1, 2, 3, 6: mean 3, deviations -2 -1 0 3, sum of squares 14, sum of cubes 18,
    # sum of fourth powers 98. std(ddof=1) = sqrt(14/3); m2 = 3.5, m3 = 4.5, m4 = 24.5.
    moments = return_moments(np.array([1.0, 2.0, 3.0, 6.0]))
    assert moments.sharpe == pytest.approx(3 / math.sqrt(14 / 3))
    assert moments.n_obs == 4
    assert moments.skew == pytest.approx(4.5 / 3.5 ** 1.5)
    assert moments.kurtosis == pytest.approx(24.5 / 3.5 ** 2)  # = 2.0
    with pytest.raises(ValueError, match="constant"):
        return_moments(np.full(5, 0.01))


# ---------------------------------------------------------------- expected max and DSR


def test_expected_max_sharpe_known_values():
    assert expected_max_sharpe(1, 0.7) == 0.0
    # N = 2: Phi^-1(1 - 1/2) = 0, so E = sqrt(V) * g * Phi^-1(1 - 1/(2e)) = g * 0.90048...
    assert expected_max_sharpe(2, 1.0) == pytest.approx(GAMMA * PHI_INV(1 - 1 / (2 * math.e)))
    assert expected_max_sharpe(2, 1.0) == pytest.approx(0.519755, abs=1e-6)
    # N = 10, V = 0.25: 0.5 * ((1 - g) * Phi^-1(0.9) + g * Phi^-1(1 - 1/(10 e)))
    want = 0.5 * ((1 - GAMMA) * PHI_INV(0.9) + GAMMA * PHI_INV(1 - 1 / (10 * math.e)))
    assert expected_max_sharpe(10, 0.25) == pytest.approx(want)
    # the approximation tracks the exact mean maximum of 100 standard normals, 2.50759
    assert expected_max_sharpe(100, 1.0) == pytest.approx(2.50759, rel=0.02)


def test_expected_max_sharpe_validates():
    with pytest.raises(ConfigError, match="n_trials"):
        expected_max_sharpe(0, 1.0)
    with pytest.raises(ConfigError, match="sharpe_variance"):
        expected_max_sharpe(5, -0.1)


def test_dsr_with_one_trial_is_psr_against_zero():
    returns = np.random.default_rng(3).normal(0.05, 1.0, 250)
    m = return_moments(returns)
    psr = probabilistic_sharpe_ratio(m.sharpe, m.n_obs, m.skew, m.kurtosis, 0.0)
    assert deflated_sharpe_ratio(returns, n_trials=1, sharpe_variance=0.3) == psr
    assert deflated_sharpe_ratio(m, n_trials=1, sharpe_variance=0.0) == psr
    assert deflated_sharpe_ratio(sharpe=m.sharpe, n_obs=m.n_obs, skew=m.skew,
                                 kurtosis=m.kurtosis, n_trials=1, sharpe_variance=2.0) == psr


def test_dsr_hand_case():
    # SR = 0.15, n = 250, normal, N = 10 trials, V = 0.0025 (std of trial Sharpes 0.05):
    # SR* = 0.05 * ((1 - g) Phi^-1(0.9) + g Phi^-1(1 - 1/(10e))) = 0.05 * 1.5747... = 0.07873
    # variance term = 1 + 0.5 * 0.15^2 = 1.01125; z = (0.15 - SR*) sqrt(249) / sqrt(1.01125)
    sr_star = 0.05 * ((1 - GAMMA) * PHI_INV(0.9) + GAMMA * PHI_INV(1 - 1 / (10 * math.e)))
    z = (0.15 - sr_star) * math.sqrt(249) / math.sqrt(1.01125)
    got = deflated_sharpe_ratio(sharpe=0.15, n_obs=250, n_trials=10, sharpe_variance=0.0025)
    assert got == pytest.approx(NormalDist().cdf(z), 1e-9)


def test_dsr_falls_as_trials_and_their_spread_grow():
    moments = ReturnMoments(0.12, 500, -0.2, 4.0)
    by_trials = [deflated_sharpe_ratio(moments, n_trials=n, sharpe_variance=0.002)
                 for n in (1, 2, 5, 10, 100, 1000)]
    assert all(a > b for a, b in pairwise(by_trials))
    by_variance = [deflated_sharpe_ratio(moments, n_trials=20, sharpe_variance=v)
                   for v in (0.0, 0.001, 0.004, 0.01)]
    assert all(a > b for a, b in pairwise(by_variance))


def test_dsr_needs_exactly_one_source():
    with pytest.raises(ValueError, match="either"):
        deflated_sharpe_ratio(np.ones(5), sharpe=0.1, n_obs=5, n_trials=2, sharpe_variance=1.0)
    with pytest.raises(ValueError, match="sharpe and n_obs"):
        deflated_sharpe_ratio(n_trials=2, sharpe_variance=1.0)


# ---------------------------------------------------------------- PBO

# columns A, B, C; four periods; S = 4 blocks of one row each
HAND_MATRIX = np.array([[4.0, 1.0, 2.0],
                        [-2.0, 3.0, 1.0],
                        [1.0, 2.0, 3.5],
                        [-0.5, -2.0, 2.0]])


def test_pbo_hand_case_mean_metric():
    # IS rows -> IS means (A, B, C) -> pick; OOS rows -> OOS means -> pick's rank of 3 -> w
    # (0,1): (1, 2, 1.5) -> B; (2,3): (0.25, 0, 2.75) -> rank 1 -> w 1/4 -> ln(1/3)
    # (0,2): (2.5, 1.5, 2.75) -> C; (1,3): (-1.25, 0.5, 1.5) -> rank 3 -> w 3/4 -> ln 3
    # (0,3): (1.75, -0.5, 2) -> C; (1,2): (-0.5, 2.5, 2.25) -> rank 2 -> w 1/2 -> 0
    # (1,2): (-0.5, 2.5, 2.25) -> B; (0,3): (1.75, -0.5, 2) -> rank 1 -> ln(1/3)
    # (1,3): (-1.25, 0.5, 1.5) -> C; (0,2): (2.5, 1.5, 2.75) -> rank 3 -> ln 3
    # (2,3): (0.25, 0, 2.75) -> C; (0,1): (1, 2, 1.5) -> rank 2 -> 0
    # lambda <= 0 in 4 of 6 combinations: PBO = 2/3
    result = probability_of_backtest_overfitting(HAND_MATRIX, n_splits=4, metric="mean")
    third = math.log(1 / 3)
    np.testing.assert_allclose(result.logits, [third, -third, 0, third, -third, 0], atol=1e-12)
    np.testing.assert_allclose(result.oos_relative_rank, [0.25, 0.75, 0.5, 0.25, 0.75, 0.5])
    assert result.pbo == pytest.approx(2 / 3)
    assert result.best_config.tolist() == [1, 2, 2, 1, 2, 2]
    np.testing.assert_allclose(result.degradation_pairs, [[2, 0], [2.75, 1.5], [2, 2.25],
                                                          [2.5, -0.5], [1.5, 2.75], [2.75, 1.5]])
    # one chosen config loses out of sample: (1,2) -> B at -0.5
    assert result.prob_oos_loss == pytest.approx(1 / 6)
    # IS mean 2.25, OOS mean 1.25, Sxy = -1.25, Sxx = 1.25 -> slope -1, intercept 3.5
    assert result.degradation_slope == pytest.approx(-1.0)
    assert result.degradation_intercept == pytest.approx(3.5)
    assert (result.n_combinations, result.n_splits, result.n_configs) == (6, 4, 3)


# A = 1, 4 | 2, 2.5 and B = 2, 2.5 | 1, 3 (S = 2 blocks of two rows)
SHARPE_MATRIX = np.array([[1.0, 2.0], [4.0, 2.5], [2.0, 1.0], [2.5, 3.0]])


def test_pbo_hand_case_sharpe_metric_differs_from_mean():
    # Sharpe of two values a, b = ((a + b) / 2) / (|a - b| / sqrt 2)
    # block 0: A (1, 4) -> 2.5 / (3/sqrt2) = 1.1785, B (2, 2.5) -> 2.25 / (0.5/sqrt2) = 6.3640
    # block 1: A (2, 2.5) -> 6.3640, B (1, 3) -> 2 / (2/sqrt2) = sqrt2 = 1.4142
    # IS block 0 -> B; OOS B 1.414 < A 6.364 -> rank 1 of 2 -> w 1/3 -> lambda ln(1/2)
    # IS block 1 -> A; OOS A 1.1785 < B 6.364 -> rank 1 -> ln(1/2).  PBO = 1
    result = probability_of_backtest_overfitting(SHARPE_MATRIX, n_splits=2)
    np.testing.assert_allclose(result.logits, [math.log(0.5)] * 2)
    np.testing.assert_allclose(result.is_performance, [9 / math.sqrt(2), 9 / math.sqrt(2)])
    np.testing.assert_allclose(result.oos_performance,
                               [math.sqrt(2), 2.5 / (3 / math.sqrt(2))])
    assert result.pbo == 1.0
    # by mean: block 0 A 2.5 > B 2.25 -> A, OOS A 2.25 > B 2 -> w 2/3 -> ln 2; block 1 alike
    by_mean = probability_of_backtest_overfitting(SHARPE_MATRIX, n_splits=2, metric="mean")
    np.testing.assert_allclose(by_mean.logits, [math.log(2)] * 2)
    assert by_mean.pbo == 0.0


def test_pbo_in_sample_ties_average_their_ranks():
    # (1,3) of a tie: B and C both score 3 in-sample on rows 1 and 3 here
    matrix = np.array([[5.0, 1.0, 3.0], [0.0, 1.0, 2.0], [0.0, 1.0, 1.0], [-1.0, 2.0, 1.0]])
    result = probability_of_backtest_overfitting(matrix, n_splits=4, metric="mean")
    # combination (1,3): IS sums A -1, B 3, C 3 -> tie B, C; OOS rows 0,2: A 5, B 2, C 4
    # ranks A 3, B 1, C 2 -> w = mean(1, 2) / 4 = 0.375
    assert result.oos_relative_rank[4] == pytest.approx(0.375)
    assert result.best_config[4] == 1


def test_pbo_dominant_config_never_overfits():
    rng = np.random.default_rng(11)
    noise = rng.normal(0, 1, (64, 6))
    dominant = noise.copy()
    dominant[:, 0] = noise[:, 1:].max(axis=1) + 0.5  # best in every single period
    assert probability_of_backtest_overfitting(dominant, 8, metric="mean").pbo == 0.0
    steady = noise.copy()
    steady[:, 0] = 1.0 + 0.1 * noise[:, 0]  # Sharpe about 10 against about 0
    result = probability_of_backtest_overfitting(steady, 8)
    assert result.pbo == 0.0
    assert (result.best_config == 0).all()
    assert np.all(result.oos_relative_rank == 6 / 7)


def test_pbo_of_pure_noise_is_about_one_half():
    rng = np.random.default_rng(2024)
    # N even, so the chosen config's OOS rank is uniform on 1..N and P(rank <= N/2) = 1/2
    values = [probability_of_backtest_overfitting(rng.normal(0, 1, (48, 10)), 8).pbo
              for _ in range(150)]
    assert np.mean(values) == pytest.approx(0.5, abs=0.06)


def test_pbo_sharpe_is_not_shift_invariant_but_mean_is():
    # A = 0, 2 | 0, 2 and B = 1, 1.5 | 0.2, 0.4. Sharpe: A 0.707 in both blocks, B 3.54 then
    # 2.12 -> B wins IS and OOS both ways -> PBO 0. Minus 1: A -1, 1 -> Sharpe 0;
    # B 0, 0.5 | -0.8, -0.6 -> 0.707 | -4.95 -> each IS winner comes last OOS -> PBO 1.
    matrix = np.array([[0.0, 1.0], [2.0, 1.5], [0.0, 0.2], [2.0, 0.4]])
    assert probability_of_backtest_overfitting(matrix, 2).pbo == 0.0
    assert probability_of_backtest_overfitting(matrix - 1.0, 2).pbo == 1.0
    assert (probability_of_backtest_overfitting(matrix, 2, metric="mean").pbo
            == probability_of_backtest_overfitting(matrix - 1.0, 2, metric="mean").pbo == 1.0)


def test_pbo_combination_count_and_custom_metric():
    matrix = np.random.default_rng(5).normal(0, 1, (30, 4))  # 30 rows into 6 blocks of 5
    result = probability_of_backtest_overfitting(matrix, 6, metric=lambda b: b.sum(axis=0))
    assert result.n_combinations == math.comb(6, 3) == 20
    assert result.logits.shape == result.is_performance.shape == (20,)


def test_pbo_uneven_blocks_give_the_extra_row_to_the_first_block():
    # T = 5, S = 2: blocks are rows 0-2 and rows 3-4 (np.array_split)
    matrix = np.array([[1.0, 0.0], [1.0, 0.0], [4.0, 0.0], [-5.0, 3.0], [-5.0, 3.0]])
    result = probability_of_backtest_overfitting(matrix, 2, metric="mean")
    # IS rows 0-2: A 2 > B 0 -> A, OOS rows 3-4: A -5 < B 3 -> rank 1 -> ln(1/2)
    # IS rows 3-4: B 3 > A -5 -> B, OOS rows 0-2: B 0 < A 2 -> rank 1 -> ln(1/2)
    np.testing.assert_allclose(result.is_performance, [2.0, 3.0])
    np.testing.assert_allclose(result.oos_performance, [-5.0, 0.0])
    np.testing.assert_allclose(result.logits, [math.log(0.5)] * 2)


def test_pbo_sharpe_of_a_single_row_half_is_nan_and_ranks_last():
    # T = 3, S = 2: blocks rows 0-1 and row 2; one row has no Sharpe ratio
    matrix = np.array([[1.0, 2.0], [2.0, 2.5], [0.5, -1.0]])
    result = probability_of_backtest_overfitting(matrix, 2)
    # IS rows 0-1: A 1.5 / (1/sqrt2) = 2.1213, B 2.25 / (0.5/sqrt2) = 6.364 -> B;
    # OOS row 2: both NaN -> tie, average rank 1.5 -> w = 0.5 -> lambda 0
    # IS row 2: both NaN -> both tie as best -> mean rank 1.5 -> w 0.5 -> lambda 0
    np.testing.assert_allclose(result.oos_relative_rank, [0.5, 0.5])
    assert result.pbo == 1.0
    assert np.isnan(result.oos_performance[0]) and np.isnan(result.is_performance[1])


def test_pbo_built_in_metrics_match_their_plain_per_combination_version():
    rng = np.random.default_rng(8)
    matrix = rng.normal(0.01, 1.0, (203, 7))
    matrix[:, 3] = 0.02  # a flat column scores +inf on both paths
    for name, plain in (("sharpe", sharpe_metric), ("mean", lambda b: b.mean(axis=0))):
        fast = probability_of_backtest_overfitting(matrix, 8, metric=name)
        slow = probability_of_backtest_overfitting(matrix, 8, metric=lambda b, f=plain: f(b))
        np.testing.assert_array_equal(fast.logits, slow.logits)
        np.testing.assert_allclose(fast.degradation_pairs, slow.degradation_pairs, rtol=1e-10)


@pytest.mark.parametrize(("matrix", "splits", "error", "message"), [
    (np.zeros((8, 3)), 3, ConfigError, "even"),
    (np.zeros((8, 3)), 0, ConfigError, "even"),
    (np.zeros((8, 1)), 2, ValueError, "at least 2 configs"),
    (np.zeros((3, 3)), 4, ValueError, "fewer than n_splits"),
    (np.zeros(8), 2, ValueError, "2-D"),
    (np.array([[0.0, np.nan], [1.0, 2.0]]), 2, ValueError, "NaN"),
])
def test_pbo_rejects_bad_input(matrix, splits, error, message):
    with pytest.raises(error, match=message):
        probability_of_backtest_overfitting(matrix, splits)


def test_pbo_rejects_unknown_metric_and_bad_callable():
    with pytest.raises(ConfigError, match="unknown PBO metric"):
        probability_of_backtest_overfitting(np.eye(4), 2, metric="calmar")
    with pytest.raises(ValueError, match="returned 1 values for 4"):
        probability_of_backtest_overfitting(np.eye(4), 2, metric=lambda b: np.zeros(1))


# ---------------------------------------------------------------- properties

MATRICES = st.integers(2, 5).flatmap(lambda n: arrays(
    np.float64, st.tuples(st.integers(4, 12), st.just(n)),
    elements=st.floats(-1.0, 1.0, allow_nan=False, width=32)))


@settings(max_examples=60, deadline=None)
@given(MATRICES, st.sampled_from([2, 4]), st.sampled_from(["sharpe", "mean"]), st.randoms())
def test_pbo_is_a_probability_and_ignores_config_order(matrix, splits, metric, random):
    result = probability_of_backtest_overfitting(matrix, splits, metric=metric)
    assert 0.0 <= result.pbo <= 1.0
    assert np.all((result.oos_relative_rank > 0) & (result.oos_relative_rank < 1))
    order = list(range(matrix.shape[1]))
    random.shuffle(order)
    shuffled = probability_of_backtest_overfitting(matrix[:, order], splits, metric=metric)
    np.testing.assert_array_equal(shuffled.logits, result.logits)
    assert shuffled.pbo == result.pbo


@settings(max_examples=60, deadline=None)
@given(MATRICES, st.sampled_from([2, 4]), st.sampled_from([0.25, 2.0, 64.0]))
def test_pbo_sharpe_ignores_positive_scaling(matrix, splits, scale):
    # powers of two scale exactly, so every Sharpe ratio is unchanged bit for bit
    assert (probability_of_backtest_overfitting(matrix * scale, splits).pbo
            == probability_of_backtest_overfitting(matrix, splits).pbo)


INTEGER_MATRICES = st.integers(2, 5).flatmap(lambda n: arrays(
    np.float64, st.tuples(st.integers(4, 12), st.just(n)), elements=st.integers(-50, 50)))


@settings(max_examples=60, deadline=None)
@given(INTEGER_MATRICES, st.sampled_from([2, 4]), st.integers(-100, 100))
def test_pbo_mean_ignores_a_constant_added_to_all_returns(matrix, splits, shift):
    # integer returns keep every sum exact, so the shift cannot reorder near-ties
    base = probability_of_backtest_overfitting(matrix, splits, metric="mean")
    moved = probability_of_backtest_overfitting(matrix + shift, splits, metric="mean")
    np.testing.assert_array_equal(moved.logits, base.logits)


def test_dsr_reproduces_the_numerical_example_of_bailey_and_lopez_de_prado():
    # The deflated Sharpe ratio (2014), section "A numerical example": 100 independent trials
    # whose annualised Sharpe ratios have variance 1/2; the chosen one has annualised SR 2.5
    # over 1,250 daily observations (5 years), skewness -3 and kurtosis 10. The paper gets
    # SR0 = 0.1132 per day and DSR = 0.9004.
    per_year = 250
    threshold = expected_max_sharpe(100, 0.5 / per_year)
    assert threshold == pytest.approx(0.1132, abs=1e-4)
    dsr = deflated_sharpe_ratio(sharpe=2.5 / math.sqrt(per_year), n_obs=1250, skew=-3.0,
                                kurtosis=10.0, n_trials=100, sharpe_variance=0.5 / per_year)
    assert dsr == pytest.approx(0.9004, abs=5e-4)


def test_expected_max_sharpe_of_fractional_trials_is_continuous_and_grows():
    values = [expected_max_sharpe(n, 0.01) for n in (1.0, 1.5, 2.0, 2.5, 10.0, 10.5, 1e4)]
    assert values[0] == 0.0
    assert all(b > a for a, b in pairwise(values[1:]))
    assert expected_max_sharpe(2.0000001, 0.01) == pytest.approx(expected_max_sharpe(2, 0.01))
    assert expected_max_sharpe(1.0001, 0.01) == 0.0  # never below the one-trial value
