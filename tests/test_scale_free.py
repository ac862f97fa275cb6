"""Scale-free features: every template dimension and every evolution feature is unchanged when
all prices and the tick size are multiplied by one constant, and the same walk in ticks gives
the same features on an MNQ-like (27,000, tick 0.25) and an EURUSD-like (1.08, tick 0.00001)
instrument. One parametrised test per feature, so a failure names it."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stratforge.data.resample import resample_bars
from stratforge.data.synthetic import generate_market
from stratforge.errors import ConfigError
from stratforge.evolution.featureset import build_features
from stratforge.features import FEATURE_NAMES, compute_states, feature_vectors
from stratforge.features.field import REVERSION_FLOOR
from stratforge.features.states import FLOAT_COLUMNS, PRICE_COLUMNS
from stratforge.features.ticks import prices_in_ticks
from stratforge.instruments import get_instrument
from stratforge.sessions import CME_GLOBEX
from stratforge.timeframes import parse_timeframe

SETTINGS = settings(max_examples=10, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])
TOLERANCE = {"rtol": 1e-9, "atol": 1e-9, "equal_nan": True}
HIERARCHY = ("1h", "15m", "5m")
"""Root, parent and base timeframe of the template-dimension tests (5m base bars)."""

LEVEL_TICKS = 108_000
"""Both instrument kinds sit at 108,000 ticks: MNQ-like at 27,000, EURUSD-like at 1.08."""
KINDS = {"MNQ": 0.25, "EURUSD": 0.00001}
"""Tick size per instrument kind."""

_draws = np.random.default_rng(20261205)
SCALES: tuple[float, ...] = (1e-4, 1e4, 1000.0, 0.001, 7.0,
                             *(10.0 ** _draws.uniform(-4, 4, 9)).tolist())
"""Scale constants: the ends of 1e-4..1e4, 1000 (the acceptance run's), a binary-exact one and
nine drawn log-uniformly (fixed, so computed markets are shared between the tests)."""
SEEDS = tuple(range(8))


def tick_walk(seed: int) -> tuple[np.ndarray, ...]:
    """A random walk in whole ticks (open, high, low, close offsets) with wicks, occasional
    jumps (cascades) and volume surges (structures); 300 to 1,700 bars."""
    rng = np.random.default_rng(seed)
    n = 300 + 200 * (seed % 8)
    steps = rng.integers(-4, 5, n)
    jumps = rng.random(n) < 0.02
    steps[jumps] = rng.integers(-40, 41, jumps.sum())
    close = np.cumsum(steps)
    open_ = np.concatenate(([0], close[:-1]))
    high = np.maximum(open_, close) + rng.integers(0, 4, n)
    low = np.minimum(open_, close) - rng.integers(0, 4, n)
    volume = rng.integers(1, 60, n).astype(float)
    surge = rng.random(n) < 0.05
    volume[surge] *= rng.integers(2, 6, surge.sum())
    return open_, high, low, close, volume


def market_bars(seed: int, tick: float, scale: float = 1.0, level: int = LEVEL_TICKS
                ) -> pd.DataFrame:
    """5m bars of ``tick_walk(seed)`` at ``level`` ticks of ``tick``, every price then
    multiplied by ``scale`` (as a user's data at another price level would be)."""
    o, h, lo, c, v = tick_walk(seed)
    ts = pd.date_range("2024-01-08", periods=len(c), freq="5min", tz="UTC").as_unit("ns")
    prices = {name: (level + ticks) * tick for name, ticks in
              (("open", o), ("high", h), ("low", lo), ("close", c))}
    if scale != 1.0:
        prices = {name: values * scale for name, values in prices.items()}
    return pd.DataFrame({"ts": ts, **prices, "volume": v})


@cache
def template_vectors(seed: int, tick: float, scale: float) -> pd.DataFrame:
    """The 14 template dimensions of the base timeframe over the whole hierarchy (the parent
    and root context included), from states computed with the tick times ``scale``."""
    base = market_bars(seed, tick, scale)
    unit = tick * scale
    states = {tf: compute_states(resample_bars(base, parse_timeframe(tf), CME_GLOBEX),
                                 tick_size=unit) for tf in HIERARCHY}
    vectors = feature_vectors(states, list(HIERARCHY), session=CME_GLOBEX)
    return vectors[parse_timeframe(HIERARCHY[-1])]


@cache
def evolution_features(seed: int, tick: float, scale: float) -> pd.DataFrame:
    """``build_features`` of the market with a reference symbol on the same scale."""
    bars = market_bars(seed, tick, scale)
    reference = market_bars(seed + 1000, tick, scale, level=LEVEL_TICKS // 2)
    unit = tick * scale
    return build_features(bars, compute_states(bars, tick_size=unit), {"REF": reference},
                          tick_size=unit)


EVOLUTION_FEATURES: tuple[str, ...] = tuple(evolution_features(0, 0.25, 1.0).columns)


def _same(name: str, got: pd.DataFrame, want: pd.DataFrame) -> None:
    a, b = got[name].to_numpy(dtype=np.float64), want[name].to_numpy(dtype=np.float64)
    assert np.isfinite(b).any(), f"{name} is never defined on this market"
    np.testing.assert_allclose(a, b, err_msg=name, **TOLERANCE)


# ------------------------------------------------------------- every feature, any price level

@pytest.mark.parametrize("name", FEATURE_NAMES)
@SETTINGS
@given(seed=st.sampled_from(SEEDS), scale=st.sampled_from(SCALES),
       kind=st.sampled_from(sorted(KINDS)))
def test_template_dimension_is_unchanged_by_the_price_scale(name, seed, scale, kind):
    tick = KINDS[kind]
    _same(name, template_vectors(seed, tick, scale), template_vectors(seed, tick, 1.0))


@pytest.mark.parametrize("name", EVOLUTION_FEATURES)
@SETTINGS
@given(seed=st.sampled_from(SEEDS), scale=st.sampled_from(SCALES),
       kind=st.sampled_from(sorted(KINDS)))
def test_evolution_feature_is_unchanged_by_the_price_scale(name, seed, scale, kind):
    tick = KINDS[kind]
    _same(name, evolution_features(seed, tick, scale), evolution_features(seed, tick, 1.0))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), exponent=st.floats(-4.0, 4.0),
       kind=st.sampled_from(sorted(KINDS)))
def test_every_template_dimension_for_any_walk_and_any_scale(seed, exponent, kind):
    scale = 10.0 ** exponent
    tick = KINDS[kind]
    got = template_vectors.__wrapped__(seed, tick, scale)
    want = template_vectors.__wrapped__(seed, tick, 1.0)
    for name in FEATURE_NAMES:
        np.testing.assert_allclose(got[name], want[name], err_msg=name, **TOLERANCE)


@pytest.mark.parametrize("name", FEATURE_NAMES)
@pytest.mark.parametrize("seed", SEEDS[:4])
def test_template_dimension_is_the_same_on_both_instrument_kinds(name, seed):
    _same(name, template_vectors(seed, KINDS["EURUSD"], 1.0),
          template_vectors(seed, KINDS["MNQ"], 1.0))


@pytest.mark.parametrize("name", EVOLUTION_FEATURES)
def test_evolution_feature_is_the_same_on_both_instrument_kinds(name):
    for seed in SEEDS[:3]:
        _same(name, evolution_features(seed, KINDS["EURUSD"], 1.0),
              evolution_features(seed, KINDS["MNQ"], 1.0))


def test_the_feature_lists_are_complete():
    assert len(FEATURE_NAMES) == 14
    states = {f"state_{c}" for c in FLOAT_COLUMNS}
    assert states <= set(EVOLUTION_FEATURES)
    assert {"state_velocity", "state_reversion", "state_velocity_sigma",
            "state_momentum_strength", "ref_REF_logret_1"} <= set(EVOLUTION_FEATURES)
    assert len(EVOLUTION_FEATURES) >= 99


# ------------------------------------------------------------- bit-identical scale-free states

@pytest.mark.parametrize("scale", [1000.0, 1e-4, 12345.678])
def test_scale_free_states_are_bit_identical_from_prices_in_ticks(scale):
    tick = KINDS["EURUSD"]
    base = market_bars(3, tick)
    moved = market_bars(3, tick, scale)
    # the raw quotients differ in their last bits: only snapping makes the inputs identical
    assert not np.array_equal(moved["close"] / (tick * scale), base["close"] / tick)
    a = compute_states(base, tick_size=tick)
    b = compute_states(moved, tick_size=tick * scale)
    for column in FLOAT_COLUMNS:
        if column in PRICE_COLUMNS:
            np.testing.assert_allclose(b[column], a[column] * scale, rtol=1e-12, atol=0,
                                       err_msg=column)
        else:
            np.testing.assert_array_equal(b[column], a[column], err_msg=column)
    for column in ("zone", "trend", "structure_confirmed", "cascade_detected", "ready"):
        assert b[column].equals(a[column]), column


def test_price_columns_keep_price_units_with_a_tick():
    bars = market_bars(2, KINDS["EURUSD"])
    plain, ticked = compute_states(bars), compute_states(bars, tick_size=KINDS["EURUSD"])
    for column in PRICE_COLUMNS:
        np.testing.assert_allclose(ticked[column], plain[column], rtol=1e-9, atol=1e-15,
                                   equal_nan=True, err_msg=column)


def test_prices_in_ticks_snaps_the_grid_and_keeps_off_grid_prices():
    tick = 0.00001
    prices = np.array([1.08123, 1.08123 * 1000, 1.081235, 0.0])
    ticks = prices_in_ticks(prices[[0, 2, 3]], tick)
    assert ticks[[0, 2]].tolist() == [108123.0, 0.0]
    assert ticks[1] == 1.081235 / tick and abs(ticks[1] - 108123.5) < 1e-6  # half a tick off
    assert prices_in_ticks(prices[[1]], tick * 1000).tolist() == [108123.0]
    assert prices_in_ticks(np.array([18000.25]), 0.25).tolist() == [72001.0]


@pytest.mark.parametrize("tick", [0.0, -0.25, float("nan"), float("inf")])
def test_a_bad_tick_size_is_refused(tick):
    bars = market_bars(1, 0.25)
    with pytest.raises(ConfigError, match="tick_size"):
        compute_states(bars, tick_size=tick)
    with pytest.raises(ConfigError, match="tick_size"):
        build_features(bars, compute_states(bars), tick_size=tick)


# ------------------------------------------------------------- no lookahead with a tick

@pytest.mark.parametrize("cut", [20, 101, 517])
def test_states_and_features_from_ticks_never_look_ahead(cut):
    tick = KINDS["EURUSD"]
    bars = market_bars(5, tick)
    states = compute_states(bars, tick_size=tick)
    features = build_features(bars, states, tick_size=tick)
    head = bars.iloc[:cut]
    part_states = compute_states(head, tick_size=tick)
    pd.testing.assert_frame_equal(part_states, states.iloc[:cut], check_exact=True)
    pd.testing.assert_frame_equal(build_features(head, part_states, tick_size=tick),
                                  features.iloc[:cut], check_exact=True)


# ------------------------------------------------------------- what was seen: |momentum| 3.8e10

def test_momentum_strength_on_eurusd_is_bounded_by_the_reversion_floor():
    """Templates showed |momentum| 38,088,249,049 on EURUSD: a 1e-6 constant in price units
    under a reversion force of ~1e-5. Now the reversion force is in sigmas, plus 0.5."""
    eurusd = get_instrument("EURUSD")
    bars = generate_market(eurusd, days=4, seed=11, resolution="1m").bars
    ready = compute_states(bars).query("ready")  # the plain prices, as before the fix
    strength = ready["momentum_strength"].abs().to_numpy()
    bound = ready["momentum"].abs().to_numpy() / REVERSION_FLOOR
    assert np.all(strength <= bound * (1 + 1e-12))
    assert strength.max() < 1e6
    states = compute_states(bars, tick_size=eurusd.tick_size)
    moved = bars.assign(**{c: bars[c] * 1000 for c in ("open", "high", "low", "close")})
    again = compute_states(moved, tick_size=eurusd.tick_size * 1000)
    np.testing.assert_array_equal(again["momentum_strength"], states["momentum_strength"])
