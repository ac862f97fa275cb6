"""Parameter spaces and samplers: the issue's default ranges, bounds and types of every
sampler, Latin hypercube stratification, Sobol balance and discrepancy, the repair rule,
mutation scale, YAML loading and its errors, determinism."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import qmc

from stratforge.errors import ConfigError
from stratforge.search.samplers import (
    mutate,
    mutation_steps,
    sample,
    sample_latin_hypercube,
    sample_sobol,
    sample_uniform,
    tpe_proposer,
    unit_latin_hypercube,
    unit_sobol,
)
from stratforge.search.space import (
    Parameter,
    ParameterSpace,
    default_space,
    hold_range,
    measure_yardstick,
)

ISSUE_HOLD = {"1m": (10, 120), "5m": (5, 60), "15m": (4, 30), "1h": (2, 12), "4h": (1, 6),
              "1D": (2, 20)}


def space_for(tf: str, **kwargs):
    """The default space of ``tf`` for an MNQ-like market with a 20-tick yardstick."""
    return default_space(tf, yardstick_ticks=20.0, tick_size=0.25, **kwargs)
SAMPLER_FUNCS = [sample_uniform, sample_latin_hypercube, sample_sobol]
FAST = settings(max_examples=30, deadline=None)


def _check_frame(space: ParameterSpace, frame: pd.DataFrame, n: int) -> None:
    assert list(frame.columns) == list(space.names)
    assert len(frame) == n
    for p in space.parameters:
        col = frame[p.name]
        assert col.dtype == (np.int64 if p.kind == "int" else np.float64)
        assert (col >= p.low).all() and (col <= p.high).all()
    if "stop_ticks" in space and "target_ticks" in space:
        assert (frame["target_ticks"] > frame["stop_ticks"]).all()
    if "trail_tight_ticks" in space and "trail_wide_ticks" in space:
        assert (frame["trail_wide_ticks"] >= frame["trail_tight_ticks"]).all()


# ---------------------------------------------------------------- defaults
@pytest.mark.parametrize("tf", list(ISSUE_HOLD))
def test_default_space_is_in_yardsticks(tf):
    # hand-resolved: stop 0.5-3, target 1-6, tight 0.25-1.5, wide 1-4, widen 0.5-3,
    # activation 0-2 yardsticks; a 20-tick yardstick at tick 0.25 (MNQ-like)
    space = space_for(tf)
    assert space.bounds == {
        "stop_ticks": (10, 60), "target_ticks": (20, 120), "trail_tight_ticks": (5, 30),
        "trail_wide_ticks": (20, 80), "trail_widen_points": (2.5, 15.0),
        "trail_activation_ticks": (0, 40), "max_hold_bars": ISSUE_HOLD[tf],
    }
    kinds = {p.name: p.kind for p in space.parameters}
    assert kinds.pop("trail_widen_points") == "float"
    assert set(kinds.values()) == {"int"}


def test_default_space_fits_an_fx_market_and_a_daily_equity():
    # EURUSD-like hourly bars: a 150-tick (15 pip) yardstick at tick 0.00001
    fx = default_space("1h", yardstick_ticks=150.0, tick_size=0.00001)
    assert fx.bounds["stop_ticks"] == (75, 450)
    assert fx.bounds["trail_widen_points"] == pytest.approx((0.00075, 0.0045))
    # daily equity bars: a 250-cent yardstick
    daily = default_space("1D", yardstick_ticks=250.0, tick_size=0.01)
    assert daily.bounds["target_ticks"] == (250, 1500)
    assert daily.bounds["max_hold_bars"] == (2, 20)


def test_a_tiny_yardstick_still_gives_whole_tick_ranges():
    space = default_space("1m", yardstick_ticks=1.0, tick_size=0.25)
    for p in space.parameters:
        if p.kind == "int" and p.name != "max_hold_bars":
            assert p.high > p.low >= (0 if p.name == "trail_activation_ticks" else 1)


def test_yardstick_is_the_median_true_range_in_ticks():
    bars = pd.DataFrame({"open": [10.0, 10.5, 11.0, 10.0], "high": [10.5, 11.0, 11.25, 10.5],
                         "low": [9.75, 10.25, 10.75, 9.5], "close": [10.25, 11.0, 10.75, 10.0]})
    # true ranges: 0.75 (first bar), max(11, 10.25)-min(10.25, 10.25)=0.75,
    # 11.25-10.75=0.5, max(10.5, 10.75)-min(9.5, 10.75)=1.25 -> ticks 3, 3, 2, 5 -> median 3
    assert measure_yardstick(bars, 0.25) == 3.0
    scaled = bars * 1000
    assert measure_yardstick(scaled, 250.0) == 3.0


def test_costs_are_never_parameters(tmp_path):
    with pytest.raises(ConfigError, match=r"cost_points is a cost.*instruments.yaml"):
        ParameterSpace((Parameter("cost_points", 0.25, 1.0, "float"),))
    with pytest.raises(ConfigError, match="slippage_ticks is a cost"):
        ParameterSpace((Parameter("slippage_ticks", 0, 2, "int"),))
    path = tmp_path / "space.yaml"
    path.write_text("stop_ticks: {low: 10, high: 20}\ncost_points: {low: 0.25, high: 1.0}\n")
    with pytest.raises(ConfigError, match=r"space.yaml: key 'cost_points'.*--commission"):
        ParameterSpace.from_yaml(path, "5m")


def test_a_wide_trail_without_a_widen_threshold_is_refused():
    # trail_wide_ticks would never act beside a tight trail (it was inert in `stratforge run`)
    with pytest.raises(ConfigError, match="trail_wide_ticks has no effect"):
        ParameterSpace((Parameter("trail_tight_ticks", 5, 15, "int"),
                        Parameter("trail_wide_ticks", 20, 40, "int")))


def test_a_yaml_space_in_yardsticks_resolves_per_timeframe(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("stop_ticks: {low: 1, high: 2, unit: yardstick}\n"
                    "trail_widen_points: {low: 1, high: 2, unit: yardstick}\n")
    space = ParameterSpace.from_yaml(path, "1h", yardstick_ticks=40.0, tick_size=0.5)
    assert space.bounds == {"stop_ticks": (40, 80), "trail_widen_points": (20.0, 40.0)}
    with pytest.raises(ConfigError, match="needs the timeframe's yardstick"):
        ParameterSpace.from_yaml(path, "1h")


@pytest.mark.parametrize(("tf", "like"), [("1s", "1m"), ("30s", "1m"), ("2m", "1m"),
                                          ("30m", "15m"), ("2h", "1h"), ("8h", "4h"),
                                          ("1W", "1D"), ("3m", "5m")])
def test_unlisted_timeframe_takes_nearest_listed(tf, like):
    assert hold_range(tf) == ISSUE_HOLD[like]
    assert space_for(tf).bounds["max_hold_bars"] == ISSUE_HOLD[like]


def test_default_space_subset_and_errors():
    space = space_for("1h", names=["target_ticks", "stop_ticks"])
    assert space.names == ("target_ticks", "stop_ticks")
    with pytest.raises(ConfigError, match="no parameter"):
        space_for("1h", names=["bogus"])
    with pytest.raises(ConfigError, match="timeframe"):
        space_for("7x")


def test_space_validation():
    with pytest.raises(ConfigError, match="unknown parameter"):
        ParameterSpace((Parameter("stop_tick", 1, 2, "int"),))
    with pytest.raises(ConfigError, match="more than once"):
        ParameterSpace((Parameter("stop_ticks", 1, 2, "int"),) * 2)
    with pytest.raises(ConfigError, match=r"low .* above high"):
        Parameter("stop_ticks", 5, 2, "int")
    with pytest.raises(ConfigError, match="whole number"):
        Parameter("stop_ticks", 1.5, 2, "int")
    with pytest.raises(ConfigError, match="kind"):
        Parameter("stop_ticks", 1, 2, "str")
    with pytest.raises(ConfigError, match="target_ticks high"):
        ParameterSpace((Parameter("stop_ticks", 10, 20, "int"),
                        Parameter("target_ticks", 5, 10, "int")))
    with pytest.raises(ConfigError, match="trail_wide_ticks high"):
        ParameterSpace((Parameter("trail_tight_ticks", 10, 20, "int"),
                        Parameter("trail_wide_ticks", 5, 9, "int")))


# ---------------------------------------------------------------- samplers
@FAST
@given(n=st.integers(0, 70), seed=st.integers(0, 2**32 - 1),
       tf=st.sampled_from(["1m", "5m", "15m", "1h", "4h", "1D"]),
       which=st.integers(0, len(SAMPLER_FUNCS) - 1))
def test_samplers_stay_in_bounds_and_types(n, seed, tf, which):
    space = space_for(tf)
    _check_frame(space, SAMPLER_FUNCS[which](space, n, seed), n)


def _mutate_centre(space, n, seed):
    return mutate(space, {k: (a + b) / 2 for k, (a, b) in space.bounds.items()}, n, 0.2, seed)


@pytest.mark.parametrize("func", [*SAMPLER_FUNCS, _mutate_centre])
def test_samplers_deterministic(func):
    space = space_for("5m")
    a, b, c = func(space, 33, 7), func(space, 33, 7), func(space, 33, 8)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


def test_sample_dispatch():
    space = space_for("1h")
    pd.testing.assert_frame_equal(sample(space, 10, "lhs", 3),
                                  sample_latin_hypercube(space, 10, 3))
    with pytest.raises(ConfigError, match="unknown sampler"):
        sample(space, 10, "grid", 3)
    with pytest.raises(ConfigError, match="n "):
        sample_uniform(space, -1, 0)


def test_int_values_equally_likely():
    """from_unit gives every whole value of an int parameter the same share (the ends too)."""
    space = ParameterSpace((Parameter("max_hold_bars", 2, 12, "int"),))
    frame = sample_uniform(space, 110_000, 0)
    counts = frame["max_hold_bars"].value_counts().sort_index()
    assert list(counts.index) == list(range(2, 13))
    assert np.allclose(counts / len(frame), 1 / 11, atol=0.005)


@FAST
@given(n=st.integers(1, 200), d=st.integers(1, 8), seed=st.integers(0, 2**32 - 1))
def test_latin_hypercube_stratified(n, d, seed):
    unit = unit_latin_hypercube(d, n, seed)
    bins = np.floor(unit * n).astype(int)
    for j in range(d):
        assert sorted(bins[:, j]) == list(range(n))


def test_latin_hypercube_sampler_maps_unit_sample():
    space = space_for("15m")
    unit = unit_latin_hypercube(space.dimensions, 40, 11)
    pd.testing.assert_frame_equal(sample_latin_hypercube(space, 40, 11),
                                  space.repair(space.from_unit(unit)))


@pytest.mark.parametrize("m", [3, 6, 8])
def test_sobol_balanced_for_powers_of_two(m):
    n = 2**m
    bins = np.floor(unit_sobol(7, n, 5) * n).astype(int)
    for j in range(7):
        assert sorted(bins[:, j]) == list(range(n))


def test_sobol_lower_discrepancy_than_uniform():
    sobol, uniform = [], []
    for seed in range(10):
        sobol.append(qmc.discrepancy(unit_sobol(7, 100, seed)))
        uniform.append(qmc.discrepancy(np.random.default_rng(seed).random((100, 7))))
    assert np.mean(sobol) < 0.7 * np.mean(uniform)


def test_sobol_any_n_without_warnings(recwarn):
    space = space_for("1m")
    for n in (1, 3, 100, 129):
        assert len(sample_sobol(space, n, 0)) == n
    assert not [w for w in recwarn if "balance" in str(w.message)]
    pd.testing.assert_frame_equal(sample_sobol(space, 100, 4).iloc[:50],
                                  sample_sobol(space, 128, 4).iloc[:50])


# ---------------------------------------------------------------- unit cube
def test_unit_round_trip():
    space = space_for("5m")
    frame = sample_uniform(space, 200, 1)
    unit = space.to_unit(frame)
    assert ((unit > 0) & (unit < 1)).all()
    pd.testing.assert_frame_equal(space.from_unit(unit), frame)
    with pytest.raises(ConfigError, match="shape"):
        space.from_unit(np.zeros((3, 2)))
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        space.from_unit(np.full((1, space.dimensions), 1.5))


# ---------------------------------------------------------------- repair
@st.composite
def space_and_frame(draw):
    stop_lo = draw(st.integers(0, 30))
    stop_hi = draw(st.integers(stop_lo, 60))
    tgt_hi = draw(st.integers(stop_lo + 1, 80))
    tgt_lo = draw(st.integers(0, tgt_hi))
    tight_lo = draw(st.integers(0, 30))
    tight_hi = draw(st.integers(tight_lo, 60))
    wide_hi = draw(st.integers(tight_lo, 80))
    wide_lo = draw(st.integers(0, wide_hi))
    target_kind = draw(st.sampled_from(["int", "float"]))
    space = ParameterSpace((
        Parameter("stop_ticks", stop_lo, stop_hi, "int"),
        Parameter("target_ticks", tgt_lo, tgt_hi, target_kind),
        Parameter("trail_tight_ticks", tight_lo, tight_hi, "int"),
        Parameter("trail_wide_ticks", wide_lo, wide_hi, "int"),
        Parameter("trail_widen_points", 0.0, 10.0, "float"),
    ))
    n = draw(st.integers(1, 20))
    values = st.floats(-20, 120, allow_nan=False)
    rows = draw(st.lists(st.lists(values, min_size=5, max_size=5), min_size=n, max_size=n))
    return space, pd.DataFrame(rows, columns=list(space.names))


@settings(max_examples=200, deadline=None)
@given(space_and_frame())
def test_repair_rule_always_valid(case):
    space, frame = case
    repaired = space.repair(frame)
    _check_frame(space, repaired, len(frame))
    pd.testing.assert_frame_equal(space.repair(repaired), repaired)  # idempotent


def test_repair_rule_worked_examples():
    space = ParameterSpace((Parameter("stop_ticks", 10, 25, "int"),
                            Parameter("target_ticks", 12, 20, "int"),
                            Parameter("trail_tight_ticks", 5, 15, "int"),
                            Parameter("trail_wide_ticks", 4, 10, "int"),
                            Parameter("trail_widen_points", 1.0, 2.0, "float")))
    frame = pd.DataFrame({"stop_ticks": [14, 22, 30.4], "target_ticks": [13, 15, 1],
                          "trail_tight_ticks": [8, 12, 5], "trail_wide_ticks": [6, 9, 7.6],
                          "trail_widen_points": [1.5, 1.5, 1.5]})
    out = space.repair(frame)
    assert out["stop_ticks"].tolist() == [14, 19, 19]      # lowered: target hit its high
    assert out["target_ticks"].tolist() == [15, 20, 20]    # stop + 1, capped at 20
    assert out["trail_tight_ticks"].tolist() == [8, 10, 5]  # lowered to the wide high
    assert out["trail_wide_ticks"].tolist() == [8, 10, 8]   # raised to the tight trail
    with pytest.raises(ConfigError, match="lacks"):
        space.repair(frame.drop(columns="stop_ticks"))
    with pytest.raises(ConfigError, match="row 1"):
        space.repair(frame.assign(stop_ticks=[1.0, np.nan, 2.0]))


# ---------------------------------------------------------------- mutation
def test_mutation_scale_honoured():
    space = space_for("1m")
    centre = {k: (a + b) / 2 for k, (a, b) in space.bounds.items()}
    span = space.highs - space.lows
    steps = mutation_steps(space, 20_000, 0.15, 3)
    assert np.allclose(steps.std(axis=0), 0.15 * span, rtol=0.05)
    frame = mutate(space, centre, 20_000, 0.1, 3)  # at 0.1 clipping is negligible
    _check_frame(space, frame, 20_000)
    sd = frame.to_numpy(dtype=float).std(axis=0)
    assert np.allclose(sd, 0.1 * span, rtol=0.1)
    assert np.allclose(frame.to_numpy(dtype=float).mean(axis=0), list(centre.values()),
                       atol=0.05 * span.max())


def test_mutation_zero_scale_and_errors():
    space = space_for("1h")
    base = {"stop_ticks": 12, "target_ticks": 40, "trail_tight_ticks": 6,
            "trail_wide_ticks": 30, "trail_widen_points": 5.0, "trail_activation_ticks": 4,
            "max_hold_bars": 5}
    out = mutate(space, base, 5, 0.0, 0)
    assert (out == pd.Series(base)).all().all()
    with pytest.raises(ConfigError, match="missing: stop_ticks"):
        mutate(space, {k: v for k, v in base.items() if k != "stop_ticks"}, 5)
    with pytest.raises(ConfigError, match="unknown: stop"):
        mutate(space, {**base, "stop": 3}, 5)
    with pytest.raises(ConfigError, match="scale"):
        mutate(space, base, 5, -0.1)


# ---------------------------------------------------------------- YAML
GOOD_YAML = """\
stop_ticks: {low: 8, high: 20, kind: int}
target_ticks: {low: 16, high: 48}
trail_widen_points: {low: 0.5, high: 0.75, kind: float}
max_hold_bars:
  kind: int
  timeframes:
    1m: {low: 20, high: 90}
    1h: {low: 3, high: 9}
"""


def test_from_yaml(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(GOOD_YAML)
    space = ParameterSpace.from_yaml(path, "1m")
    assert space.names == ("stop_ticks", "target_ticks", "trail_widen_points",
                           "max_hold_bars")
    assert space.bounds["max_hold_bars"] == (20, 90)
    assert space["target_ticks"].kind == "int"  # inferred from integer bounds
    assert ParameterSpace.from_yaml(path, "2h").bounds["max_hold_bars"] == (3, 9)
    assert ParameterSpace.from_yaml(path, "5m").bounds["max_hold_bars"] == (20, 90)
    _check_frame(space, sample_sobol(space, 16, 0), 16)


@pytest.mark.parametrize(("text", "key", "message"), [
    ("stop_ticks: [1, 2]\n", "stop_ticks", "mapping"),
    ("stop_tick: {low: 1, high: 2}\n", "stop_tick", "unknown parameter"),
    ("stop_ticks: {low: 1}\n", "stop_ticks", "missing high"),
    ("stop_ticks: {low: 3, high: 2}\n", "stop_ticks", "above high"),
    ("stop_ticks: {low: 1, high: 2, step: 1}\n", "stop_ticks", "unexpected field"),
    ("stop_ticks: {low: a, high: 2}\n", "stop_ticks", "must be a number"),
    ("max_hold_bars: {timeframes: {1m: 5}}\n", "max_hold_bars", "low, high"),
    ("max_hold_bars: {timeframes: {7x: {low: 1, high: 2}}}\n", "max_hold_bars", "7x"),
])
def test_bad_yaml_names_file_and_key(tmp_path, text, key, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        ParameterSpace.from_yaml(path, "1m")
    assert str(path) in str(info.value) and key in str(info.value)


@pytest.mark.parametrize(("text", "message"), [("[1, 2]\n", "mapping"),
                                               ("a: [\n", "not valid YAML"),
                                               ("", "mapping")])
def test_bad_yaml_file(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        ParameterSpace.from_yaml(path, "1m")
    assert str(path) in str(info.value)
    with pytest.raises(ConfigError, match="cannot read"):
        ParameterSpace.from_yaml(tmp_path / "missing.yaml", "1m")


# ---------------------------------------------------------------- TPE (optional)
def test_tpe_without_optuna_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(ConfigError, match="pip install optuna"):
        tpe_proposer(space_for("1h"), n=2)


def test_tpe_proposer_with_optuna():
    pytest.importorskip("optuna")
    space = space_for("1h")
    history = sample_sobol(space, 16, 0)
    scores = -(history["stop_ticks"] - 15.0).abs().to_numpy()
    a = tpe_proposer(space, history, scores, n=4, random_state=1)
    _check_frame(space, a, 4)
    pd.testing.assert_frame_equal(a, tpe_proposer(space, history, scores, n=4, random_state=1))
