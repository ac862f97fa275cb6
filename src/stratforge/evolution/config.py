"""Settings of an evolution run: what to learn, how to split, which rule grid to simulate and
when a model is promoted. Every value is checked on construction (``ConfigError`` naming the
field and how to fix it), so a bad run is refused before anything is queued."""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from stratforge.costs import Costs
from stratforge.data.load import default_timeframes
from stratforge.errors import ConfigError
from stratforge.evolution.hyperparameters import normalise_hyperparameters
from stratforge.evolution.regimes import parse_regime_rule
from stratforge.instruments import Instrument

ALGORITHMS: tuple[str, ...] = ("elasticnet", "random_forest", "hist_gradient_boosting",
                               "lightgbm", "xgboost")
TARGET_KINDS: tuple[str, ...] = ("log_return", "pct_change")
DEFAULT_THRESHOLDS: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0)
DEFAULT_Z_CUTOFFS: tuple[float, ...] = (0.0,)
DEFAULT_REGIMES: tuple[str, ...] = ("all",)
COST_OVERRIDES: tuple[str, ...] = ("commission", "spread_ticks", "slippage_ticks", "fee_bps")
"""Settings that override the instrument's cost model (None keeps the instrument's value)."""


def _number(name: str, value: Any, *, low: float | None = None, high: float | None = None,
            integer: bool = False, low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"evolution setting {name} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ConfigError(f"evolution setting {name} must be finite, got {value!r}")
    if integer and number != int(number):
        raise ConfigError(f"evolution setting {name} must be a whole number, got {value!r}")
    if low is not None and (number <= low if low_open else number < low):
        raise ConfigError(f"evolution setting {name} must be {'>' if low_open else '>='} "
                          f"{low:g}, got {value!r}")
    if high is not None and number > high:
        raise ConfigError(f"evolution setting {name} must be <= {high:g}, got {value!r}")
    return number


@dataclass(frozen=True)
class Promotion:
    """The "holy grail" criteria, evaluated on the out-of-sample (test) span of the grid point
    chosen on the validation span. Bounds are inclusive."""

    sqn_min: float = 3.0
    sqn_max: float = 5.0
    profit_factor_min: float = 2.0
    profit_factor_max: float = 4.0
    trades_min: int = 200
    trades_max: int = 10_000
    weekly_consistency_max: float = 0.5

    def __post_init__(self) -> None:
        for f in fields(self):
            _number(f"promotion.{f.name}", getattr(self, f.name),
                    low=None if f.name.startswith("sqn") else 0.0,
                    integer=f.name.startswith("trades"))
        for lo, hi in (("sqn_min", "sqn_max"), ("profit_factor_min", "profit_factor_max"),
                       ("trades_min", "trades_max")):
            if getattr(self, lo) > getattr(self, hi):
                raise ConfigError(f"evolution setting promotion.{lo} ({getattr(self, lo)}) is "
                                  f"above promotion.{hi} ({getattr(self, hi)})")

    def check(self, metrics: dict[str, Any]) -> list[str]:
        """The criteria ``metrics`` fail, in words (empty: promoted)."""
        failed = []

        def within(name: str, lo: float, hi: float) -> None:
            value = metrics.get(name)
            if value is None or not isinstance(value, int | float) or math.isnan(value) \
                    or not lo <= value <= hi:
                failed.append(f"{name} {value} not in [{lo:g}, {hi:g}]")

        within("sqn", self.sqn_min, self.sqn_max)
        within("profit_factor", self.profit_factor_min, self.profit_factor_max)
        within("trades", self.trades_min, self.trades_max)
        within("weekly_consistency", 0.0, self.weekly_consistency_max)
        return failed


@dataclass(frozen=True)
class GridPoint:
    """One trading rule of the simulation grid: prediction threshold (in standard deviations
    of the training-span predictions), outlier z-score cutoff (0 = off) and regime filter
    (``all`` or ``COLUMN=V1,V2`` over the regime columns)."""

    threshold: float
    z_cutoff: float
    regime: str

    def to_json(self) -> dict[str, Any]:
        """The point as a plain dict."""
        return asdict(self)


@dataclass(frozen=True)
class EvolutionConfig:
    """Everything an evolution run needs (see docs/evolution.md for each setting)."""

    symbol: str = "MNQ"
    timeframe: str = "1m"
    reference_symbols: tuple[str, ...] = ()
    algorithm: str = "elasticnet"
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    max_generations: int = 4
    prune_fraction: float = 0.25
    min_features: int = 5
    target: str = "log_return"
    horizon: int = 1
    train_fraction: float = 0.6
    validation_fraction: float = 0.2
    purge_bars: int = 0
    segments: int = 1
    start: str | None = None
    end: str | None = None
    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS
    z_cutoffs: tuple[float, ...] = DEFAULT_Z_CUTOFFS
    regimes: tuple[str, ...] = DEFAULT_REGIMES
    long_only: bool = False
    delay_bars: int = 4
    # overrides of the instrument's cost model (None keeps its value; never searched)
    commission: float | None = None
    spread_ticks: float | None = None
    slippage_ticks: float | None = None
    fee_bps: float | None = None
    stop_ticks: float = 0.0
    target_ticks: float = 0.0
    importance_repeats: int = 3
    importance_rows: int = 20_000
    n_jobs: int = 1
    seed: int = 7
    promotion: Promotion = field(default_factory=Promotion)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if not isinstance(self.symbol, str) or not self.symbol.strip():
            raise ConfigError("evolution setting symbol must be a symbol such as MNQ")
        set_(self, "symbol", self.symbol.strip().upper())
        set_(self, "reference_symbols", tuple(sorted({str(s).strip().upper()
                                                      for s in self.reference_symbols})))
        if self.symbol in self.reference_symbols:
            raise ConfigError(f"evolution setting reference_symbols must not hold the symbol "
                              f"itself ({self.symbol})")
        if self.algorithm not in ALGORITHMS:
            raise ConfigError(f"evolution setting algorithm must be one of "
                              f"{', '.join(ALGORITHMS)}, got {self.algorithm!r}")
        if not isinstance(self.hyperparameters, dict):
            raise ConfigError("evolution setting hyperparameters must map names to values")
        normalise_hyperparameters(self.algorithm, self.hyperparameters)
        if self.target not in TARGET_KINDS:
            raise ConfigError(f"evolution setting target must be one of "
                              f"{', '.join(TARGET_KINDS)}, got {self.target!r}")
        for name, low in (("max_generations", 1), ("min_features", 1), ("horizon", 1),
                          ("purge_bars", 0), ("segments", 1), ("delay_bars", 1),
                          ("importance_repeats", 1), ("importance_rows", 100), ("seed", 0),
                          ("n_jobs", 1)):
            set_(self, name, int(_number(name, getattr(self, name), low=low, integer=True)))
        _number("prune_fraction", self.prune_fraction, low=0.0, high=0.95)
        _number("train_fraction", self.train_fraction, low=0.05, high=0.9)
        _number("validation_fraction", self.validation_fraction, low=0.05, high=0.9)
        if self.train_fraction + self.validation_fraction >= 0.95:
            raise ConfigError("evolution settings train_fraction + validation_fraction must "
                              "leave at least 5% of the data for the test span")
        for name in COST_OVERRIDES:
            if getattr(self, name) is not None:
                set_(self, name, _number(name, getattr(self, name), low=0.0))
        for name in ("stop_ticks", "target_ticks"):
            _number(name, getattr(self, name), low=0.0)
        set_(self, "thresholds", _grid_values("thresholds", self.thresholds, positive=True))
        set_(self, "z_cutoffs", _grid_values("z_cutoffs", self.z_cutoffs, positive=False))
        regimes = tuple(str(r).strip() for r in self.regimes)
        if not regimes or len(set(regimes)) != len(regimes):
            raise ConfigError("evolution setting regimes must list distinct regime filters "
                              "('all' or COLUMN=V1,V2)")
        for rule in regimes:
            parse_regime_rule(rule)
        set_(self, "regimes", regimes)
        if isinstance(self.promotion, dict):
            try:
                set_(self, "promotion", Promotion(**self.promotion))
            except TypeError:
                raise ConfigError(f"evolution setting promotion takes "
                                  f"{', '.join(f.name for f in fields(Promotion))}") from None
        if not isinstance(self.promotion, Promotion):
            raise ConfigError("evolution setting promotion must map criteria names to numbers")

    @property
    def grid(self) -> list[GridPoint]:
        """Every grid point: thresholds x z-cutoffs x regime filters, in that order."""
        return [GridPoint(t, z, r) for t, z, r in
                itertools.product(self.thresholds, self.z_cutoffs, self.regimes)]

    def costs_for(self, instrument: Instrument) -> Costs:
        """The cost model every simulated trade of the run pays: the instrument's own with
        the cost settings given here replacing its values."""
        return instrument.costs.with_overrides(
            **{name: getattr(self, name) for name in COST_OVERRIDES})

    def to_json(self) -> dict[str, Any]:
        """The settings as JSON-ready values."""
        out = asdict(self)
        for key in ("reference_symbols", "thresholds", "z_cutoffs", "regimes"):
            out[key] = list(out[key])
        return out


def _grid_values(name: str, values: Any, *, positive: bool) -> tuple[float, ...]:
    if isinstance(values, int | float):
        values = (values,)
    try:
        numbers = tuple(_number(name, v, low=0.0, low_open=positive) for v in values)
    except TypeError:
        raise ConfigError(f"evolution setting {name} must be a list of numbers") from None
    if not numbers:
        raise ConfigError(f"evolution setting {name} needs at least one value")
    if len(set(numbers)) != len(numbers):
        raise ConfigError(f"evolution setting {name} has repeated values: {list(numbers)}")
    return numbers


def with_default_timeframe(settings: dict[str, Any], home: Any = None) -> dict[str, Any]:
    """``settings`` with ``timeframe`` chosen from what the symbol's store holds when it is
    not given: the finest of ``data.load.default_timeframes`` (1m for 1s or 1m bars, 1h for
    hourly FX). A symbol without data keeps the config's default (its demo market is 1s)."""
    if settings.get("timeframe") is not None:
        return settings
    chosen = default_timeframes(str(settings.get("symbol", EvolutionConfig.symbol)), home)
    return {**settings, "timeframe": chosen[0]} if chosen else settings


def make_evolution_config(**settings: Any) -> EvolutionConfig:
    """An ``EvolutionConfig`` from keyword settings; unknown names are a ConfigError."""
    known = {f.name for f in fields(EvolutionConfig)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ConfigError(f"unknown evolution setting(s) {', '.join(unknown)}; known: "
                          f"{', '.join(sorted(known))}")
    clean = {k: v for k, v in settings.items() if v is not None or k in ("start", "end")}
    for key in ("reference_symbols", "thresholds", "z_cutoffs", "regimes"):
        if key in clean and isinstance(clean[key], list):
            clean[key] = tuple(clean[key])
    try:
        return EvolutionConfig(**clean)
    except TypeError as exc:
        raise ConfigError(f"bad evolution settings: {exc}") from None
