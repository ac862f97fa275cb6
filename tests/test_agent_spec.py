"""The agent's strategy spec: validation that names the field, YAML round trip, the
fingerprint, overrides checked one field at a time, and the parameter-region presets."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pytest
import yaml

from stratforge.costs import COST_FIELDS
from stratforge.errors import ConfigError
from stratforge.instruments import get_instrument
from stratforge.ops.agent.backtesting import spec_costs
from stratforge.ops.agent.regions import REGION_NAMES, region_bounds
from stratforge.ops.agent.spec import (
    CostModel,
    StrategySpec,
    fingerprint,
    parse_spec,
    spec_from_yaml,
    validate_overrides,
)


def spec_values(**changes):
    values = {
        "symbol": "mnq",
        "timeframes": ["5m", "1h", "15m"],
        "signal": {"template_id": "T0003", "library": "abcdef0123456789", "timeframe": "5m"},
        "region": {"name": "tight", "bounds": {"target_ticks": [30, 45], "stop_ticks": [10, 17]}},
        "training": {"start": "2023-01-01T00:00:00Z", "end": "2023-02-27T23:00:00Z"},
        "backtest": {"start": "2023-02-27T23:00:00+00:00", "end": "2023-03-25"},
    }
    values.update(changes)
    return values


def test_a_spec_is_normalised():
    spec = parse_spec(spec_values())
    assert spec.symbol == "MNQ"
    assert spec.timeframes == ("1h", "15m", "5m")  # top down, whatever the order given
    assert list(spec.region.bounds) == ["stop_ticks", "target_ticks"]  # canonical order
    assert spec.backtest.end == datetime(2023, 3, 25, tzinfo=UTC)  # naive read as UTC
    assert spec.arm == "abcdef01/T0003@5m"
    space = spec.region.space()
    assert space.names == ("stop_ticks", "target_ticks")
    assert space["stop_ticks"].kind == "int" and space["stop_ticks"].high == 17


def test_yaml_round_trip_and_fingerprint():
    spec = parse_spec(spec_values())
    again = spec_from_yaml(spec.to_yaml())
    assert again == spec
    assert fingerprint(again) == fingerprint(spec)
    # a spec without a model section hashes as before that section existed (no "model" key),
    # so experiments recorded earlier keep their fingerprints
    assert spec.model is None and "model" not in yaml.safe_load(spec.to_yaml())
    expected = hashlib.sha256(json.dumps(spec.model_dump(mode="json", exclude={"model"}),
                                         sort_keys=True,
                                         separators=(",", ":")).encode()).hexdigest()
    assert fingerprint(spec) == expected
    # the same design written differently is the same experiment
    shuffled = spec_values(timeframes="15m,5m,1h", symbol="MNQ")
    shuffled["region"] = {"bounds": {"stop_ticks": [10, 17], "target_ticks": [30.0, 45.0]},
                          "name": "tight"}
    assert fingerprint(parse_spec(shuffled)) == fingerprint(spec)
    # any change of substance is a new experiment
    assert fingerprint(parse_spec(spec_values(n_sets=65))) != fingerprint(spec)


@pytest.mark.parametrize(("change", "field"), [
    ({"timeframes": ["5m", "7q"]}, "timeframes"),
    ({"n_sets": 0}, "n_sets"),
    ({"symbol": ""}, "symbol"),
    ({"signal": {"timeframe": "5m", "library": "abc"}}, "signal"),
    ({"region": {"name": "x", "bounds": {"stop_ticks": [20, 10]}}}, "region.bounds"),
    ({"region": {"name": "x", "bounds": {"stop_ticks": [1.5, 10]}}}, "region.bounds"),
    ({"region": {"name": "x", "bounds": {"warp": [1, 2]}}}, "region.bounds"),
    ({"training": {"start": "2023-02-01", "end": "2023-01-01"}}, "training"),
    ({"costs": {"cost_points": 0.5}}, "costs.cost_points"),  # the old searched cost
    ({"costs": {"spread_ticks": -1}}, "costs.spread_ticks"),
    ({"region": {"name": "x", "bounds": {"cost_points": [0.25, 1]}}}, "region.bounds"),
    ({"region": {"name": "x", "bounds": {"commission": [0, 1]}}}, "region.bounds"),
    ({"colour": "red"}, "colour"),
])
def test_invalid_specs_name_the_field(change, field):
    with pytest.raises(ConfigError, match=rf"invalid strategy spec: {field}"):
        parse_spec(spec_values(**change))


def test_rules_across_fields():
    with pytest.raises(ConfigError, match=r"signal.timeframe 1m is not in timeframes"):
        parse_spec(spec_values(signal={"template_id": "T1", "library": "a", "timeframe": "1m"}))
    with pytest.raises(ConfigError, match=r"training.end .* is after backtest.start"):
        parse_spec(spec_values(backtest={"start": "2023-02-01", "end": "2023-03-25"}))
    with pytest.raises(ConfigError, match=r"not valid YAML"):
        spec_from_yaml("symbol: [unclosed")


def test_overrides_are_checked_one_field_at_a_time():
    clean = validate_overrides({"signal.timeframe": " 5m", "n_sets": 128,
                                "training": {"end": "2023-02-01"}, "region": {"name": "wide"}})
    assert clean == {"signal": {"timeframe": "5m"}, "n_sets": 128,
                     "training": {"end": "2023-02-01T00:00:00Z"}, "region": {"name": "wide"}}
    assert validate_overrides(None) == {}
    custom = validate_overrides({"region": {"bounds": {"stop_ticks": [5, 9]}}})
    assert custom["region"] == {"name": "custom", "bounds": {"stop_ticks": [5.0, 9.0]}}


@pytest.mark.parametrize(("overrides", "message"), [
    ({"signal.timeframe": "7q"}, r"override signal.timeframe"),
    ({"n_sets": -3}, r"override n_sets"),
    ({"signal": {"library": "x"}}, r"override 'signal.library': not a spec field"),
    ({"warp": 1}, r"override 'warp': not a spec field"),
    ({"version": 2}, r"override 'version'"),
    ({"region": {"bounds": {"stop_ticks": [9, 5]}}}, r"override region"),
    ({"timeframes": ["1h", "15m"], "signal.timeframe": "5m"}, r"overrides disagree"),
    ({"training": {"start": "2023-03-01", "end": "2023-02-01"}}, r"override training"),
    (["n_sets"], r"overrides must be a mapping"),
    ({"region": {"name": "huge"}}, r"region.name 'huge' is not a preset"),
])
def test_bad_overrides_are_config_errors_naming_the_field(overrides, message):
    with pytest.raises(ConfigError, match=message):
        validate_overrides(overrides)


# (symbol, tick size, yardstick in ticks): an MNQ-like 5m market and an EURUSD-like one whose
# bars move 250 pips (25,000 ticks of 0.00001) in the median
MARKETS = [("MNQ", 0.25, 24.0), ("EURUSD", 0.00001, 250.0)]


@pytest.mark.parametrize(("symbol", "tick", "yardstick"), MARKETS)
@pytest.mark.parametrize("timeframe", ["5m", "1h"])
def test_region_presets_split_the_default_space(symbol, tick, yardstick, timeframe):
    def bounds(name):
        return region_bounds(name, timeframe, yardstick_ticks=yardstick, tick_size=tick)

    default, tight, wide = bounds("default"), bounds("tight"), bounds("wide")
    assert not set(default) & (set(COST_FIELDS) | {"cost_points"})
    for name, (low, high) in default.items():
        mid = (low + high) // 2 if name != "trail_widen_points" else (low + high) / 2
        assert tight[name] == [low, mid] and wide[name] == [mid, high]
    # distances in yardsticks: stop 0.5-3, target 1-6 (whole ticks); the widen threshold
    # 0.5-3 yardsticks in price units, so every trail factor has an effect
    assert default["stop_ticks"] == [round(0.5 * yardstick), round(3 * yardstick)]
    assert default["target_ticks"] == [round(yardstick), round(6 * yardstick)]
    assert default["trail_widen_points"] == pytest.approx([0.5 * yardstick * tick,
                                                           3 * yardstick * tick])
    for name in REGION_NAMES:  # every preset is a valid spec region
        spec = parse_spec(spec_values(
            symbol=symbol, signal={"template_id": "T1", "library": "a", "timeframe": timeframe},
            region={"name": name, "bounds": bounds(name)}))
        assert spec.region.space().dimensions == 7
    with pytest.raises(ConfigError, match=r"region.name 'huge' is not a preset"):
        region_bounds("huge", "5m", yardstick_ticks=yardstick, tick_size=tick)


@pytest.mark.parametrize(("symbol", "tick", "yardstick"), MARKETS)
def test_spec_costs_are_the_instruments_model_with_overrides(symbol, tick, yardstick):
    instrument = get_instrument(symbol)
    spec = parse_spec(spec_values(symbol=symbol))
    assert spec_costs(spec, instrument) == instrument.costs
    given = parse_spec(spec_values(symbol=symbol, costs={"commission": 1.0, "fee_bps": 0.5}))
    costs = spec_costs(given, instrument)
    assert (costs.commission, costs.fee_bps) == (1.0, 0.5)
    assert costs.spread_ticks == instrument.costs.spread_ticks
    # a resolved model written out (what the designer does) resolves to itself
    written = parse_spec(spec_values(symbol=symbol, costs=CostModel.of(instrument.costs)))
    assert spec_costs(written, instrument) == instrument.costs


def test_the_model_has_no_mutable_defaults():
    spec = parse_spec(spec_values())
    with pytest.raises(Exception):  # noqa: B017 - frozen pydantic model
        spec.n_sets = 3  # type: ignore[misc]
    assert isinstance(spec, StrategySpec) and spec.costs.commission is None


@pytest.mark.parametrize("symbol", ["MNQ", "EURUSD"])
def test_training_yardsticks_are_measured_on_the_training_span_only(symbol, tmp_path):
    from stratforge.data.atlas import build_atlas
    from stratforge.data.demo import synthesize_into_store
    from stratforge.data.load import load_bars
    from stratforge.errors import DataError
    from stratforge.ops.agent.inputs import training_yardsticks
    from stratforge.search.space import measure_yardstick

    home = tmp_path / "home"
    synthesize_into_store(symbol, days=4, seed=1, home=home, resolution="1m")
    build_atlas(symbol, home=home)
    instrument = get_instrument(symbol)
    bars = load_bars(symbol, "5m", home=home)
    cut = bars["ts"].iloc[len(bars) // 2]
    span = {"start": bars["ts"].iloc[0].isoformat(), "end": cut.isoformat()}
    found = training_yardsticks(symbol, ["5m", "15m"], span, instrument, home)
    before = bars[bars["ts"] < cut]
    assert found["5m"] == measure_yardstick(before, instrument.tick_size)
    assert found["5m"] > 1  # in the instrument's own ticks (0.25 or 0.00001)
    later = {"start": "2031-01-01T00:00:00+00:00", "end": "2031-02-01T00:00:00+00:00"}
    with pytest.raises(DataError, match="no 5m bars in the training span"):
        training_yardsticks(symbol, ["5m"], later, instrument, home)


MODEL_SIGNAL = {"kind": "model", "timeframe": "5m", "match_threshold": 1.0}
MODEL_SECTION = {"feature_set": "momentum", "features": ["rsi_14", "logret_1"], "horizon": 3}


def test_a_model_design_spec():
    spec = parse_spec(spec_values(signal=MODEL_SIGNAL, model=MODEL_SECTION))
    assert spec.kind == "model" and spec.model.features == ("logret_1", "rsi_14")
    assert spec.model.algorithm == "elasticnet"
    assert spec.arm == "model/elasticnet/momentum/h3@5m"
    again = spec_from_yaml(spec.to_yaml())
    assert again == spec and fingerprint(again) == fingerprint(spec)
    assert fingerprint(parse_spec(spec_values(signal=MODEL_SIGNAL, model={
        **MODEL_SECTION, "horizon": 4}))) != fingerprint(spec)
    template = parse_spec(spec_values())
    assert template.kind == "template" and template.model is None


@pytest.mark.parametrize(("signal", "model", "needle"), [
    ({"template_id": "T0003", "library": "abcdef0123456789", "timeframe": "5m"},
     MODEL_SECTION, "needs signal.kind model"),
    ({**MODEL_SIGNAL, "model_id": "a" * 64}, MODEL_SECTION, "no signal.model_id"),
    (MODEL_SIGNAL, None, "needs signal.model_id"),
    (MODEL_SIGNAL, {**MODEL_SECTION, "features": ["regime_gmm", "rsi_14"]},
     r"model\.features: .*regime_gmm: regime features"),
    (MODEL_SIGNAL, {**MODEL_SECTION, "algorithm": "svm"}, r"model\.algorithm"),
    (MODEL_SIGNAL, {**MODEL_SECTION, "hyperparameters": {"depth": 3}},
     r"model: .*hyperparameters: .*depth"),
    (MODEL_SIGNAL, {**MODEL_SECTION, "reference_symbols": ["mnq"]},
     "must not hold the symbol MNQ"),
])
def test_model_design_specs_are_checked(signal, model, needle):
    with pytest.raises(ConfigError, match=needle):
        parse_spec(spec_values(signal=signal, model=model))
