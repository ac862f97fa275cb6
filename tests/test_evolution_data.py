"""Features, targets, the split and the regimes: no lookahead, purge gaps, nothing from the
test span in any fit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import random_bars
from stratforge.errors import DataError
from stratforge.evolution import indicators as ind
from stratforge.evolution.dataset import chronological_split, make_target
from stratforge.evolution.featureset import build_features
from stratforge.evolution.regimes import fit_regimes, regime_mask
from stratforge.features.states import compute_states


@pytest.fixture(scope="module")
def bars():
    return random_bars(5, "2024-01-01", "2024-01-06", keep=0.9)


def test_features_never_look_ahead(bars):
    reference = random_bars(9, "2024-01-01", "2024-01-06", keep=0.9)
    cut = len(bars) * 2 // 3
    full = build_features(bars, compute_states(bars), {"ES": reference})
    head = bars.iloc[:cut].reset_index(drop=True)
    part = build_features(head, compute_states(head), {"ES": reference})
    pd.testing.assert_frame_equal(part, full.iloc[:cut].reset_index(drop=True))
    assert full.shape[1] >= 100
    assert all(full[c].dtype == np.float64 for c in full.columns)


def test_reference_symbols_join_as_of_without_later_bars(bars):
    reference = bars.iloc[::3].reset_index(drop=True)  # a sparser reference series
    features = build_features(bars, compute_states(bars), {"ES": reference})
    ref_close = reference["close"].to_numpy()
    ref_ts = reference["ts"].array.asi8
    own_ts = bars["ts"].array.asi8
    for row in range(200, len(bars), 97):
        at = int(np.searchsorted(ref_ts, own_ts[row], side="right")) - 1
        expected = np.log(ref_close[at] / ref_close[at - 1])
        assert features["ref_ES_logret_1"].iloc[row] == pytest.approx(expected)
        assert ref_ts[at] <= own_ts[row]


def test_indicators_against_hand_computed_values():
    close = np.array([10.0, 11.0, 10.5, 11.5, 12.0, 11.0])
    high = close + 0.5
    low = close - 0.5
    # RSI with period 2: Wilder's recursion (alpha 1/2) from the first change, by hand
    gains, losses = [1.0, 0.0, 1.0, 0.5, 0.0], [0.0, 0.5, 0.0, 0.0, 1.0]
    g, loss = gains[0], losses[0]
    values = []
    for gain, down in zip(gains[1:], losses[1:], strict=True):
        g, loss = 0.5 * g + 0.5 * gain, 0.5 * loss + 0.5 * down
        values.append(100 * g / (g + loss))
    assert values[0] == pytest.approx(200 / 3)
    assert ind.rsi(close, 2)[2:] == pytest.approx(values)
    assert np.isnan(ind.rsi(close, 2)[:2]).all()
    park = ind.parkinson(high, low, 3)
    expected = np.sqrt(np.mean(np.log(high[3:6] / low[3:6]) ** 2) / (4 * np.log(2)))
    assert park[5] == pytest.approx(expected)
    z = ind.zscore(close, 3)
    assert z[5] == pytest.approx((11.0 - close[3:6].mean()) / close[3:6].std(ddof=1))
    assert ind.tail_excess(np.array([-3.0, 1.0, 2.5]), 2.0).tolist() == [-1.0, 0.0, 0.5]


def test_targets_by_hand():
    close = np.array([100.0, 101.0, 99.0, 102.0])
    assert make_target(close, "log_return", 1)[:3] == pytest.approx(np.log([1.01, 99 / 101,
                                                                           102 / 99]))
    two = make_target(close, "pct_change", 2)
    assert two[:2] == pytest.approx([99 / 100 - 1, 102 / 101 - 1])
    assert np.isnan(two[2:]).all()


@pytest.mark.parametrize(("segments", "purge", "horizon"), [(1, 0, 1), (1, 7, 3), (3, 5, 2)])
def test_split_is_chronological_with_purge_gaps(segments, purge, horizon):
    usable = np.arange(50, 3050)
    split = chronological_split(usable, train_fraction=0.6, validation_fraction=0.2,
                                purge_bars=purge, horizon=horizon, segments=segments)
    gap = max(purge, horizon)
    assert split.gap == gap
    spans = [split.train, split.validation, split.test]
    assert not set(spans[0]) & set(spans[1]) and not set(spans[1]) & set(spans[2])
    for block in np.array_split(usable, segments):
        inside = [s[(s >= block[0]) & (s <= block[-1])] for s in spans]
        train, validation, test = inside
        assert train.max() < validation.min() < test.min()
        assert validation.min() - train.max() > gap  # targets of train end before validation
        assert test.min() - validation.max() > gap
    if segments > 1:  # the next block's training starts a gap after the previous test
        firsts = [b[0] for b in np.array_split(usable, segments)[1:]]
        for first in firsts:
            assert split.train[split.train >= first].min() == first + gap
    with pytest.raises(DataError, match="validation span"):
        chronological_split(np.arange(40), train_fraction=0.6, validation_fraction=0.2,
                            purge_bars=0, horizon=1)


def test_regimes_see_only_the_training_span():
    rng = np.random.default_rng(3)
    n = 4000
    returns = rng.normal(0, 1, n)
    vol = np.abs(rng.normal(1, 0.3, n))
    train = np.arange(0, 2400)
    first = fit_regimes(returns, vol, train, seed=1)
    changed_vol = vol.copy()
    changed_vol[2400:] *= 50  # a wild test span
    changed_ret = returns.copy()
    changed_ret[2400:] += 10
    second = fit_regimes(changed_ret, changed_vol, train, seed=1)
    assert np.array_equal(first.vol[:2400], second.vol[:2400])
    assert np.array_equal(first.gmm[:2400], second.gmm[:2400])
    assert np.allclose(first.gmm_p[:2400], second.gmm_p[:2400])
    # terciles of the training span: a third of training bars in each volatility regime
    counts = np.bincount(first.vol[:2400], minlength=3)
    assert np.all(np.abs(counts - 800) <= 2)
    assert (second.vol[2400:] == 2).all()  # applied forward with the training thresholds
    keep = regime_mask(first, "vol=low,normal")
    assert np.array_equal(keep, first.vol <= 1)
    assert regime_mask(first, "all") is None
