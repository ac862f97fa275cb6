"""Designers: what to try next, given the template library and what past experiments learned.

A designer is any object with ``design(context) -> Design`` (the :class:`Designer`
protocol), registered under a name with :func:`register_designer`; ``trigger_cycle(...,
designer=name)`` picks it (the worker process that runs the cycle must have registered it
too). A designer must return a spec whose fingerprint was not tried yet;
:func:`candidates` lists those consistent with the overrides, so an LLM-based designer can
choose among them or write its own spec.

The built-in ``thompson`` designer needs no network. Arms are (library, template,
timeframe) for exit-rule designs and (algorithm, feature set, horizon, timeframe) for model
designs (``DesignContext.kinds`` says which kinds are on offer, so one draw chooses between
both kinds): each arm's success probability has a ``Beta(1 + s, 1 + f)`` posterior, where
``s`` counts its finished experiments with verdict ``promising`` and ``f`` the others. Among
the arms that still have an untried design it draws one sample per arm (in arm-name order,
from a generator seeded with the seed and the fingerprints of every past experiment, so the
same seed and history give the same choice) and takes the largest draw; within the arm, the
first untried parameter region in ``REGION_NAMES`` order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from stratforge.errors import ConfigError, StratforgeError
from stratforge.ops.agent.experiments import FINISHED_STATUSES, TRIED_STATUSES
from stratforge.ops.agent.regions import REGION_NAMES, region_bounds
from stratforge.ops.agent.spec import (
    StrategySpec,
    consistency_problems,
    fingerprint,
    merge,
    parse_spec,
)


@dataclass(frozen=True)
class TemplateInfo:
    """What a designer knows of one template: id, the timeframes of its members, size."""

    template_id: str
    timeframes: tuple[str, ...]
    members: int


@dataclass(frozen=True)
class ModelOption:
    """A model a model design may train: a named feature set, an algorithm, a horizon."""

    feature_set: str
    features: tuple[str, ...]
    algorithm: str = "elasticnet"
    horizon: int = 1

    def to_spec(self) -> dict[str, Any]:
        """The spec's ``model`` section of this option."""
        return {"feature_set": self.feature_set, "features": list(self.features),
                "algorithm": self.algorithm, "horizon": self.horizon}


MODEL_THRESHOLD = 1.0
"""Default signal threshold of a model design (standard deviations of the model's
training-span predictions)."""


@dataclass(frozen=True)
class DesignContext:
    """Everything a designer may use.

    ``base`` holds the spec fields shared by every design of this cycle (symbol, timeframes,
    spans, budget, and ``signal.library``); ``templates`` the library's templates (library
    order); ``signal_timeframes`` where signals may fire; ``history`` one mapping per past
    experiment (``fingerprint``, ``arm``, ``status``, ``verdict``), oldest first;
    ``overrides`` the spec fields the user fixed (nested, validated); ``seed`` the seed.
    ``yardsticks`` maps each hierarchy timeframe to its yardstick in ticks (the median true
    range of its training-span bars) and ``tick_size`` is the instrument's: the preset
    regions are the default space resolved with them (``regions.region_bounds``).
    """

    base: Mapping[str, Any]
    templates: tuple[TemplateInfo, ...]
    signal_timeframes: tuple[str, ...]
    history: tuple[Mapping[str, Any], ...] = ()
    overrides: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0
    yardsticks: Mapping[str, float] = field(default_factory=dict)
    tick_size: float = 0.0
    kinds: tuple[str, ...] = ("template",)
    models: tuple[ModelOption, ...] = ()

    def wanted_kinds(self) -> tuple[str, ...]:
        """The design kinds to propose: the overrides decide (a ``model`` section or
        ``signal.kind: model`` means model designs, ``signal.template_id`` or
        ``signal.kind: template`` template designs), else ``kinds``."""
        signal = self.overrides.get("signal") or {}
        if self.overrides.get("model") or signal.get("kind") == "model":
            return ("model",)
        if "template_id" in signal or signal.get("kind") == "template":
            return ("template",)
        return self.kinds

    def region(self, name: str, timeframe: str) -> dict[str, list[float]]:
        """The bounds of preset ``name`` on ``timeframe`` in this market's units."""
        if timeframe not in self.yardsticks or not self.tick_size > 0:
            raise ConfigError(f"no yardstick for {timeframe}: preset regions need the "
                              "timeframe's training-span bars (measured: "
                              f"{', '.join(self.yardsticks) or 'none'})")
        return region_bounds(name, timeframe, yardstick_ticks=self.yardsticks[timeframe],
                             tick_size=self.tick_size)

    @property
    def tried(self) -> set[str]:
        """Fingerprints never to propose again (running, completed or rejected)."""
        return {h["fingerprint"] for h in self.history if h.get("status") in TRIED_STATUSES}


@dataclass(frozen=True)
class Candidate:
    """A valid, untried design: its spec, fingerprint and arm."""

    spec: StrategySpec
    fingerprint: str
    arm: str


@dataclass(frozen=True)
class Design:
    """A designer's choice and why it was made."""

    spec: StrategySpec
    fingerprint: str
    arm: str
    rationale: str


class Designer(Protocol):
    """Chooses the next design (see the module docstring)."""

    def design(self, context: DesignContext) -> Design:
        """Return an untried design consistent with ``context.overrides``."""


def _choices(context: DesignContext) -> tuple[list[TemplateInfo], str | None,
                                             list[tuple[str, Any]], dict[str, Any]]:
    """Templates, fixed timeframe, regions (name, bounds or None) and the other overrides."""
    rest = dict(context.overrides)
    rest.pop("model", None)
    signal = dict(rest.pop("signal", {}) or {})
    signal.pop("kind", None)
    region = dict(rest.pop("region", {}) or {})
    templates = list(context.templates)
    wanted = signal.pop("template_id", None)
    if wanted is not None:
        templates = [t for t in templates if t.template_id == wanted]
        if not templates:
            known = ", ".join(t.template_id for t in context.templates[:8])
            raise ConfigError(f"signal.template_id {wanted!r} is not in the template library "
                              f"({len(context.templates)} templates: {known}...)")
    timeframe = signal.pop("timeframe", None)
    if "bounds" in region:
        regions: list[tuple[str, Any]] = [(region.get("name", "custom"), region["bounds"])]
    elif "name" in region:
        regions = [(region["name"], None)]
    else:
        regions = [(name, None) for name in REGION_NAMES]
    if signal:
        rest["signal"] = signal
    return templates, timeframe, regions, rest


def _model_sections(context: DesignContext) -> list[dict[str, Any]]:
    """The ``model`` sections on offer: the context's options, narrowed to the overridden
    ``model.feature_set`` when it names one, with the other ``model`` overrides applied;
    explicit ``model.features`` make one custom section."""
    wanted = dict(context.overrides.get("model") or {})
    if "features" in wanted:
        return [{"feature_set": "custom", **wanted}]
    options = list(context.models)
    name = wanted.get("feature_set")
    if name is not None:
        options = [o for o in options if o.feature_set == name]
        if not options:
            known = ", ".join(sorted({o.feature_set for o in context.models})) or "none"
            raise ConfigError(f"model.feature_set {name!r} is not offered (offered: {known});"
                              " give model.features to name the features yourself")
    if not options:
        raise ConfigError("no model designs are offered: set STRATFORGE_AGENT_MODEL_"
                          "FEATURE_SETS, or give model.features")
    sections, seen = [], set()
    for option in options:
        section = merge(option.to_spec(), wanted)
        key = repr(sorted(section.items()))
        if key not in seen:
            seen.add(key)
            sections.append(section)
    return sections


def _model_candidates(context: DesignContext, timeframe: str | None,
                      regions: list[tuple[str, Any]], rest: dict[str, Any]
                      ) -> list[tuple[StrategySpec, str]]:
    frames = [timeframe] if timeframe else list(context.signal_timeframes)
    out = []
    for section in _model_sections(context):
        for tf in frames:
            for name, bounds in regions:
                values = merge(context.base, {
                    "signal": {"kind": "model", "library": None, "timeframe": tf,
                               "match_threshold": MODEL_THRESHOLD},
                    "model": section,
                    "region": {"name": name,
                               "bounds": bounds if bounds is not None else
                               context.region(name, tf)}})
                spec = parse_spec(merge(values, rest))
                out.append((spec, fingerprint(spec)))
    return out


def candidates(context: DesignContext) -> list[Candidate]:
    """Every untried design consistent with the overrides, in a fixed order: template
    designs (library order of templates, then ``signal_timeframes`` order, then
    ``REGION_NAMES`` order), then model designs (``context.models`` order, then timeframes,
    then regions; only when ``context.wanted_kinds()`` holds ``model``). A template's designs
    fire on the signal timeframes its members came from (or on the overridden timeframe).
    Invalid overrides are a ConfigError naming the field."""
    templates, timeframe, regions, rest = _choices(context)
    kinds = context.wanted_kinds()
    if "template" not in kinds:
        templates = []
    if timeframe is not None:  # a timeframe outside the hierarchy has no yardstick either
        problems = consistency_problems(merge(context.base, {**rest, "signal": {
            "timeframe": timeframe}}))
        if problems:
            raise ConfigError(f"invalid strategy spec: {'; '.join(problems)}")
    tried, seen = context.tried, set()
    out = []
    for template in templates:
        frames = [timeframe] if timeframe else [tf for tf in context.signal_timeframes
                                                if tf in template.timeframes]
        for tf in frames:
            for name, bounds in regions:
                values = merge(context.base, {
                    "signal": {"kind": "template", "template_id": template.template_id,
                               "timeframe": tf},
                    "region": {"name": name,
                               "bounds": bounds if bounds is not None else
                               context.region(name, tf)}})
                spec = parse_spec(merge(values, rest))
                key = fingerprint(spec)
                if key in tried or key in seen:
                    continue
                seen.add(key)
                out.append(Candidate(spec, key, spec.arm))
    if "model" in kinds:
        for spec, key in _model_candidates(context, timeframe, regions, rest):
            if key not in tried and key not in seen:
                seen.add(key)
                out.append(Candidate(spec, key, spec.arm))
    return out


def design_seed(seed: int, history: tuple[Mapping[str, Any], ...]) -> int:
    """A 63-bit seed from the designer seed and the fingerprints of every past experiment."""
    keys = ",".join(sorted(str(h["fingerprint"]) for h in history))
    digest = hashlib.sha256(f"{int(seed)}|{keys}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def arm_outcomes(history: tuple[Mapping[str, Any], ...]) -> dict[str, tuple[int, int]]:
    """``{arm: (successes, failures)}`` over finished experiments (success = verdict
    ``promising``)."""
    out: dict[str, list[int]] = {}
    for h in history:
        if h.get("status") in FINISHED_STATUSES and h.get("verdict"):
            counts = out.setdefault(str(h["arm"]), [0, 0])
            counts[0 if h["verdict"] == "promising" else 1] += 1
    return {arm: (s, f) for arm, (s, f) in out.items()}


class ThompsonDesigner:
    """The built-in designer: Thompson sampling over arms (see the module docstring)."""

    name = "thompson"

    def design(self, context: DesignContext) -> Design:
        """The untried design of the arm with the largest posterior draw."""
        pool = candidates(context)
        if not pool:
            raise StratforgeError(
                f"every design consistent with the overrides has been tried "
                f"({len(context.history)} experiments); loosen the overrides, add data or "
                "timeframes, or rebuild the template library")
        arms: dict[str, list[Candidate]] = {}
        for candidate in pool:
            arms.setdefault(candidate.arm, []).append(candidate)
        names = sorted(arms)
        outcomes = arm_outcomes(context.history)
        alpha = np.array([1.0 + outcomes.get(a, (0, 0))[0] for a in names])
        beta = np.array([1.0 + outcomes.get(a, (0, 0))[1] for a in names])
        draws = np.random.default_rng(design_seed(context.seed, context.history)).beta(alpha,
                                                                                       beta)
        best = int(np.argmax(draws))
        choice = arms[names[best]][0]
        rationale = (f"Thompson sampling over {len(names)} arms with untried designs: "
                     f"{choice.arm} drew {draws[best]:.3f} from Beta({alpha[best]:g}, "
                     f"{beta[best]:g}); region {choice.spec.region.name}")
        return Design(choice.spec, choice.fingerprint, choice.arm, rationale)


_DESIGNERS: dict[str, Callable[[], Designer]] = {"thompson": ThompsonDesigner}


def register_designer(name: str, factory: Callable[[], Designer]) -> None:
    """Make ``factory()`` the designer called ``name`` (replacing one of that name)."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"a designer name is a non-empty string, got {name!r}")
    _DESIGNERS[name.strip()] = factory


def designer_names() -> list[str]:
    """The registered designer names."""
    return sorted(_DESIGNERS)


def get_designer(name: str) -> Designer:
    """A new designer of that name; ConfigError naming the known ones otherwise."""
    if name not in _DESIGNERS:
        raise ConfigError(f"unknown designer {name!r}; known: {', '.join(designer_names())}")
    return _DESIGNERS[name]()
