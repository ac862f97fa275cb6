"""Worker functions of exit optimisation: pure functions over numpy arrays.

This module imports only numpy, numba and the simulator (``stratforge.sim``), never the
pipeline that calls it (``stratforge.discovery.optimize``), scikit-learn, the CLI or any
service, so it can be shipped to worker processes cheaply (a test checks this in a fresh
interpreter).

Every member of a template is judged as its own trade: the position opened at the member's
bar is walked with the simulator's per-bar exit rules (:func:`stratforge.sim.kernels.
walk_position`, the same code ``simulate`` and ``sweep`` run), independently of the other
members, so overlapping members never block each other. Entries follow the simulator's
rules (``fill`` mode, slippage, signals on or across the session flat are dropped).

PnL is measured in **points after every cost**: ``pnl / (point_value * quantity)``, i.e. the
simulator's ``pnl_points`` (which includes slippage, the spread and notional fees) less the
commission expressed in points. The objective is the mean of that per trade, with a
shrinkage for too few trades (see :func:`score_points`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from stratforge.sim.fills import plan_entries
from stratforge.sim.kernels import entry_fill, trade_pnl, walk_position
from stratforge.sim.params import COST_NAMES, EXIT_PARAM_NAMES, MATRIX_COLUMNS, P_QUANTITY, Costs

SHARPE_NOISE = 1e-9
DEFAULT_MIN_TRADES = 5


def kernel_matrix(exit_params: np.ndarray, costs: Costs) -> np.ndarray:
    """The simulator's float64 parameter matrix (``MATRIX_COLUMNS`` order) for exit
    parameter rows in ``EXIT_PARAM_NAMES`` order (0 = rule off) and one ``Costs``."""
    exits = np.asarray(exit_params, dtype=np.float64).reshape(-1, len(EXIT_PARAM_NAMES))
    if not np.isfinite(exits).all() or (exits < 0).any():
        raise ValueError("exit parameters must be finite and >= 0")
    cost_row = np.asarray([float(getattr(costs, name)) for name in COST_NAMES],
                          dtype=np.float64)
    matrix = np.empty((len(exits), len(MATRIX_COLUMNS)), dtype=np.float64)
    matrix[:, :len(EXIT_PARAM_NAMES)] = exits
    matrix[:, len(EXIT_PARAM_NAMES):] = cost_row
    return np.ascontiguousarray(matrix)


@numba.njit(cache=True, nogil=True)
def _pair_points(open_, high, low, close, session_last, extra_slip, fill_bar, raw_price, side,
                 params, row_param, row_entry, tick, point_value):
    """PnL points after costs of each (parameter row, entry) pair, one position each."""
    out = np.empty(row_param.shape[0], np.float64)
    for i in range(row_param.shape[0]):
        p = params[row_param[i]]
        k = row_entry[i]
        s = side[k]
        entry = entry_fill(raw_price[k], s, p, extra_slip, fill_bar[k], tick)
        _x, px, _why, _best, _worst = walk_position(open_, high, low, close, session_last,
                                                    extra_slip, fill_bar[k], s, entry, p, tick)
        _points, _fees, pnl = trade_pnl(entry, px, s, p, tick, point_value)
        out[i] = pnl / (point_value * p[P_QUANTITY])
    return out


@dataclass(frozen=True)
class MarketArrays:
    """The arrays of one timeframe's bars the worker reads (float64 prices, bool flags).

    ``session_last`` is ``stratforge.sim.session_flags.session_last_flags`` of the bars;
    ``extra_slip`` the cost model's velocity slippage per bar
    (``stratforge.sim.fills.velocity_slip_ticks``), None for none.
    """

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    session_last: np.ndarray
    tick: float
    point_value: float
    extra_slip: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.extra_slip is None:  # no velocity slippage: zeros, made once
            object.__setattr__(self, "extra_slip", np.zeros(len(self.close)))


def member_points(market: MarketArrays, entries: np.ndarray, sides: np.ndarray,
                  params: np.ndarray, *, member_of_row: np.ndarray | None = None,
                  fill: str = "close", delay_bars: int = 1) -> np.ndarray:
    """PnL points after costs of every member under every parameter row.

    Args:
        market: the timeframe's bar arrays.
        entries: each member's signal bar (int, any order, within the bars).
        sides: +1 / -1 per member (or a scalar).
        params: kernel matrix rows (see :func:`kernel_matrix`).
        member_of_row: when given, row r is evaluated on member ``member_of_row[r]`` only
            and the result has shape (n_rows,); else every row on every member, shape
            (n_rows, n_members).
        fill, delay_bars: the simulator's entry fill mode.

    Returns:
        float64 points; NaN where the member's signal is dropped (fill on the last bar, or
        on or across the session flat: the simulator would not trade it).
    """
    bars_at = np.asarray(entries, dtype=np.int64).reshape(-1)
    directions = np.broadcast_to(np.asarray(sides, dtype=np.float64), bars_at.shape).copy()
    plan = plan_entries(bars_at, directions, market.open, market.close, market.session_last,
                        fill, delay_bars)
    # planning is per signal and keeps the order: the kept signals are plan's rows, in order
    tradable = np.isin(bars_at, plan.signal_bar)
    slot = np.full(len(bars_at), -1, dtype=np.int64)
    slot[tradable] = np.arange(int(tradable.sum()))
    rows = np.ascontiguousarray(params, dtype=np.float64)
    if member_of_row is None:
        row_param = np.repeat(np.arange(len(rows), dtype=np.int64), len(bars_at))
        row_member = np.tile(np.arange(len(bars_at), dtype=np.int64), len(rows))
    else:
        row_member = np.asarray(member_of_row, dtype=np.int64).reshape(-1)
        if len(row_member) != len(rows):
            raise ValueError("member_of_row needs one member per parameter row")
        row_param = np.arange(len(rows), dtype=np.int64)
    out = np.full(len(row_param), np.nan)
    live = slot[row_member] >= 0
    if live.any():
        out[live] = _pair_points(
            market.open, market.high, market.low, market.close, market.session_last,
            market.extra_slip,
            plan.fill_bar, plan.raw_price, plan.side, rows, row_param[live],
            slot[row_member[live]], float(market.tick), float(market.point_value))
    return out if member_of_row is not None else out.reshape(len(rows), len(bars_at))


@dataclass(frozen=True)
class Scores:
    """Per-parameter-row statistics of member trades (points after costs)."""

    trades: np.ndarray        # int64, members that traded
    total_points: np.ndarray  # float64
    mean_points: np.ndarray   # float64, NaN without trades
    win_rate: np.ndarray      # float64, share of trades with points > 0
    sharpe_per_trade: np.ndarray  # mean / std (ddof 1); NaN with < 2 trades or no dispersion
    score: np.ndarray         # the objective, higher is better


def score_points(points: np.ndarray, min_trades: int = DEFAULT_MIN_TRADES) -> Scores:
    """Statistics and objective of a (rows, members) points matrix (NaN = no trade).

    The objective is ``total_points / max(trades, min_trades)``: the mean points per trade,
    shrunk towards 0 when fewer than ``min_trades`` members traded (missing trades count as
    flat ones), and NaN when nothing traded.
    """
    pts = np.asarray(points, dtype=np.float64)
    pts = pts.reshape(1, -1) if pts.ndim == 1 else pts
    traded = np.isfinite(pts)
    trades = traded.sum(axis=1).astype(np.int64)
    filled = np.where(traded, pts, 0.0)
    total = filled.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(trades > 0, total / np.maximum(trades, 1), np.nan)
        wins = np.where(traded & (filled > 0), 1, 0).sum(axis=1)
        win_rate = np.where(trades > 0, wins / np.maximum(trades, 1), np.nan)
        dev = np.where(traded, filled - mean[:, None], 0.0)
        std = np.sqrt((dev ** 2).sum(axis=1) / np.maximum(trades - 1, 1))
        size = np.abs(filled).sum(axis=1) / np.maximum(trades, 1)
        sharpe = np.where((trades >= 2) & (std > SHARPE_NOISE * size), mean / std, np.nan)
        score = np.where(trades > 0, total / np.maximum(trades, max(1, int(min_trades))),
                         np.nan)
    return Scores(trades, total, mean, win_rate, sharpe, score)
