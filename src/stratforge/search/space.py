"""Parameter spaces: the range and type of every exit parameter a sweep samples.

A :class:`ParameterSpace` is an ordered tuple of :class:`Parameter` (name, low, high, kind) in
the simulator's units (ticks, points, bars). Distances are chosen in volatility units: the
house defaults (:data:`YARDSTICK_RANGES`) are multiples of a timeframe's *yardstick*, the
median true range of its in-sample bars (:func:`measure_yardstick`), resolved to ticks for
that timeframe by :func:`default_space`; ``max_hold_bars`` is in bars (:func:`hold_range`).
:meth:`ParameterSpace.from_yaml` reads a user file, in ticks or (``unit: yardstick``) in
yardsticks. Costs are never parameters: a space naming one is refused. The space maps
parameter sets to and from the unit cube (what the samplers draw in) and repairs invalid
combinations with one rule (:meth:`ParameterSpace.repair`). The rules are written down in
docs/search.md ("Parameter space and sampling").
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from stratforge.costs import refuse_cost_names
from stratforge.errors import ConfigError
from stratforge.sim.params import EXIT_PARAM_NAMES
from stratforge.timeframes import parse_timeframe

KINDS: tuple[str, ...] = ("int", "float")

# The default ranges (inclusive) in yardsticks: multiples of the timeframe's median true range
# on in-sample bars. Ticks parameters resolve to whole ticks, trail_widen_points to price
# units. max_hold_bars depends on the timeframe, see HOLD_BARS.
YARDSTICK_RANGES: dict[str, tuple[float, float]] = {
    "stop_ticks": (0.5, 3.0),
    "target_ticks": (1.0, 6.0),
    "trail_tight_ticks": (0.25, 1.5),
    "trail_wide_ticks": (1.0, 4.0),
    "trail_widen_points": (0.5, 3.0),
    "trail_activation_ticks": (0.0, 2.0),
}
DEFAULT_ORDER: tuple[str, ...] = (
    "stop_ticks", "target_ticks", "trail_tight_ticks", "trail_wide_ticks", "trail_widen_points",
    "trail_activation_ticks", "max_hold_bars",
)
UNITS: tuple[str, ...] = ("ticks", "yardstick")
# max_hold_bars (inclusive) per listed timeframe; other timeframes take the nearest listed one
# (see hold_range).
HOLD_BARS: dict[str, tuple[int, int]] = {
    "1m": (10, 120), "5m": (5, 60), "15m": (4, 30), "1h": (2, 12), "4h": (1, 6),
    "1D": (2, 20),
}


@dataclass(frozen=True)
class Parameter:
    """One dimension of a parameter space.

    Attributes:
        name: an exit parameter (``stratforge.sim.params.EXIT_PARAM_NAMES``); never a cost.
        low, high: inclusive bounds, finite, ``0 <= low <= high``; whole numbers for ints.
        kind: ``"int"`` (whole ticks / bars) or ``"float"``.
    """

    name: str
    low: float
    high: float
    kind: str = "float"

    def __post_init__(self) -> None:
        where = f"parameter {self.name!r}"
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"a parameter name must be a non-empty string, got {self.name!r}")
        if self.kind not in KINDS:
            raise ConfigError(f"{where}: kind must be 'int' or 'float', got {self.kind!r}")
        bounds = []
        for label, value in (("low", self.low), ("high", self.high)):
            if isinstance(value, bool):
                raise ConfigError(f"{where}: {label} must be a number, got {value!r}")
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise ConfigError(f"{where}: {label} must be a number, got {value!r}") from None
            if not math.isfinite(number) or number < 0:
                raise ConfigError(f"{where}: {label} must be a finite number >= 0, got {value!r}")
            if self.kind == "int" and number != int(number):
                raise ConfigError(f"{where}: {label} must be a whole number for an int "
                                  f"parameter, got {value!r}")
            bounds.append(number)
        if bounds[0] > bounds[1]:
            raise ConfigError(f"{where}: low ({self.low}) is above high ({self.high})")
        cast = int if self.kind == "int" else float
        object.__setattr__(self, "low", cast(bounds[0]))
        object.__setattr__(self, "high", cast(bounds[1]))

    @property
    def width(self) -> float:
        """``high - low``."""
        return self.high - self.low


@dataclass(frozen=True)
class ParameterSpace:
    """An ordered set of parameters; frames of parameter sets have one column per parameter.

    Construction checks that names are known parameter-table columns and distinct, and that
    the repair rule can always succeed: with both present, ``target_ticks.high >=
    stop_ticks.low + 1`` and ``trail_wide_ticks.high >= trail_tight_ticks.low``.
    """

    parameters: tuple[Parameter, ...]

    def __post_init__(self) -> None:
        params = tuple(self.parameters)
        if not params:
            raise ConfigError("a parameter space needs at least one parameter")
        for p in params:
            if not isinstance(p, Parameter):
                raise ConfigError(f"a parameter space holds Parameter objects, got {p!r}")
        names = [p.name for p in params]
        refuse_cost_names(names, "parameter space")
        unknown = [n for n in names if n not in EXIT_PARAM_NAMES]
        if unknown:
            raise ConfigError(f"unknown parameter(s) {', '.join(unknown)}; known: "
                              f"{', '.join(EXIT_PARAM_NAMES)}")
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ConfigError(f"parameter(s) {', '.join(dupes)} given more than once")
        object.__setattr__(self, "parameters", params)
        by = {p.name: p for p in params}
        if ("stop_ticks" in by and "target_ticks" in by
                and by["target_ticks"].high < by["stop_ticks"].low + 1):
            raise ConfigError(
                f"target_ticks high ({by['target_ticks'].high}) must be at least stop_ticks "
                f"low + 1 ({by['stop_ticks'].low + 1}) so the target can sit above the stop")
        if ("trail_tight_ticks" in by and "trail_wide_ticks" in by
                and by["trail_wide_ticks"].high < by["trail_tight_ticks"].low):
            raise ConfigError(
                f"trail_wide_ticks high ({by['trail_wide_ticks'].high}) must be at least "
                f"trail_tight_ticks low ({by['trail_tight_ticks'].low})")
        if ("trail_tight_ticks" in by and "trail_wide_ticks" in by
                and "trail_widen_points" not in by):
            raise ConfigError(
                "trail_wide_ticks has no effect beside trail_tight_ticks without "
                "trail_widen_points (the MFE, in points, at which the trail widens): add "
                "trail_widen_points to the space, or drop one of the trails")

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_yaml(cls, path: str | Path, timeframe: str, *,
                  yardstick_ticks: float | None = None,
                  tick_size: float | None = None) -> ParameterSpace:
        """Read a space from a YAML file, for one timeframe.

        The file is a mapping from parameter name to ``{low, high, kind, unit}`` (``kind``
        optional: ``int`` when both bounds are written as integers, else ``float``; ``unit``
        optional: ``ticks`` (the simulator's unit: ticks, points for
        ``trail_widen_points``, bars for ``max_hold_bars``; the default) or ``yardstick``
        (multiples of the timeframe's yardstick, resolved like :func:`default_space`, which
        needs ``yardstick_ticks`` and ``tick_size``). ``max_hold_bars`` may instead give
        ``timeframes: {1m: {low: 10, high: 120}, ...}``; a timeframe not listed takes the
        nearest listed one (the rule of :func:`hold_range`). Parameters keep the file's order.
        A cost is refused (costs are set per instrument, never searched). Any problem raises
        a ConfigError naming the file and the key.
        """
        file = Path(path)
        try:
            raw = yaml.safe_load(file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{file}: cannot read the parameter space file ({exc})") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{file}: not valid YAML ({exc})") from None
        if not isinstance(raw, Mapping) or not raw:
            raise ConfigError(f"{file}: a parameter space file is a mapping of parameter name "
                              "to {low, high, kind}")
        params = []
        for key, raw_spec in raw.items():
            where = f"{file}: key {key!r}"
            refuse_cost_names([key], where)
            if key not in EXIT_PARAM_NAMES:
                raise ConfigError(f"{where}: unknown parameter; known: "
                                  f"{', '.join(EXIT_PARAM_NAMES)}")
            if not isinstance(raw_spec, Mapping):
                raise ConfigError(f"{where}: expected a mapping with low, high and kind")
            spec = dict(raw_spec)
            if key == "max_hold_bars" and "timeframes" in spec:
                table = spec.pop("timeframes")
                if not isinstance(table, Mapping) or not table:
                    raise ConfigError(f"{where}: 'timeframes' must map timeframe to "
                                      "{low, high}")
                anchors = {}
                for tf, bounds in table.items():
                    if not isinstance(bounds, Mapping) or set(bounds) != {"low", "high"}:
                        raise ConfigError(f"{where}.timeframes.{tf}: expected {{low, high}}")
                    anchors[str(tf)] = (bounds["low"], bounds["high"])
                try:
                    spec["low"], spec["high"] = hold_range(timeframe, anchors)
                except ConfigError as exc:
                    raise ConfigError(f"{where}: {exc}") from None
                spec.setdefault("kind", "int")
            extra = sorted(set(spec) - {"low", "high", "kind", "unit"})
            if extra:
                raise ConfigError(f"{where}: unexpected field(s) {', '.join(map(str, extra))}; "
                                  "write low, high, kind and unit")
            missing = [f for f in ("low", "high") if f not in spec]
            if missing:
                raise ConfigError(f"{where}: missing {' and '.join(missing)}")
            unit = spec.pop("unit", "ticks")
            if unit not in UNITS:
                raise ConfigError(f"{where}: unit must be one of {', '.join(UNITS)}, got "
                                  f"{unit!r}")
            if unit == "yardstick":
                if key == "max_hold_bars":
                    raise ConfigError(f"{where}: max_hold_bars is in bars; unit: yardstick "
                                      "applies to distances only")
                if yardstick_ticks is None or tick_size is None:
                    raise ConfigError(f"{where}: unit: yardstick needs the timeframe's "
                                      "yardstick (measured by the run on in-sample bars)")
                try:
                    param = resolve_parameter(str(key), float(spec["low"]), float(spec["high"]),
                                              yardstick_ticks, tick_size)
                except (TypeError, ValueError):
                    raise ConfigError(f"{where}: low and high must be numbers") from None
                params.append(param)
                continue
            kind = spec.get("kind")
            if kind is None:
                whole = all(isinstance(spec[f], int) and not isinstance(spec[f], bool)
                            for f in ("low", "high"))
                kind = "int" if whole else "float"
            try:
                params.append(Parameter(str(key), spec["low"], spec["high"], kind))
            except ConfigError as exc:
                raise ConfigError(f"{where}: {exc}") from None
        try:
            return cls(tuple(params))
        except ConfigError as exc:
            raise ConfigError(f"{file}: {exc}") from None

    # ----------------------------------------------------------------- description
    @property
    def names(self) -> tuple[str, ...]:
        """Parameter names, in order (the columns of every frame this space produces)."""
        return tuple(p.name for p in self.parameters)

    @property
    def bounds(self) -> dict[str, tuple[float, float]]:
        """``{name: (low, high)}``, inclusive, in order."""
        return {p.name: (p.low, p.high) for p in self.parameters}

    @property
    def dimensions(self) -> int:
        """Number of parameters."""
        return len(self.parameters)

    def __len__(self) -> int:
        return len(self.parameters)

    def __getitem__(self, name: str) -> Parameter:
        for p in self.parameters:
            if p.name == name:
                return p
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return name in self.names

    @property
    def lows(self) -> np.ndarray:
        """Lower bounds as float64, in order."""
        return np.array([p.low for p in self.parameters], dtype=np.float64)

    @property
    def highs(self) -> np.ndarray:
        """Upper bounds as float64, in order."""
        return np.array([p.high for p in self.parameters], dtype=np.float64)

    @property
    def is_int(self) -> np.ndarray:
        """Boolean mask of the int parameters, in order."""
        return np.array([p.kind == "int" for p in self.parameters])

    # ----------------------------------------------------------------- unit cube
    def from_unit(self, unit: np.ndarray) -> pd.DataFrame:
        """Map points of the unit cube (rows, one column per parameter) onto the space.

        A float parameter maps linearly: ``low + u * (high - low)``. An int parameter splits
        [0, 1) into ``high - low + 1`` equal cells, one per whole value (``low + floor(u *
        (high - low + 1))``, u = 1 maps to ``high``), so a uniform u gives every value the
        same chance (rounding ``low + u * (high - low)`` would give the two end values half a
        share). No repair is applied; ints come back as int64.
        """
        u = np.asarray(unit, dtype=np.float64)
        if u.ndim != 2 or u.shape[1] != self.dimensions:
            raise ConfigError(f"from_unit needs an array of shape (n, {self.dimensions}), got "
                              f"{u.shape}")
        if not np.isfinite(u).all() or (u < 0).any() or (u > 1).any():
            raise ConfigError("from_unit needs values in [0, 1]")
        out = {}
        for j, p in enumerate(self.parameters):
            if p.kind == "int":
                cells = p.high - p.low + 1
                values = np.minimum(p.low + np.floor(u[:, j] * cells), p.high)
                out[p.name] = values.astype(np.int64)
            else:
                out[p.name] = p.low + u[:, j] * (p.high - p.low)
        return pd.DataFrame(out, columns=list(self.names))

    def to_unit(self, frame: pd.DataFrame) -> np.ndarray:
        """Map parameter sets into the unit cube (the inverse of :meth:`from_unit`).

        Floats: ``(x - low) / (high - low)``; ints: the centre of the value's cell, ``(x - low
        + 0.5) / (high - low + 1)``, so ``from_unit(to_unit(f))`` gives ``f`` back for values
        in bounds. A zero-width float parameter maps to 0.5. Values are not clipped.
        """
        values = self.to_array(frame, "to_unit")
        unit = np.empty_like(values)
        for j, p in enumerate(self.parameters):
            if p.kind == "int":
                unit[:, j] = (values[:, j] - p.low + 0.5) / (p.high - p.low + 1)
            elif p.high > p.low:
                unit[:, j] = (values[:, j] - p.low) / (p.high - p.low)
            else:
                unit[:, j] = 0.5
        return unit

    # ----------------------------------------------------------------- repair
    def repair(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Make every parameter set valid; returns a new frame (other columns kept as they are).

        The rule, applied in this order:

        1. clip every parameter into [low, high]; round ints to whole numbers;
        2. stop and target: where ``target_ticks <= stop_ticks``, raise the target to
           ``stop_ticks + 1``; if that is above the target's high bound, the target becomes
           its high bound and the stop is lowered to ``target high - 1`` (the space
           guarantees this is not below the stop's low bound);
        3. trails: where ``trail_wide_ticks < trail_tight_ticks``, raise the wide trail to the
           tight one; if the tight trail is above the wide trail's high bound, both become that
           bound (the tight trail is lowered).

        Zero is treated as a number like any other here (it is not read as "rule off").
        Afterwards ``target > stop``, ``wide >= tight`` and every value is within bounds.
        NaN or a missing parameter column is a ConfigError.
        """
        values = self.to_array(frame, "repair")
        values = np.clip(values, self.lows, self.highs)
        ints = self.is_int
        values[:, ints] = np.round(values[:, ints])
        col = {name: j for j, name in enumerate(self.names)}
        if "stop_ticks" in col and "target_ticks" in col:
            s, t = col["stop_ticks"], col["target_ticks"]
            t_high = self.parameters[t].high
            bad = values[:, t] <= values[:, s]
            values[bad, t] = values[bad, s] + 1.0
            over = values[:, t] > t_high
            values[over, t] = t_high
            values[over, s] = t_high - 1.0
        if "trail_tight_ticks" in col and "trail_wide_ticks" in col:
            a, w = col["trail_tight_ticks"], col["trail_wide_ticks"]
            w_high = self.parameters[w].high
            values[:, a] = np.minimum(values[:, a], w_high)
            values[:, w] = np.maximum(values[:, w], values[:, a])
        out = frame.copy()
        for j, p in enumerate(self.parameters):
            column = values[:, j]
            out[p.name] = column.astype(np.int64) if p.kind == "int" else column
        return out

    def to_array(self, frame: pd.DataFrame, where: str = "parameter sets") -> np.ndarray:
        """The space's columns of ``frame`` as a float64 array (rows = sets, columns in the
        space's order). A missing column, a non-numeric column or a non-finite value is a
        ConfigError that names ``where`` (and the row)."""
        if not isinstance(frame, pd.DataFrame):
            raise ConfigError(f"{where} needs a pandas DataFrame, got {type(frame).__name__}")
        missing = [n for n in self.names if n not in frame.columns]
        if missing:
            raise ConfigError(f"{where}: frame lacks parameter column(s) {', '.join(missing)}")
        try:
            values = frame[list(self.names)].to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: parameter columns must be numeric") from None
        values = np.array(values, dtype=np.float64).reshape(len(frame), self.dimensions)
        if not np.isfinite(values).all():
            row, j = np.argwhere(~np.isfinite(values))[0]
            raise ConfigError(f"{where}: row {frame.index[row]!r}: {self.names[j]} is "
                              f"{values[row, j]} (parameter sets must be finite numbers)")
        return values


def hold_range(timeframe: str,
               anchors: Mapping[str, tuple[float, float]] | None = None) -> tuple[int, int]:
    """``max_hold_bars`` (low, high) for a timeframe.

    ``anchors`` defaults to :data:`HOLD_BARS` (1m 10-120, 5m 5-60, 15m 4-30, 1h 2-12,
    4h 1-6, 1D 2-20). A listed timeframe gets its own range; any other takes the range of the listed
    timeframe nearest in duration on a log scale (smallest ``max(a/b, b/a)``), a tie going to
    the shorter one: 1s-30s -> 1m, 2m -> 1m, 30m -> 15m, 2h -> 1h, 1W -> 1D.
    """
    table = HOLD_BARS if anchors is None else anchors
    target = parse_timeframe(timeframe)
    parsed = sorted((parse_timeframe(name), bounds) for name, bounds in table.items())
    if not parsed:
        raise ConfigError("no max_hold_bars timeframes given")

    def distance(item: tuple) -> tuple[Fraction, int]:
        tf = item[0]
        ratio = Fraction(max(tf.seconds, target.seconds), min(tf.seconds, target.seconds))
        return ratio, tf.seconds

    low, high = min(parsed, key=distance)[1]
    return low, high  # type: ignore[return-value]


def measure_yardstick(bars: pd.DataFrame, tick_size: float) -> float:
    """A timeframe's yardstick in ticks: the median true range of ``bars`` (pass the
    in-sample bars only). True range of bar t: ``max(high_t, close_{t-1}) - min(low_t,
    close_{t-1})`` (the first bar: high - low). At least one tick; a ConfigError without bars.
    """
    if len(bars) == 0:
        raise ConfigError("cannot measure a yardstick on no bars")
    high = bars["high"].to_numpy(dtype=np.float64)
    low = bars["low"].to_numpy(dtype=np.float64)
    close = bars["close"].to_numpy(dtype=np.float64)
    prev = np.concatenate(([close[0]], close[:-1]))
    true_range = np.maximum(high, prev) - np.minimum(low, prev)
    true_range[0] = high[0] - low[0]
    ticks = np.round(true_range / tick_size)  # prices lie on the tick grid
    return float(max(1.0, np.median(ticks)))


def resolve_parameter(name: str, low: float, high: float, yardstick_ticks: float,
                      tick_size: float) -> Parameter:
    """One distance parameter given in yardsticks, in the simulator's units.

    Ticks parameters: whole ticks, ``round(low * Y)`` to ``round(high * Y)`` (stop, target
    and trails at least 1 tick; the high bound at least one tick above the low one).
    ``trail_widen_points``: price units, ``low * Y * tick`` to ``high * Y * tick``.
    """
    if name not in YARDSTICK_RANGES:
        raise ConfigError(f"{name} is not a distance; only {', '.join(YARDSTICK_RANGES)} "
                          "can be given in yardsticks")
    if not (math.isfinite(low) and math.isfinite(high)) or low < 0 or high < low:
        raise ConfigError(f"{name}: yardstick range must satisfy 0 <= low <= high, got "
                          f"{low}..{high}")
    y = float(yardstick_ticks)
    if name == "trail_widen_points":
        return Parameter(name, low * y * tick_size, high * y * tick_size, "float")
    floor = 0 if name == "trail_activation_ticks" else 1
    lo = max(floor, round(low * y))
    hi = max(lo + 1, round(high * y))
    return Parameter(name, lo, hi, "int")


def default_space(timeframe: str, *, yardstick_ticks: float, tick_size: float,
                  names: Iterable[str] | None = None) -> ParameterSpace:
    """The house default space for a timeframe, in the simulator's units.

    Distances are :data:`YARDSTICK_RANGES` multiples of ``yardstick_ticks`` (the
    timeframe's median true range in ticks on in-sample bars, see :func:`measure_yardstick`)
    resolved by :func:`resolve_parameter`: stop 0.5-3, target 1-6, tight trail 0.25-1.5, wide
    trail 1-4, widen threshold 0.5-3 (price units) and trail activation 0-2 yardsticks; every
    sampled factor has an effect (the widen threshold decides when the wide trail takes
    over). ``max_hold_bars`` per :func:`hold_range`. ``names`` keeps only those parameters
    (in this order).
    """
    order = list(DEFAULT_ORDER) if names is None else list(names)
    refuse_cost_names(order, "default_space")
    unknown = [n for n in order if n not in DEFAULT_ORDER]
    if unknown:
        raise ConfigError(f"default_space has no parameter(s) {', '.join(unknown)}; it has "
                          f"{', '.join(DEFAULT_ORDER)}")
    if not (math.isfinite(yardstick_ticks) and yardstick_ticks > 0):
        raise ConfigError(f"yardstick_ticks must be a positive number, got {yardstick_ticks}")
    params = []
    for name in order:
        if name == "max_hold_bars":
            low, high = hold_range(timeframe)
            params.append(Parameter(name, low, high, "int"))
        else:
            params.append(resolve_parameter(name, *YARDSTICK_RANGES[name], yardstick_ticks,
                                            tick_size))
    return ParameterSpace(tuple(params))


def space_rows(space: ParameterSpace) -> tuple[tuple[str, float, float, str], ...]:
    """A space as plain rows ``(name, low, high, kind)`` (what jobs carry)."""
    return tuple((p.name, p.low, p.high, p.kind) for p in space.parameters)


def space_from_rows(rows: Iterable[Iterable]) -> ParameterSpace:
    """The space of :func:`space_rows`' rows."""
    return ParameterSpace(tuple(Parameter(str(n), lo, hi, str(k)) for n, lo, hi, k in rows))
