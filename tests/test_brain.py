"""The Bayesian brain against hand-worked Beta posteriors, scipy, sequential updates and
sampling frequencies with fixed seeds; plus brain keys, save/load and errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from stratforge.errors import ConfigError, DataError
from stratforge.search.brain import FRAME_COLUMNS, BayesianBrain, brain_key

# ----- brain_key ---------------------------------------------------------------------------


def test_keys_do_not_drift():
    # The sweep and the refiner both build keys with brain_key; this literal pins the format.
    assert brain_key("T0001", "5m") == "T0001_5m"


@pytest.mark.parametrize(("tf", "name"), [("1d", "1D"), ("1D", "1D"), ("1w", "1W"),
                                          ("15m", "15m"), ("4h", "4h"), ("1s", "1s")])
def test_brain_key_normalises_timeframe(tf, name):
    assert brain_key("T7", tf) == f"T7_{name}"


@pytest.mark.parametrize(("template", "tf"), [("", "5m"), ("T 1", "5m"), ("T1\t", "5m"),
                                              ("T1", ""), ("T1", " 5m"), ("T1", "7m"),
                                              ("T1", "2D"), ("T1", "bogus"), (None, "5m")])
def test_brain_key_rejects_bad_input(template, tf):
    with pytest.raises(ConfigError):
        brain_key(template, tf)


# ----- posterior, mean, interval -----------------------------------------------------------


def test_posterior_is_prior_plus_counts():
    brain = BayesianBrain()
    for win in [True, True, False, True, False, True, True]:
        brain.update("a", win)
    assert (brain.wins("a"), brain.losses("a"), brain.n("a")) == (5, 2, 7)
    assert brain.posterior("a") == (6.0, 3.0)
    assert brain.mean("a") == pytest.approx(6 / 9)
    assert brain.posterior("unseen") == (1.0, 1.0)
    assert brain.mean("unseen") == 0.5
    assert "a" in brain and "unseen" not in brain and len(brain) == 1

    informed = BayesianBrain(prior_alpha=2.0, prior_beta=8.0)
    informed.batch_update_counts(["x"], [3], [1])
    assert informed.posterior("x") == (5.0, 9.0)
    assert informed.mean("x") == pytest.approx(5 / 14)


def test_credible_interval_by_hand():
    brain = BayesianBrain()
    # Beta(1, 1) is uniform: the 90 % equal-tailed interval is (0.05, 0.95).
    assert brain.credible_interval("new") == pytest.approx((0.05, 0.95))
    assert brain.confidence("new") == pytest.approx(0.1)
    # 4 wins, 0 losses -> Beta(5, 1): cdf x**5, so ppf(q) = q**(1/5).
    brain.batch_update_counts(["k"], [4], [0])
    lo, hi = brain.credible_interval("k", level=0.8)
    assert lo == pytest.approx(0.1 ** 0.2)
    assert hi == pytest.approx(0.9 ** 0.2)
    assert brain.confidence("k", level=0.8) == pytest.approx(1 - (0.9 ** 0.2 - 0.1 ** 0.2))
    # Against scipy on an asymmetric case.
    brain.batch_update_counts(["m"], [7], [12])
    assert brain.credible_interval("m", 0.95) == pytest.approx(
        tuple(stats.beta.ppf([0.025, 0.975], 8, 13)))


def test_to_frame():
    brain = BayesianBrain()
    assert list(brain.to_frame().columns) == FRAME_COLUMNS and brain.to_frame().empty
    brain.batch_update_counts(["b", "a"], [3, 0], [1, 2])
    frame = brain.to_frame()
    assert list(frame.columns) == FRAME_COLUMNS
    assert frame["key"].tolist() == ["a", "b"]
    assert frame["wins"].tolist() == [0, 3] and frame["losses"].tolist() == [2, 1]
    assert frame["alpha"].tolist() == [1.0, 4.0] and frame["beta"].tolist() == [3.0, 2.0]
    assert frame["mean"].tolist() == pytest.approx([0.25, 4 / 6])
    assert frame["lo"].tolist() == pytest.approx([brain.credible_interval("a")[0],
                                                  brain.credible_interval("b")[0]])
    assert frame["hi"].tolist() == pytest.approx([brain.credible_interval("a")[1],
                                                  brain.credible_interval("b")[1]])


# ----- batch updates -----------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["T1_5m", "T2_5m", "T1_1D", "x"]), st.booleans()),
                max_size=40))
def test_batch_update_equals_sequential_updates(outcomes):
    sequential = BayesianBrain()
    for key, win in outcomes:
        sequential.update(key, win)
    batched = BayesianBrain()
    batched.batch_update([k for k, _ in outcomes], np.array([w for _, w in outcomes], bool))
    assert batched == sequential
    as_ints = BayesianBrain()
    as_ints.batch_update([k for k, _ in outcomes], [int(w) for _, w in outcomes])
    assert as_ints == sequential
    counted = BayesianBrain()
    counted.batch_update_counts([k for k, _ in outcomes], [int(w) for _, w in outcomes],
                                [int(not w) for _, w in outcomes])
    assert counted == sequential


def test_batch_update_counts_accumulates_and_skips_zero_rows():
    brain = BayesianBrain()
    brain.batch_update_counts(["a", "b", "a", "z"], np.array([2, 1, 3, 0]), [0, 4, 1, 0])
    brain.batch_update_counts(pd.Series(["a"]), [1], [1])
    assert brain.posterior("a") == (1 + 6, 1 + 2)
    assert brain.posterior("b") == (2, 5)
    assert "z" not in brain
    assert brain.keys() == ["a", "b"]


@pytest.mark.parametrize("call", [
    lambda b: b.update("", True),
    lambda b: b.update("a", 1),
    lambda b: b.batch_update(["a", "b"], [True]),
    lambda b: b.batch_update(["a"], [2]),
    lambda b: b.batch_update("ab", [True, False]),
    lambda b: b.batch_update_counts(["a"], [-1], [0]),
    lambda b: b.batch_update_counts(["a"], [0.5], [0]),
    lambda b: b.batch_update_counts(["a", None], [1, 1], [0, 0]),
    lambda b: b.credible_interval("a", level=1.0),
    lambda b: b.sample(["a"], rng=None),
    lambda b: b.should_fire("a"),  # exploring needs a seeded rng
    lambda b: b.should_fire("a", min_probability=1.5, rng=0),
])
def test_bad_input_raises_config_error(call):
    with pytest.raises(ConfigError):
        call(BayesianBrain())


@pytest.mark.parametrize(("a", "b"), [(0, 1), (1, -2), (float("nan"), 1), (1, float("inf"))])
def test_bad_prior(a, b):
    with pytest.raises(ConfigError):
        BayesianBrain(a, b)


# ----- Thompson sampling and should_fire ---------------------------------------------------


def test_thompson_prefers_the_better_posterior():
    brain = BayesianBrain()
    brain.batch_update_counts(["good", "bad"], [29, 9], [9, 29])  # Beta(30,10) vs Beta(10,30)
    assert brain.posterior("good") == (30, 10) and brain.posterior("bad") == (10, 30)
    draws = brain.sample(["good", "bad"], np.random.default_rng(7), size=5000)
    assert draws.shape == (5000, 2)
    share = (draws.argmax(axis=1) == 0).mean()
    assert share > 0.999
    single = brain.sample(["good", "bad", "never"], np.random.default_rng(7))
    assert single.shape == (3,) and ((single > 0) & (single < 1)).all()


def test_sampling_is_deterministic_and_unseen_keys_draw_from_prior():
    brain = BayesianBrain(2.0, 5.0)
    brain.update("a", True)
    one = brain.sample(["a", "new"], 123, size=4000)
    two = brain.sample(["a", "new"], np.random.default_rng(123), size=4000)
    np.testing.assert_array_equal(one, two)
    # Draws for the unseen key follow the prior Beta(2, 5).
    assert stats.kstest(one[:, 1], stats.beta(2, 5).cdf).pvalue > 0.001


@pytest.mark.parametrize("p", [0.3, 0.5, 0.8])
def test_empty_brain_still_fires_at_the_prior_rate(p):
    brain = BayesianBrain()
    rng = np.random.default_rng(2024)
    fired = [brain.should_fire("T0001_5m", min_probability=p, rng=rng) for _ in range(4000)]
    # P(Beta(1, 1) >= p) = 1 - p; the binomial sd is <= 0.008 at n = 4000.
    assert np.mean(fired) == pytest.approx(1 - p, abs=0.03)
    assert not any(brain.should_fire("T0001_5m", min_probability=p, explore=False)
                   for _ in range(10))


def test_known_bad_state_never_fires_and_known_good_always_does():
    brain = BayesianBrain()
    brain.batch_update_counts(["bad", "good"], [0, 50], [50, 0])
    rng = np.random.default_rng(0)
    assert not any(brain.should_fire("bad", rng=rng) for _ in range(2000))
    assert all(brain.should_fire("good", rng=rng) for _ in range(2000))
    assert brain.should_fire("good", explore=False)
    assert not brain.should_fire("bad", explore=False)


def test_rarely_seen_state_is_explored_not_locked_out():
    brain = BayesianBrain()
    brain.batch_update_counts(["rare"], [0], [3])  # Beta(1, 4): mean 0.2, n < min_samples
    rng = np.random.default_rng(5)
    rate = np.mean([brain.should_fire("rare", min_probability=0.5, rng=rng)
                    for _ in range(4000)])
    expected = stats.beta.sf(0.5, 1, 4)  # 0.5 ** 4 = 0.0625
    assert rate == pytest.approx(expected, abs=0.015)
    # Once min_samples is met and confidence is high, the mean decides.
    assert not brain.should_fire("rare", min_samples=3, min_confidence=0.0, rng=rng)


def test_should_fire_is_reproducible():
    brain = BayesianBrain()
    brain.batch_update_counts(["k"], [2], [2])
    first = [brain.should_fire("k", rng=np.random.default_rng(s)) for s in range(50)]
    again = [brain.should_fire("k", rng=s) for s in range(50)]
    assert first == again and 0 < sum(first) < 50


# ----- save / load -------------------------------------------------------------------------


def test_save_load_round_trip(tmp_path):
    brain = BayesianBrain(prior_alpha=2.5, prior_beta=0.5)
    brain.batch_update(["T0001_5m", "T0002_1D", "T0001_5m"], [True, False, False])
    path = tmp_path / "deep" / "brain.parquet"
    brain.save(path)
    loaded = BayesianBrain.load(path)
    assert loaded == brain
    assert loaded.prior_alpha == 2.5 and loaded.prior_beta == 0.5
    pd.testing.assert_frame_equal(loaded.to_frame(), brain.to_frame())
    assert loaded != BayesianBrain(2.5, 0.5)
    assert list(tmp_path.joinpath("deep").iterdir()) == [path]  # no temporary files left
    empty = BayesianBrain()
    empty.save(tmp_path / "empty.parquet")
    assert BayesianBrain.load(tmp_path / "empty.parquet") == empty


def test_load_rejects_bad_files(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        BayesianBrain.load(tmp_path / "missing.parquet")
    plain = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"key": ["a"], "wins": [1], "losses": [0]}), plain)
    with pytest.raises(DataError, match="metadata"):
        BayesianBrain.load(plain)
    meta = {b"stratforge.brain": b'{"prior_alpha": 1.0, "prior_beta": 1.0}'}
    dup = tmp_path / "dup.parquet"
    pq.write_table(pa.table({"key": ["a", "a"], "wins": [1, 1], "losses": [0, 0]})
                   .replace_schema_metadata(meta), dup)
    with pytest.raises(DataError, match="duplicate"):
        BayesianBrain.load(dup)
    neg = tmp_path / "neg.parquet"
    pq.write_table(pa.table({"key": ["a"], "wins": [-1], "losses": [0]})
                   .replace_schema_metadata(meta), neg)
    with pytest.raises(DataError, match="row 0"):
        BayesianBrain.load(neg)
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"not parquet")
    with pytest.raises(DataError):
        BayesianBrain.load(garbage)
