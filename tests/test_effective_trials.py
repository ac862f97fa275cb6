"""The effective number of independent trials: limiting cases the method must honour (one
trial, identical trials, independent groups, pure noise) and a plain eigenvalue reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stratforge.errors import ConfigError
from stratforge.sim.effective_trials import effective_trials


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
