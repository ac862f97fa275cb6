"""Exit parameters, trading costs and the validation of parameter tables.

Every exit parameter is a number where zero or NaN switches its rule off. Negative values,
infinities, a fractional ``max_hold_bars`` and a wide trail tighter than the tight trail are
errors (``ConfigError``) that name the parameter and, for a parameter table, the row.
Validated tables become one float64 matrix (:class:`ParamMatrix`) that the numba kernels read,
one row per parameter set, columns in :data:`MATRIX_COLUMNS` order, "off" stored as 0.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np
import pandas as pd

from stratforge.costs import Costs, refuse_cost_names
from stratforge.errors import ConfigError

__all__ = ["COST_NAMES", "EXIT_PARAM_NAMES", "MATRIX_COLUMNS", "Costs", "ExitParams",
           "ParamMatrix", "param_matrix", "single_param_matrix"]

EXIT_PARAM_NAMES: tuple[str, ...] = (
    "stop_ticks", "target_ticks", "trail_tight_ticks", "trail_wide_ticks",
    "trail_widen_points", "trail_activation_ticks", "max_hold_bars",
)
COST_NAMES: tuple[str, ...] = ("spread_ticks", "slippage_ticks", "commission", "fee_bps",
                               "quantity")
"""The cost columns of the kernels' matrix, filled from one ``Costs`` (never per row)."""
MATRIX_COLUMNS: tuple[str, ...] = EXIT_PARAM_NAMES + COST_NAMES

# Column positions in the parameter matrix (read by the kernels).
P_STOP, P_TARGET, P_TIGHT, P_WIDE, P_WIDEN, P_ACTIVATION, P_MAX_HOLD = range(7)
P_SPREAD, P_SLIP, P_COMMISSION, P_FEE, P_QUANTITY = range(7, 12)


@dataclass(frozen=True)
class ExitParams:
    """One set of exit rules; 0 or NaN switches a rule off (see docs/simulator.md).

    Attributes:
        stop_ticks: fixed stop, ticks from the entry fill price.
        target_ticks: profit target (limit), ticks from the entry fill price.
        trail_tight_ticks: trailing distance in ticks while MFE < ``trail_widen_points``.
        trail_wide_ticks: trailing distance in ticks once MFE >= ``trail_widen_points``
            (or from the start when it is the only trail set); must be >= the tight trail.
        trail_widen_points: MFE, in points from the entry fill, at which the trail widens.
        trail_activation_ticks: MFE, in ticks, needed before any trailing starts.
        max_hold_bars: exit at the close once this many bars have been held (whole number).
    """

    stop_ticks: float = 0.0
    target_ticks: float = 0.0
    trail_tight_ticks: float = 0.0
    trail_wide_ticks: float = 0.0
    trail_widen_points: float = 0.0
    trail_activation_ticks: float = 0.0
    max_hold_bars: float = 0.0

    def __post_init__(self) -> None:
        _check_row({f.name: getattr(self, f.name) for f in fields(self)}, "ExitParams")

    def to_dict(self) -> dict[str, float]:
        """The parameters as a plain dict (one row of a parameter table)."""
        return asdict(self)


def _check_value(name: str, value: object, where: str) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {name} must be a number, got {value!r}") from None
    if math.isnan(number):
        if name == "quantity":
            raise ConfigError(f"{where}: quantity must be a number > 0, got NaN")
        return 0.0
    if math.isinf(number):
        raise ConfigError(f"{where}: {name} must be finite, got {number} (use 0 or NaN to "
                          "switch a rule off)")
    if number < 0:
        raise ConfigError(f"{where}: {name} must be >= 0, got {number} (0 or NaN switches the "
                          "rule off)")
    if name == "max_hold_bars" and number != int(number):
        raise ConfigError(f"{where}: max_hold_bars must be a whole number of bars, got {number}")
    if name == "quantity" and number == 0:
        raise ConfigError(f"{where}: quantity must be > 0, got 0")
    return number


def _check_row(row: dict[str, object], where: str) -> list[float]:
    values = {name: _check_value(name, value, where) for name, value in row.items()}
    tight = values.get("trail_tight_ticks", 0.0)
    wide = values.get("trail_wide_ticks", 0.0)
    if tight > 0 and wide > 0 and wide < tight:
        raise ConfigError(f"{where}: trail_wide_ticks ({wide}) is below trail_tight_ticks "
                          f"({tight}); the wide trail must be at least the tight one")
    return list(values.values())


@dataclass(frozen=True)
class ParamMatrix:
    """Validated parameter sets as one C-contiguous float64 matrix (rows = sets)."""

    values: np.ndarray  # shape (n_sets, len(MATRIX_COLUMNS))

    def __len__(self) -> int:
        return int(self.values.shape[0])


def param_matrix(table: pd.DataFrame, costs: Costs) -> ParamMatrix:
    """Validate a parameter table and fill in costs; one matrix row per table row.

    ``table`` holds any of the exit parameter columns (a missing column switches that rule off
    for every row); every row pays the same ``costs``. A cost column in the table is refused
    (a cost is a fact about the market, never a parameter), and so is any other unknown
    column, so a misspelt parameter never silently turns a rule off.
    """
    if not isinstance(table, pd.DataFrame):
        raise ConfigError(f"param_table must be a pandas DataFrame, got {type(table).__name__}")
    refuse_cost_names(table.columns, "param_table")
    unknown = [str(c) for c in table.columns if c not in EXIT_PARAM_NAMES]
    if unknown:
        raise ConfigError(f"param_table has unknown column(s) {', '.join(unknown)}; known: "
                          f"{', '.join(EXIT_PARAM_NAMES)}")
    if table.columns.duplicated().any():
        raise ConfigError("param_table has duplicated column names")
    n = len(table)
    defaults = {**{name: 0.0 for name in EXIT_PARAM_NAMES}, **_cost_columns(costs)}
    matrix = np.empty((n, len(MATRIX_COLUMNS)), dtype=np.float64)
    for col, name in enumerate(MATRIX_COLUMNS):
        if name not in table.columns:
            matrix[:, col] = defaults[name]
            continue
        raw = table[name]
        values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        unreadable = np.isnan(values) & raw.notna().to_numpy()
        for pos in np.flatnonzero(unreadable)[:1]:
            raise ConfigError(f"param_table row {table.index[pos]!r} (position {pos}): {name} "
                              f"must be a number, got {raw.iloc[pos]!r}")
        bad = _bad_positions(name, values)
        for pos in bad[:1]:
            _check_value(name, values[pos], f"param_table row {table.index[pos]!r} "
                                            f"(position {pos})")
        matrix[:, col] = np.where(np.isnan(values), 0.0, values)
    tight, wide = matrix[:, P_TIGHT], matrix[:, P_WIDE]
    crossed = np.flatnonzero((tight > 0) & (wide > 0) & (wide < tight))
    for pos in crossed[:1]:
        raise ConfigError(f"param_table row {table.index[pos]!r} (position {pos}): "
                          f"trail_wide_ticks ({wide[pos]}) is below trail_tight_ticks "
                          f"({tight[pos]}); the wide trail must be at least the tight one")
    return ParamMatrix(np.ascontiguousarray(matrix))


def _bad_positions(name: str, values: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        bad = np.isinf(values) | (values < 0)
        if name == "max_hold_bars":
            bad |= np.isfinite(values) & (values != np.floor(values))
        if name == "quantity":
            bad |= np.isnan(values) | (values == 0)
    return np.flatnonzero(bad)


def _cost_columns(costs: Costs) -> dict[str, float]:
    if not isinstance(costs, Costs):
        raise ConfigError(f"costs must be a Costs, got {type(costs).__name__}")
    return {name: float(getattr(costs, name)) for name in COST_NAMES}


def single_param_matrix(params: ExitParams, costs: Costs) -> ParamMatrix:
    """The one-row matrix for ``simulate``."""
    row = {**params.to_dict(), **_cost_columns(costs)}
    values = [_check_value(name, row[name], "params") for name in MATRIX_COLUMNS]
    return ParamMatrix(np.asarray([values], dtype=np.float64))
