"""Parameter spaces: the range and type of every exit / cost parameter a sweep samples.

A :class:`ParameterSpace` is an ordered tuple of :class:`Parameter` (name, low, high, kind).
:func:`default_space` builds the house defaults for a timeframe; :meth:`ParameterSpace.from_yaml`
reads a user file. The space maps parameter sets to and from the unit cube (what the samplers
draw in) and repairs invalid combinations with one rule (:meth:`ParameterSpace.repair`).
The rules are written down in docs/search.md ("Parameter space and sampling").
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

from stratforge.errors import ConfigError
from stratforge.sim.params import MATRIX_COLUMNS
from stratforge.timeframes import parse_timeframe

KINDS: tuple[str, ...] = ("int", "float")

# The ranges (inclusive). max_hold_bars depends on the timeframe, see HOLD_BARS.
DEFAULT_RANGES: dict[str, tuple[float, float, str]] = {
    "stop_ticks": (10, 25, "int"),
    "target_ticks": (30, 60, "int"),
    "trail_tight_ticks": (5, 15, "int"),
    "trail_wide_ticks": (20, 40, "int"),
    "trail_activation_ticks": (0, 20, "int"),
    "cost_points": (0.25, 1.0, "float"),
}
# max_hold_bars (inclusive) per listed timeframe; other timeframes take the nearest listed one
# (see hold_range).
HOLD_BARS: dict[str, tuple[int, int]] = {
    "1m": (10, 120), "5m": (5, 60), "15m": (4, 30), "1h": (2, 12), "4h": (1, 6),
}


@dataclass(frozen=True)
class Parameter:
    """One dimension of a parameter space.

    Attributes:
        name: a parameter table column (an exit parameter or a cost, see
            ``stratforge.sim.params.MATRIX_COLUMNS``).
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
        unknown = [n for n in names if n not in MATRIX_COLUMNS]
        if unknown:
            raise ConfigError(f"unknown parameter(s) {', '.join(unknown)}; known: "
                              f"{', '.join(MATRIX_COLUMNS)}")
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

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_yaml(cls, path: str | Path, timeframe: str) -> ParameterSpace:
        """Read a space from a YAML file, for one timeframe.

        The file is a mapping from parameter name to ``{low, high, kind}`` (``kind`` optional:
        ``int`` when both bounds are written as integers, else ``float``). ``max_hold_bars``
        may instead give ``timeframes: {1m: {low: 10, high: 120}, ...}``; a timeframe not
        listed takes the nearest listed one (the rule of :func:`hold_range`). Parameters keep
        the file's order. Any problem raises a ConfigError naming the file and the key.
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
            if key not in MATRIX_COLUMNS:
                raise ConfigError(f"{where}: unknown parameter; known: "
                                  f"{', '.join(MATRIX_COLUMNS)}")
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
            extra = sorted(set(spec) - {"low", "high", "kind"})
            if extra:
                raise ConfigError(f"{where}: unexpected field(s) {', '.join(map(str, extra))}; "
                                  "write low, high and kind")
            missing = [f for f in ("low", "high") if f not in spec]
            if missing:
                raise ConfigError(f"{where}: missing {' and '.join(missing)}")
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
    4h 1-6). A listed timeframe gets its own range; any other takes the range of the listed
    timeframe nearest in duration on a log scale (smallest ``max(a/b, b/a)``), a tie going to
    the shorter one: 1s-30s -> 1m, 2m -> 1m, 30m -> 15m, 2h -> 1h, 1D and 1W -> 4h.
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


def default_space(timeframe: str, *, names: Iterable[str] | None = None) -> ParameterSpace:
    """The house default space for a timeframe (ranges inclusive).

    stop_ticks 10-25, target_ticks 30-60, trail_tight_ticks 5-15, trail_wide_ticks 20-40,
    trail_activation_ticks 0-20 (0 = trail from the start), max_hold_bars per
    :func:`hold_range` (1m 10-120, 5m 5-60, 15m 4-30, 1h 2-12, 4h 1-6, other timeframes the
    nearest listed), all int; cost_points 0.25-1.0 (float). ``names`` keeps only those
    parameters (in this order). ``trail_widen_points`` is not in the default space.
    """
    low, high = hold_range(timeframe)
    ranges = dict(DEFAULT_RANGES)
    ranges = {**{k: v for k, v in ranges.items() if k != "cost_points"},
              "max_hold_bars": (low, high, "int"), "cost_points": ranges["cost_points"]}
    order = list(ranges) if names is None else list(names)
    unknown = [n for n in order if n not in ranges]
    if unknown:
        raise ConfigError(f"default_space has no parameter(s) {', '.join(unknown)}; it has "
                          f"{', '.join(ranges)}")
    return ParameterSpace(tuple(Parameter(n, *ranges[n]) for n in order))
