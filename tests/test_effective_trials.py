"""The effective number of independent trials: limiting cases the method must honour (one
trial, identical trials, independent groups, pure noise) and a plain eigenvalue reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stratforge.errors import ConfigError
from stratforge.sim.effective_trials import effective_trials, sampled_effective_trials


def reference(returns: np.ndarray) -> float:
    """(sum of eigenvalues)^2 / sum of squared eigenvalues of the correlation matrix."""
    eig = np.linalg.eigvalsh(np.corrcoef(returns, rowvar=False))
    return float(eig.sum() ** 2 / (eig ** 2).sum())


def test_one_trial_counts_one():
    rng = np.random.default_rng(1)
    result = effective_trials(rng.normal(size=(50, 1)))
    assert (result.raw, result.used, result.effective) == (1, 1, 1.0)


def test_identical_trials_count_one():
    rng = np.random.default_rng(2)
    series = rng.normal(size=(200, 1))
    result = effective_trials(np.repeat(series, 40, axis=1) * np.arange(1, 41))  # scaled copies
    assert result.raw == 40 and result.effective == pytest.approx(1.0)


def test_independent_groups_of_identical_trials_count_the_groups():
    rng = np.random.default_rng(3)
    groups = rng.normal(size=(20_000, 5))
    result = effective_trials(np.repeat(groups, [1, 3, 7, 2, 10], axis=1))
    # five independent sources, whatever the group sizes: about 5 (uneven groups count less)
    assert 2.5 < result.effective <= 5.0
    even = effective_trials(np.repeat(groups, 4, axis=1))
    assert even.effective == pytest.approx(5.0, rel=0.01)


def test_pure_noise_counts_almost_every_trial():
    rng = np.random.default_rng(4)
    result = effective_trials(rng.normal(size=(20_000, 30)))
    assert result.effective == pytest.approx(30, rel=0.05)
    short = effective_trials(rng.normal(size=(60, 30)))
    assert 10 < short.effective < 30  # short series: spurious correlation lowers the count


def test_trials_without_enough_varying_data_are_dropped():
    rng = np.random.default_rng(5)
    matrix = rng.normal(size=(100, 4))
    matrix[:, 1] = 0.0            # never traded
    matrix[:98, 2] = np.nan       # two observations only
    result = effective_trials(matrix)
    assert (result.raw, result.used, result.dropped) == (4, 2, 2)
    assert result.effective == pytest.approx(reference(matrix[:, [0, 3]]))
    assert effective_trials(np.zeros((10, 3))).effective == 0.0


def test_bad_shape_is_refused():
    with pytest.raises(ConfigError, match="2-D"):
        effective_trials(np.zeros(5))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 12), t=st.integers(8, 200),
       mix=st.floats(0.0, 1.0))
def test_matches_the_eigenvalue_reference_and_stays_in_bounds(seed, n, t, mix):
    rng = np.random.default_rng(seed)
    common = rng.normal(size=(t, 1))
    matrix = mix * common + (1 - mix) * rng.normal(size=(t, n))
    result = effective_trials(matrix)
    if result.used == n:
        assert result.effective == pytest.approx(min(max(reference(matrix), 1.0), n),
                                                 rel=1e-9)
    assert 1.0 <= result.effective <= result.used


# --- the run-wide estimate from a stratified sample -------------------------------------------

def test_sampled_estimate_of_a_full_sample_is_the_plain_participation_ratio():
    rng = np.random.default_rng(11)
    common = rng.normal(size=(300, 1))
    matrix = common + rng.normal(size=(300, 12)) * np.linspace(0.2, 3.0, 12)
    strata = np.repeat([0, 1, 2], 4)
    got = sampled_effective_trials(matrix, strata, {0: 4, 1: 4, 2: 4}, noise_correction=False)
    assert got.raw == got.used == 12
    assert got.effective == pytest.approx(reference(matrix), rel=1e-9)


def test_sampled_estimate_of_two_unequal_groups_of_identical_trials():
    # 300 copies of one series and 100 of an independent one: the population's participation
    # ratio is (300 + 100)^2 / (300^2 + 100^2) = 1.6, whatever five samples of each show
    rng = np.random.default_rng(12)
    sources = rng.normal(size=(20_000, 2))
    sample = np.repeat(sources, 5, axis=1) * rng.uniform(0.5, 2.0, 10)
    got = sampled_effective_trials(sample, np.repeat([7, 9], 5), {7: 300, 9: 100})
    assert (got.raw, got.used, got.dropped) == (400, 400, 0)
    assert got.effective == pytest.approx(1.6, rel=0.01)


def test_sampled_estimate_counts_independent_trials_as_independent():
    # 200 independent series of 250 days: chance correlations alone would make them look like
    # about 111 trials (200 / (1 + 199 / 249)); the correction brings back about 200
    rng = np.random.default_rng(13)
    matrix = rng.normal(size=(250, 200))
    strata = np.repeat(np.arange(10), 20)
    population = {s: 20 for s in range(10)}
    raw = sampled_effective_trials(matrix, strata, population, noise_correction=False)
    corrected = sampled_effective_trials(matrix, strata, population)
    assert raw.effective == pytest.approx(200 / (1 + 199 / 249), rel=0.05)
    assert corrected.effective == pytest.approx(200, rel=0.15)


def test_sampled_estimate_matches_the_whole_population():
    # a factor model: 4 strata of 250 trials, each trial = its stratum's factor + noise; the
    # estimate from 25 sampled trials per stratum is close to the participation ratio of all
    # 1,000 (both without the chance correction, on long series)
    rng = np.random.default_rng(14)
    factors = rng.normal(size=(4_000, 4))
    loads = rng.uniform(0.3, 1.5, 1_000)
    strata = np.repeat(np.arange(4), 250)
    population = factors[:, strata] * loads + rng.normal(size=(4_000, 1_000))
    exact = reference(population)
    pick = np.concatenate([rng.choice(np.flatnonzero(strata == s), 25, replace=False)
                           for s in range(4)])
    got = sampled_effective_trials(population[:, pick], strata[pick],
                                   {s: 250 for s in range(4)}, noise_correction=False)
    assert got.effective == pytest.approx(exact, rel=0.1)


def test_sampled_estimate_limiting_cases_and_dropped_strata():
    rng = np.random.default_rng(15)
    one = sampled_effective_trials(rng.normal(size=(50, 1)), np.array([3]), {3: 1})
    assert (one.raw, one.used, one.effective) == (1, 1, 1.0)
    series = rng.normal(size=(100, 1))
    same = sampled_effective_trials(np.repeat(series, 6, axis=1) * np.arange(1, 7),
                                    np.repeat([0, 1], 3), {0: 50, 1: 70})
    assert same.raw == 120 and same.effective == pytest.approx(1.0, abs=0.01)
    # a stratum whose sampled trials never trade is dropped, with its population
    flat = np.column_stack([rng.normal(size=(100, 2)), np.zeros((100, 2))])
    dropped = sampled_effective_trials(flat, np.array([0, 0, 1, 1]), {0: 10, 1: 40})
    assert (dropped.raw, dropped.used, dropped.dropped) == (50, 10, 40)
    with pytest.raises(ConfigError, match="smaller than its sample"):
        sampled_effective_trials(flat, np.array([0, 0, 1, 1]), {0: 1, 1: 40})


def test_a_capped_stratified_sample_keeps_every_stratum_and_the_estimate():
    from stratforge.search.judgement import capped_columns

    rng = np.random.default_rng(5)
    periods, strata_count, per = 250, 40, 64
    # each stratum: 64 series around one common factor (correlated inside, independent across)
    common = rng.standard_normal((periods, strata_count))
    columns = [common[:, s:s + 1] + 0.5 * rng.standard_normal((periods, per))
               for s in range(strata_count)]
    matrix = np.hstack(columns)
    labels = np.repeat(np.arange(strata_count), per)
    population = {s: per for s in range(strata_count)}
    full = sampled_effective_trials(matrix, labels, population).effective
    keep = capped_columns(labels, 400, seed=3)
    assert len(keep) == 400 and np.array_equal(keep, np.sort(keep))
    assert set(np.unique(labels[keep])) == set(range(strata_count))  # 10 of each stratum
    assert np.array_equal(keep, capped_columns(labels, 400, seed=3))  # seeded
    thin = sampled_effective_trials(matrix[:, keep], labels[keep], population).effective
    assert thin == pytest.approx(full, rel=0.1)
    assert strata_count * 0.8 < full < strata_count * 2  # about one trial per factor
    assert np.array_equal(capped_columns(labels, 10_000, seed=3), np.arange(len(labels)))
