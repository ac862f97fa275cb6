"""The strategy spec: what one research cycle tries, as a validated model that round-trips
through YAML, and its fingerprint.

A spec names the symbol, the timeframe hierarchy (top down), the signal source (a template of
a template library, or later an ML model), the parameter region the training step searches,
the training and backtest spans, the search budget and the trading costs (the instrument's
cost model and any overrides, never searched). Everything a
cycle's result depends on is in the spec, so its fingerprint (sha256 of the canonical JSON,
:func:`fingerprint`) identifies an experiment: the designer never proposes a fingerprint
that was already tried.

Field-level rules live in the annotated types (so :func:`validate_overrides` can check one
field at a time); rules across fields (the signal timeframe is in the hierarchy, training
ends before the backtest starts) live in the model validators. Every problem is a
``ConfigError`` whose message names the field (``signal.timeframe: ...``).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from stratforge.costs import Costs, refuse_cost_names
from stratforge.errors import ConfigError
from stratforge.evolution.config import ALGORITHMS
from stratforge.evolution.hyperparameters import normalise_hyperparameters
from stratforge.instruments import Instrument
from stratforge.ops.agent.regions import REGION_NAMES
from stratforge.search.space import Parameter, ParameterSpace
from stratforge.sim.params import EXIT_PARAM_NAMES
from stratforge.timeframes import parse_timeframe

SPEC_VERSION = 1
MAX_SETS = 2**20
"""The largest search budget (parameter sets) one training step may sample."""
INT_PARAMETERS = frozenset(EXIT_PARAM_NAMES) - {"trail_widen_points"}
"""Exit parameters counted in whole ticks or bars (sampled as ints)."""
NOT_OVERRIDABLE = frozenset({"version", "signal.library"})
"""Spec fields an override may not set (the library is chosen by the data, not by hand)."""


def _timeframe(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"a timeframe is a string such as '5m', got {value!r}")
    try:
        return str(parse_timeframe(value.strip()))
    except Exception as exc:
        raise ValueError(str(exc)) from None


def _hierarchy(value: Any) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items:
        raise ValueError("give at least one timeframe, e.g. [1h, 15m, 5m]")
    names = [_timeframe(v) for v in items]
    if len(set(names)) != len(names):
        raise ValueError(f"a timeframe appears twice in {names}")
    return tuple(sorted(names, key=lambda tf: -parse_timeframe(tf).seconds))


def _symbol(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"a symbol is a non-empty string, got {value!r}")
    text = value.strip().upper()
    if not all(c.isalnum() or c in "._-" for c in text) or len(text) > 32:
        raise ValueError(f"a symbol has at most 32 letters, digits, '.', '_' or '-', got "
                         f"{value!r}")
    return text


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _bounds(value: Any) -> dict[str, tuple[float, float]]:
    if not isinstance(value, Mapping) or not value:
        raise ValueError("bounds map exit parameter names to [low, high]")
    try:
        refuse_cost_names(value, "bounds")
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    unknown = sorted(str(k) for k in value if k not in EXIT_PARAM_NAMES)
    if unknown:
        raise ValueError(f"unknown exit parameter(s) {', '.join(unknown)}; known: "
                         f"{', '.join(EXIT_PARAM_NAMES)}")
    out = {}
    for name in EXIT_PARAM_NAMES:  # canonical order, whatever order was given
        if name not in value:
            continue
        pair = value[name]
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise ValueError(f"{name}: give [low, high], got {pair!r}")
        low, high = (float(x) for x in pair)
        if not (math.isfinite(low) and math.isfinite(high)) or low < 0 or low > high:
            raise ValueError(f"{name}: need 0 <= low <= high (finite), got [{low}, {high}]")
        if name in INT_PARAMETERS and (low != int(low) or high != int(high)):
            raise ValueError(f"{name}: counts whole ticks or bars, got [{low}, {high}]")
        out[name] = (low, high)
    ParameterSpace(tuple(_parameter(n, b) for n, b in out.items()))  # the space's own rules
    return out


def _parameter(name: str, bounds: tuple[float, float]) -> Parameter:
    kind = "int" if name in INT_PARAMETERS else "float"
    return Parameter(name, bounds[0], bounds[1], kind)


TimeframeName = Annotated[str, BeforeValidator(_timeframe)]
Hierarchy = Annotated[tuple[str, ...], BeforeValidator(_hierarchy)]
Symbol = Annotated[str, BeforeValidator(_symbol)]
UtcTime = Annotated[datetime, AfterValidator(_utc)]
Bounds = Annotated[dict[str, tuple[float, float]], BeforeValidator(_bounds)]
Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]

_STRICT = ConfigDict(extra="forbid", frozen=True)


class Span(BaseModel):
    """A half-open stretch of time ``[start, end)`` in UTC (naive times are read as UTC)."""

    model_config = _STRICT

    start: UtcTime
    end: UtcTime

    @model_validator(mode="after")
    def _ordered(self) -> Span:
        if not self.start < self.end:
            raise ValueError(f"start ({self.start.isoformat()}) must be before end "
                             f"({self.end.isoformat()})")
        return self


class SignalSource(BaseModel):
    """Where entries come from.

    ``kind="template"``: the bars of ``timeframe`` that match template ``template_id`` of the
    template library whose digest is ``library`` (``match_bars="patterns"`` matches only bars
    whose state is a cascade or a confirmed structure, ``"all"`` every bar; a bar matches
    when its scaled feature vector is within ``match_threshold`` of the template's centre).
    ``kind="model"``: an ML model of the evolution factory (``model_id`` = its fingerprint,
    ``match_threshold`` = the signal threshold in standard deviations of its training-span
    predictions); spans must start at or after the first bar of the model's test span. A
    model *design* (the spec's ``model`` section) has no ``model_id``: its training step
    trains the model and the backtest replays it.
    """

    model_config = _STRICT

    kind: Literal["template", "model"] = "template"
    timeframe: TimeframeName
    template_id: Identifier | None = None
    library: Identifier | None = None
    model_id: Identifier | None = None
    match_bars: Literal["patterns", "all"] = "patterns"
    match_threshold: float = Field(3.0, gt=0.0, le=100.0)

    @model_validator(mode="after")
    def _complete(self) -> SignalSource:
        if self.kind == "template" and (self.template_id is None or self.library is None):
            raise ValueError("a template signal needs template_id and library")
        return self


class ParameterRegion(BaseModel):
    """The box of exit parameters the training step samples: ``bounds`` maps an exit
    parameter to inclusive ``[low, high]`` (ticks and bars are whole numbers); parameters
    not listed are off. ``name`` labels it (a preset of ``ops.agent.regions`` or ``custom``).
    """

    model_config = _STRICT

    name: Identifier
    bounds: Bounds

    def space(self) -> ParameterSpace:
        """The region as a ``ParameterSpace`` (parameters in ``EXIT_PARAM_NAMES`` order)."""
        return ParameterSpace(tuple(_parameter(n, b) for n, b in self.bounds.items()))


CostSetting = Annotated[float | None, Field(ge=0.0, le=1e6)]


class CostModel(BaseModel):
    """Costs of every simulated trade: the symbol's cost model (``Instrument.costs``, see
    ``stratforge.costs``) with these settings replacing its values; None keeps the
    instrument's. A cost is fixed by the spec, never searched. The designer writes the
    resolved model into every spec it proposes, so the fingerprint covers it."""

    model_config = _STRICT

    commission: CostSetting = None
    spread_ticks: CostSetting = None
    slippage_ticks: CostSetting = None
    fee_bps: CostSetting = None
    velocity_slippage: CostSetting = None
    velocity_cap_ticks: CostSetting = None

    def resolve(self, instrument: Instrument) -> Costs:
        """The cost model every trade of the design pays."""
        return instrument.costs.with_overrides(**self.model_dump())

    @classmethod
    def of(cls, costs: Costs) -> dict[str, float]:
        """A resolved cost model as the spec's ``costs`` values (every setting given)."""
        return {name: float(getattr(costs, name)) for name in cls.model_fields}


MODEL_ALGORITHMS = ALGORITHMS
"""The evolution factory's algorithms a model design may use."""
UNREPLAYABLE_FEATURES = frozenset({"regime_vol", "regime_gmm", "regime_gmm_p"})
"""Evolution features a model design may not use: regimes are fitted on the model's own
span, so they cannot be replayed on a later backtest span."""


def _features(value: Any) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items:
        raise ValueError("give at least one evolution feature name, e.g. [logret_1, rsi_14]")
    names = [str(v).strip() for v in items]
    if len(set(names)) != len(names) or not all(names):
        raise ValueError(f"feature names must be distinct and non-empty, got {names}")
    refused = sorted(set(names) & UNREPLAYABLE_FEATURES)
    if refused:
        raise ValueError(f"{', '.join(refused)}: regime features are fitted on the model's "
                         "own span and cannot be replayed out of sample; leave them out")
    return tuple(sorted(names))


FeatureNames = Annotated[tuple[str, ...], BeforeValidator(_features)]


class ModelDesign(BaseModel):
    """A model the training step trains with the evolution pipeline (a ``model`` design).

    ``features`` (evolution feature names, sorted; ``feature_set`` labels them), the
    ``algorithm`` with its ``hyperparameters``, the target ``horizon`` in bars of the signal
    timeframe, and ``reference_symbols`` whose returns join the features. The model is fitted
    on the spec's training span only (``ops.agent.modeling``), so the backtest is out of
    sample; its fingerprint (the evolution model fingerprint) does not depend on the exit
    region or the signal threshold, so designs that differ only there share one model.
    """

    model_config = _STRICT

    feature_set: Identifier = "custom"
    features: FeatureNames
    algorithm: Literal[MODEL_ALGORITHMS] = "elasticnet"  # type: ignore[valid-type]
    hyperparameters: dict[str, float | int | str | bool | None] = Field(default_factory=dict)
    horizon: int = Field(1, ge=1, le=10_000)
    reference_symbols: tuple[Symbol, ...] = ()

    @model_validator(mode="after")
    def _known_hyperparameters(self) -> ModelDesign:
        try:
            normalise_hyperparameters(self.algorithm, dict(self.hyperparameters))
        except ConfigError as exc:
            raise ValueError(f"hyperparameters: {exc}") from None
        return self


class StrategySpec(BaseModel):
    """One design: see the module docstring and docs/agent.md ("The strategy spec").

    ``n_sets`` parameter sets are sampled in ``region`` on the training span; the set with
    the best per-trade Sharpe among those with at least ``selection_min_trades`` in-sample
    trades is kept. ``capital`` is the equity that returns and drawdown percentages refer to.
    """

    model_config = _STRICT

    version: Literal[1] = SPEC_VERSION
    symbol: Symbol
    timeframes: Hierarchy
    signal: SignalSource
    region: ParameterRegion
    training: Span
    backtest: Span
    n_sets: int = Field(64, ge=1, le=MAX_SETS)
    selection_min_trades: int = Field(10, ge=1, le=1_000_000)
    costs: CostModel = CostModel()
    capital: float = Field(10_000.0, gt=0.0, le=1e12)
    model: ModelDesign | None = None

    @model_validator(mode="after")
    def _consistent(self) -> StrategySpec:
        problems = consistency_problems(self.model_dump(mode="python"))
        if self.model is not None and (self.signal.kind != "model"
                                       or self.signal.model_id is not None):
            problems.append("a model design (model) needs signal.kind model and no "
                            "signal.model_id (the training step trains the model)")
        if self.model is None and self.signal.kind == "model" and self.signal.model_id is None:
            problems.append("a model signal needs signal.model_id (a trained model) or a "
                            "model section (a model to train)")
        if self.model is not None and self.symbol in self.model.reference_symbols:
            problems.append(f"model.reference_symbols must not hold the symbol {self.symbol}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def kind(self) -> str:
        """``model`` for a design that trains a model, else ``template`` (exit rules on a
        template's or a stored model's signal)."""
        return "model" if self.model is not None else "template"

    def _json(self) -> dict[str, Any]:
        # a spec without a model section hashes as before the section existed
        return self.model_dump(mode="json", exclude={"model"} if self.model is None else None)

    def canonical_json(self) -> str:
        """The spec as JSON with sorted keys and no spaces (what the fingerprint hashes)."""
        return json.dumps(self._json(), sort_keys=True, separators=(",", ":"))

    def to_yaml(self) -> str:
        """The spec as a YAML document (fields in model order)."""
        return yaml.safe_dump(self._json(), sort_keys=False)

    @property
    def arm(self) -> str:
        """The designer's arm: ``<library[:8]>/<template>@<timeframe>``, for a stored model
        ``model/<id>@<timeframe>``, for a model design
        ``model/<algorithm>/<feature_set>/h<horizon>@<timeframe>``."""
        s = self.signal
        if self.model is not None:
            m = self.model
            return f"model/{m.algorithm}/{m.feature_set}/h{m.horizon}@{s.timeframe}"
        if s.kind == "model":
            return f"model/{s.model_id}@{s.timeframe}"
        return f"{(s.library or '')[:8]}/{s.template_id}@{s.timeframe}"


def consistency_problems(values: Mapping[str, Any]) -> list[str]:
    """Rules across fields, on a (possibly partial) spec mapping: the signal timeframe is in
    the hierarchy, and training ends no later than the backtest starts. Missing fields are
    not checked (so the same rules serve overrides and whole specs)."""
    problems = []
    signal = values.get("signal") or {}
    timeframes = values.get("timeframes")
    tf = signal.get("timeframe") if isinstance(signal, Mapping) else None
    if timeframes and tf and tf not in timeframes:
        problems.append(f"signal.timeframe {tf} is not in timeframes ({', '.join(timeframes)})")
    training, backtest = values.get("training") or {}, values.get("backtest") or {}
    end = training.get("end") if isinstance(training, Mapping) else None
    start = backtest.get("start") if isinstance(backtest, Mapping) else None
    if isinstance(end, datetime) and isinstance(start, datetime) and _utc(end) > _utc(start):
        problems.append(f"training.end ({_utc(end).isoformat()}) is after backtest.start "
                        f"({_utc(start).isoformat()}): the backtest must be out of sample")
    return problems


def _problems(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "spec"
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


def parse_spec(values: Mapping[str, Any], *, where: str = "strategy spec") -> StrategySpec:
    """A ``StrategySpec`` from a mapping; ConfigError naming every bad field otherwise."""
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where} must be a mapping of fields, got {type(values).__name__}")
    try:
        return StrategySpec.model_validate(dict(values))
    except ValidationError as exc:
        raise ConfigError(f"invalid {where}: {_problems(exc)}") from None


def spec_from_yaml(text: str) -> StrategySpec:
    """Read a spec written by :meth:`StrategySpec.to_yaml` (or by hand)."""
    try:
        values = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"strategy spec: not valid YAML ({exc})") from None
    return parse_spec(values if values is not None else {})


def fingerprint(spec: StrategySpec) -> str:
    """sha256 (hex) of the spec's canonical JSON: equal specs, equal fingerprints."""
    return hashlib.sha256(spec.canonical_json().encode()).hexdigest()


def _field_check(model: type[BaseModel], values: Mapping[str, Any], prefix: str
                 ) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        path = f"{prefix}{key}"
        field = model.model_fields.get(str(key))
        if field is None or path in NOT_OVERRIDABLE:
            settable = [f"{prefix}{n}" for n in model.model_fields
                        if f"{prefix}{n}" not in NOT_OVERRIDABLE]
            raise ConfigError(f"override {path!r}: not a spec field that can be set; "
                              f"settable here: {', '.join(settable)}")
        annotation = field.annotation
        inner = [a for a in get_args(annotation) if a is not type(None)]
        if len(inner) == 1 and isinstance(value, Mapping):  # an optional section: by field
            annotation = inner[0]
        sub = annotation if isinstance(annotation, type) and issubclass(annotation,
                                                                         BaseModel) else None
        if sub is not None and sub is not ParameterRegion and isinstance(value, Mapping):
            out[key] = _field_check(sub, value, f"{path}.")
            continue
        if sub is ParameterRegion and isinstance(value, Mapping) and "bounds" not in value:
            out[key] = _field_check(sub, value, f"{path}.")  # a preset chosen by name
            continue
        given = ({"name": "custom", **value}
                 if sub is ParameterRegion and isinstance(value, Mapping) else value)
        adapter = TypeAdapter(Annotated[annotation, *field.metadata] if field.metadata
                              else annotation)
        try:
            out[key] = adapter.dump_python(adapter.validate_python(given), mode="json")
        except ValidationError as exc:
            inner = _problems(exc)
            raise ConfigError(f"override {path}: {inner.split(': ', 1)[-1]}") from None
    return out


def _nest(overrides: Mapping[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, value in overrides.items():
        if not isinstance(key, str) or not key:
            raise ConfigError(f"override keys are field names such as 'signal.timeframe', "
                              f"got {key!r}")
        parts = key.split(".")
        target = nested
        for part in parts[:-1]:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise ConfigError(f"override {key!r} conflicts with a value given for "
                                  f"{part!r}")
        if isinstance(value, Mapping) and isinstance(target.get(parts[-1]), dict):
            target[parts[-1]] = merge(target[parts[-1]], _nest(value))
        else:
            target[parts[-1]] = _nest(value) if isinstance(value, Mapping) else value
    return nested


def validate_overrides(overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """Check spec overrides field by field and return them nested and JSON-ready.

    Keys are spec fields, nested (``{"signal": {"timeframe": "5m"}}``) or dotted
    (``{"signal.timeframe": "5m"}``). ``region`` is either a whole region (``name`` and
    ``bounds``) or ``{"name": preset}``. Rules across fields are checked among the fields
    given. An unknown field or a bad value is a ConfigError naming the field.
    """
    if overrides is None:
        return {}
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"overrides must be a mapping of spec field to value, got "
                          f"{type(overrides).__name__}")
    checked = _field_check(StrategySpec, _nest(overrides), "")
    region = checked.get("region")
    if (isinstance(region, dict) and "bounds" not in region
            and region.get("name", REGION_NAMES[0]) not in REGION_NAMES):
        raise ConfigError(f"override region.name {region['name']!r} is not a preset; "
                          f"presets: {', '.join(REGION_NAMES)} (or give region.bounds "
                          "for a custom region)")
    for span in ("training", "backtest"):
        part = checked.get(span)
        if isinstance(part, dict) and {"start", "end"} <= set(part):
            try:
                Span.model_validate(part)
            except ValidationError as exc:
                raise ConfigError(f"override {span}: {_problems(exc)}") from None
    problems = consistency_problems(_as_times(checked))
    if problems:
        raise ConfigError(f"overrides disagree: {'; '.join(problems)}")
    return checked


def _as_times(values: dict[str, Any]) -> dict[str, Any]:
    out = dict(values)
    for span in ("training", "backtest"):
        part = out.get(span)
        if isinstance(part, dict):
            out[span] = {k: datetime.fromisoformat(v) if isinstance(v, str) else v
                         for k, v in part.items()}
    return out


def merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` updated with ``extra``, recursively for nested mappings (``extra`` wins)."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out
