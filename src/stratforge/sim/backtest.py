"""The pandas-facing simulator: ``simulate`` (one trade per row) and ``sweep`` (one summary row
per parameter set). Both validate their input, precompute session flags and entry fills, and
hand plain numpy arrays to the numba kernels in :mod:`stratforge.sim.kernels`.

The rules are written down in docs/simulator.md (the simulator contract).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from stratforge.data.bars import BAR_COLUMNS, PRICE_COLUMNS, TS_DTYPE, ts_ns, validate_bars
from stratforge.errors import ConfigError
from stratforge.instruments import Instrument, get_instrument
from stratforge.sim import kernels
from stratforge.sim.fills import EntryPlan, plan_entries, velocity_slip_ticks
from stratforge.sim.params import (
    P_COMMISSION,
    P_QUANTITY,
    Costs,
    ExitParams,
    param_matrix,
    single_param_matrix,
)
from stratforge.sim.session_flags import session_last_flags

TRADE_COLUMNS: tuple[str, ...] = (
    "entry_bar", "exit_bar", "entry_time", "exit_time", "side", "entry_price", "exit_price",
    "reason", "bars_held", "mfe_points", "mae_points", "pnl_points", "fees", "pnl", "quantity",
)
SUMMARY_COLUMNS: tuple[str, ...] = (
    "trades", "wins", "losses", "total_pnl", "pnl_per_trade", "win_rate", "profit_factor",
    "sharpe_per_trade", "max_drawdown", "avg_bars_held",
)
PRICE_PATHS: tuple[str, ...] = ("ohlc", "close")
_COUNT_COLUMNS = ("trades", "wins", "losses")
# Sweeps with fewer bar x parameter-set cells than this run on the calling thread: starting
# the thread pool costs more than it saves (and busy-waiting pools slow a loaded machine).
PARALLEL_MIN_CELLS = 2_000_000


@dataclass(frozen=True)
class _Market:
    """Arrays the kernels read: checked prices, session flags, fills, instrument scalars."""

    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    session_last: np.ndarray
    extra_slip: np.ndarray
    plan: EntryPlan
    tick: float
    point_value: float

    def kernel_args(self) -> tuple[Any, ...]:
        plan = self.plan
        return (self.open, self.high, self.low, self.close, self.session_last, self.extra_slip,
                plan.signal_bar, plan.fill_bar, plan.raw_price, plan.side)


def _instrument(instrument: Instrument | str) -> Instrument:
    if isinstance(instrument, Instrument):
        return instrument
    if isinstance(instrument, str):
        return get_instrument(instrument)
    raise ConfigError(f"instrument must be an Instrument or a symbol, got "
                      f"{type(instrument).__name__}")


def _signals(entries: Any, sides: Any, n_bars: int) -> tuple[np.ndarray, np.ndarray]:
    bars_at = np.asarray(entries)
    if bars_at.ndim != 1:
        raise ConfigError(f"entries must be a 1-D array of bar positions, got shape "
                          f"{bars_at.shape}")
    if bars_at.dtype == np.bool_:
        raise ConfigError("entries must hold bar positions (int64), not a boolean mask; use "
                          "np.flatnonzero(mask)")
    if len(bars_at) and not np.issubdtype(bars_at.dtype, np.integer):
        raise ConfigError(f"entries must be integer bar positions, got dtype {bars_at.dtype}")
    bars_at = bars_at.astype(np.int64, copy=False)
    if len(bars_at):
        outside = (bars_at < 0) | (bars_at >= n_bars)
        if outside.any():
            bad = int(np.argmax(outside))
            raise ConfigError(f"entries[{bad}] = {bars_at[bad]} is outside the bars "
                              f"(0 to {n_bars - 1})")
        steps = np.diff(bars_at)
        if (steps <= 0).any():
            bad = int(np.argmax(steps <= 0)) + 1
            raise ConfigError(f"entries must be strictly increasing (one signal per bar): "
                              f"entries[{bad}] = {bars_at[bad]} follows {bars_at[bad - 1]}")
    direction = np.asarray(sides)
    if direction.ndim == 0:
        direction = np.full(len(bars_at), direction.item())
    if direction.shape != bars_at.shape:
        raise ConfigError(f"sides must have one value per entry: {len(direction)} sides for "
                          f"{len(bars_at)} entries")
    valid = (direction == 1) | (direction == -1)
    if not valid.all():
        bad = int(np.argmax(~valid))
        raise ConfigError(f"sides[{bad}] = {direction[bad]!r}; sides must be +1 (long) or -1 "
                          "(short)")
    return bars_at, direction.astype(np.float64)


def _bar_arrays(bars: pd.DataFrame) -> tuple[np.ndarray, ...]:
    """(ts_ns, open, high, low, close) of canonical bars.

    Frames already in canonical form are checked with a few numpy passes; anything else goes
    through ``validate_bars``, which converts it or raises a DataError naming row and rule.
    """
    if not isinstance(bars, pd.DataFrame):
        raise ConfigError(f"bars must be a pandas DataFrame, got {type(bars).__name__}")
    if all(c in bars.columns for c in BAR_COLUMNS) and bars["ts"].dtype == TS_DTYPE and all(
            bars[c].dtype == np.float64 for c in BAR_COLUMNS[1:]):
        stamps = ts_ns(bars)
        o, h, lo, c = (np.ascontiguousarray(bars[k].to_numpy()) for k in PRICE_COLUMNS)
        volume = bars["volume"].to_numpy()
        with np.errstate(invalid="ignore"):
            fine = (bool((np.diff(stamps) > 0).all()) and bool(np.isfinite(o + h + lo + c).all())
                    and bool((h >= np.maximum(o, c)).all())
                    and bool((lo <= np.minimum(o, c)).all()) and bool((volume >= 0).all()))
        if fine:
            return stamps, o, h, lo, c
    canonical = validate_bars(bars, "bars")
    prices = (np.ascontiguousarray(canonical[k].to_numpy(dtype=np.float64))
              for k in PRICE_COLUMNS)
    return (ts_ns(canonical), *prices)


def _market(bars: pd.DataFrame, entries: Any, sides: Any, instrument: Instrument | str,
            costs: Costs, fill: str, delay_bars: int, price_path: str) -> _Market:
    spec = _instrument(instrument)
    if price_path not in PRICE_PATHS:
        raise ConfigError(f"price_path must be one of {', '.join(PRICE_PATHS)}, got "
                          f"{price_path!r}")
    stamps, open_, high, low, close = _bar_arrays(bars)
    check_open = open_
    if price_path == "close":
        check_open = high = low = close
    signal_bars, directions = _signals(entries, sides, len(close))
    flags = session_last_flags(stamps, spec.session)
    plan = plan_entries(signal_bars, directions, open_, close, flags, fill, delay_bars)
    extra = velocity_slip_ticks(close, float(spec.tick_size), costs.velocity_slippage,
                                costs.velocity_cap_ticks)
    return _Market(stamps, check_open, high, low, close, flags, extra, plan,
                   float(spec.tick_size), float(spec.point_value))


def _costs(costs: Costs | None, spec: Instrument) -> Costs:
    if costs is None:
        return spec.costs
    if not isinstance(costs, Costs):
        raise ConfigError(f"costs must be a Costs, got {type(costs).__name__}")
    return costs


def _exit_params(params: ExitParams | Mapping[str, float] | None) -> ExitParams:
    if params is None:
        return ExitParams()
    if isinstance(params, ExitParams):
        return params
    if isinstance(params, Mapping | pd.Series):
        known = set(ExitParams.__dataclass_fields__)
        unknown = [str(k) for k in params if k not in known]
        if unknown:
            raise ConfigError(f"unknown exit parameter(s) {', '.join(unknown)}; known: "
                              f"{', '.join(ExitParams.__dataclass_fields__)}")
        return ExitParams(**{str(k): v for k, v in params.items()})
    raise ConfigError(f"params must be ExitParams or a mapping, got {type(params).__name__}")


def _times(ts: np.ndarray, at: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(ts[at].view("datetime64[ns]"), tz="UTC")


def simulate(bars: pd.DataFrame, entries: Any, sides: Any,
             params: ExitParams | Mapping[str, float] | None = None, *,
             instrument: Instrument | str, costs: Costs | None = None, fill: str = "close",
             delay_bars: int = 1, price_path: str = "ohlc") -> pd.DataFrame:
    """Simulate one set of exit rules and return one row per trade.

    Args:
        bars: canonical bars (``ts`` UTC, open, high, low, close, volume); validated.
        entries: signal bar positions, int, strictly increasing, within the bars.
        sides: +1 (long) / -1 (short) per entry, or one scalar for all entries.
        params: exit rules (``ExitParams`` or a mapping of its fields); None = no exit rule
            but the session flat and the end of the data.
        instrument: an ``Instrument`` or a symbol; gives tick size, point value and session.
        costs: the cost model (spread, slippage, velocity slippage, fee, commission,
            quantity); None charges the instrument's own cost model. ``Costs()`` is free.
        fill: entry fill mode, ``close``, ``next_open`` or ``delayed_mid``.
        delay_bars: bars from signal to fill for ``delayed_mid`` (>= 1).
        price_path: ``ohlc`` (default) or ``close`` (every exit check on closes only).

    Returns:
        A DataFrame with columns ``TRADE_COLUMNS`` in order, one row per trade in time order.
        Semantics: docs/simulator.md.
    """
    rules = _exit_params(params)
    spec = _instrument(instrument)
    cost = _costs(costs, spec)
    matrix = single_param_matrix(rules, cost)
    market = _market(bars, entries, sides, spec, cost, fill, delay_bars, price_path)
    row = matrix.values[0]
    (taken, exit_bar, entry_price, exit_price, reason, mfe, mae, pnl_points,
     pnl) = kernels.simulate_kernel(*market.kernel_args(), row, market.tick,
                                    market.point_value)
    entry_bar = market.plan.fill_bar[taken]
    count = len(taken)
    return pd.DataFrame({
        "entry_bar": entry_bar.astype(np.int64),
        "exit_bar": exit_bar.astype(np.int64),
        "entry_time": _times(market.ts, entry_bar),
        "exit_time": _times(market.ts, exit_bar),
        "side": market.plan.side[taken].astype(np.int8),
        "entry_price": entry_price,
        "exit_price": exit_price,
        "reason": pd.array(np.asarray(kernels.REASONS, dtype=object)[reason.astype(np.int64)]
                           if count else np.empty(0, dtype=object), dtype="str"),
        "bars_held": (exit_bar - entry_bar).astype(np.int64),
        "mfe_points": mfe,
        "mae_points": mae,
        "pnl_points": pnl_points,
        "fees": np.full(count, row[P_COMMISSION] * 2.0 * row[P_QUANTITY]),
        "pnl": pnl,
        "quantity": np.full(count, row[P_QUANTITY]),
    }, columns=list(TRADE_COLUMNS))


def sweep(bars: pd.DataFrame, entries: Any, sides: Any, param_table: pd.DataFrame, *,
          instrument: Instrument | str, costs: Costs | None = None, fill: str = "close",
          delay_bars: int = 1, price_path: str = "ohlc") -> pd.DataFrame:
    """Simulate every parameter set of ``param_table`` and return one summary row per set.

    The work runs in one numba kernel, parallel over parameter sets (``prange``, using
    ``numba.get_num_threads()`` threads; sweeps under ``PARALLEL_MIN_CELLS`` bar x set cells
    run on the calling thread); trades are never materialised, so memory does not
    grow with the number of trades, and each set's cost is proportional to the bars spent in
    a position. Every row equals what ``simulate`` gives for the same parameters.

    Args:
        bars, entries, sides, instrument, fill, delay_bars, price_path: as for ``simulate``.
        param_table: one row per parameter set; columns are any of the ``ExitParams`` fields
            (a missing column switches that rule off; 0 or NaN switches it off for one row).
            Cost columns are refused: every row pays the same ``costs``.
        costs: the cost model of every row; None charges the instrument's own.

    Returns:
        ``param_table``'s columns followed by ``SUMMARY_COLUMNS``, same index and row order.
        See docs/simulator.md for the definition of each statistic.
    """
    spec = _instrument(instrument)
    cost = _costs(costs, spec)
    matrix = param_matrix(param_table, cost)
    market = _market(bars, entries, sides, spec, cost, fill, delay_bars, price_path)
    cells = len(market.close) * len(matrix)
    kernel = kernels.sweep_kernel if cells >= PARALLEL_MIN_CELLS else kernels.sweep_kernel_serial
    summary = kernel(*market.kernel_args(), matrix.values, market.tick, market.point_value)
    result = param_table.copy()
    for col, name in enumerate(SUMMARY_COLUMNS):
        values = summary[:, col]
        result[name] = values.astype(np.int64) if name in _COUNT_COLUMNS else values
    return result
