"""The stats table of a backtest: performance metrics computed from the simulator's trades.

``compute_metrics(trades, instrument=..., capital=..., bars=...)`` returns a frozen
:class:`Metrics` record; ``daily_pnl`` gives the per-trade-date PnL series the Sharpe and
Sortino ratios are computed from. Every metric is defined in docs/metrics.md. Units: money is
in the instrument's currency, ``*_pct`` fields are percentages (5.0 means 5 %), every other
share or return (win rate, exposure, hit rate, returns, alpha) is a fraction (0.05 means 5 %).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from stratforge.data.bars import ts_ns
from stratforge.errors import ConfigError
from stratforge.instruments import Instrument

REQUIRED_TRADE_COLUMNS: tuple[str, ...] = (
    "entry_time", "exit_time", "side", "entry_price", "exit_price", "bars_held", "pnl_points",
    "fees", "pnl")
"""Columns of the trades frame that ``compute_metrics`` reads."""

SQN_BANDS: tuple[tuple[float, str], ...] = (
    (1.6, "poor"), (2.0, "below average"), (2.5, "average"), (3.0, "good"),
    (5.1, "excellent"), (7.0, "superb"), (math.inf, "holy grail"))
"""(exclusive upper bound, name): Van Tharp's bands read with one decimal, gaps go down."""


def sqn_band(sqn: float) -> str:
    """Van Tharp's rating of a System Quality Number; ``"n/a"`` for NaN.

    Bands: < 1.6 poor, [1.6, 2.0) below average, [2.0, 2.5) average, [2.5, 3.0) good,
    [3.0, 5.1) excellent, [5.1, 7.0) superb, >= 7.0 holy grail (the published "1.6-1.9",
    "3.0-5.0", ... ranges, with each gap such as 1.9-2.0 given to the lower band).
    """
    if math.isnan(sqn):
        return "n/a"
    return next(name for upper, name in SQN_BANDS if sqn < upper)


@dataclass(frozen=True)
class Metrics:
    """Performance of one backtest. See docs/metrics.md for the exact definitions."""

    start: pd.Timestamp | None        # first bar (or first entry without bars)
    end: pd.Timestamp | None          # last bar (or last exit without bars)
    days: int                         # trade dates in the daily PnL series
    capital: float
    currency: str
    trades: int
    wins: int                         # pnl > 0
    losses: int                       # pnl < 0
    scratches: int                    # pnl == 0: in trades, in neither wins nor losses
    win_rate: float                   # wins / trades
    total_pnl: float
    total_pnl_points: float
    gross_profit: float
    gross_loss: float                 # positive number
    strategy_return: float            # total_pnl / capital
    annual_return: float              # strategy_return * trading_days_per_year / days
    buy_hold_return: float            # (last close - first close) / first close
    alpha: float                      # strategy_return - buy_hold_return
    avg_win: float
    avg_loss: float                   # negative number
    largest_win: float
    largest_loss: float               # negative number
    expectancy: float                 # mean pnl per trade
    expectancy_points: float          # mean pnl_points per trade
    profit_factor: float
    sqn: float
    sqn_band: str
    sharpe: float
    sortino: float
    max_drawdown: float               # positive number, currency
    max_drawdown_pct: float           # percent of the running peak of equity
    calmar: float
    total_fees: float
    fees_pct_of_capital: float
    exposure: float                   # sum(bars_held) / bars
    avg_win_bars: float
    avg_loss_bars: float
    avg_win_duration: pd.Timedelta
    avg_loss_duration: pd.Timedelta
    hit_rate: float                   # exit beyond entry in the trade's direction

    def to_dict(self, *, json_safe: bool = False) -> dict[str, object]:
        """Field name -> value. ``json_safe`` turns NaN/NaT into None, infinities into the
        strings ``"inf"``/``"-inf"``, timestamps into ISO strings and durations into seconds."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        return {k: _json_value(v) for k, v in out.items()} if json_safe else out

    def as_rows(self) -> list[tuple[str, str]]:
        """(label, formatted value) pairs in display order, like backtesting.py's stats."""
        cur = self.currency
        return [(label.replace("{cur}", cur), _format(getattr(self, name), kind))
                for name, label, kind in _ROWS]


_ROWS: tuple[tuple[str, str, str], ...] = (
    ("start", "Start", "text"), ("end", "End", "text"), ("days", "Trading days", "int"),
    ("capital", "Capital [{cur}]", "money"), ("trades", "Trades", "int"),
    ("wins", "Wins", "int"), ("losses", "Losses", "int"), ("scratches", "Scratches", "int"),
    ("win_rate", "Win rate [%]", "frac"), ("total_pnl", "Net PnL [{cur}]", "money"),
    ("total_pnl_points", "Net PnL [points]", "num"),
    ("strategy_return", "Return [%]", "frac"), ("annual_return", "Return (ann.) [%]", "frac"),
    ("buy_hold_return", "Buy & hold return [%]", "frac"), ("alpha", "Alpha [%]", "frac"),
    ("avg_win", "Avg. win [{cur}]", "money"), ("avg_loss", "Avg. loss [{cur}]", "money"),
    ("largest_win", "Largest win [{cur}]", "money"),
    ("largest_loss", "Largest loss [{cur}]", "money"),
    ("expectancy", "Expectancy [{cur}]", "money"),
    ("expectancy_points", "Expectancy [points]", "num"),
    ("profit_factor", "Profit factor", "num"), ("sqn", "SQN", "num"),
    ("sqn_band", "SQN rating", "text"), ("sharpe", "Sharpe ratio", "num"),
    ("sortino", "Sortino ratio", "num"), ("max_drawdown", "Max. drawdown [{cur}]", "money"),
    ("max_drawdown_pct", "Max. drawdown [%]", "num"), ("calmar", "Calmar ratio", "num"),
    ("total_fees", "Fees [{cur}]", "money"), ("fees_pct_of_capital", "Fees [% of capital]", "num"),
    ("exposure", "Exposure [%]", "frac"), ("avg_win_bars", "Avg. win duration [bars]", "num"),
    ("avg_loss_bars", "Avg. loss duration [bars]", "num"),
    ("avg_win_duration", "Avg. win duration", "text"),
    ("avg_loss_duration", "Avg. loss duration", "text"), ("hit_rate", "Hit rate [%]", "frac"),
)


def _format(value: object, kind: str) -> str:
    if value is None or value is pd.NaT:
        return "n/a"
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if kind == "int":
        return f"{int(value):,}"  # type: ignore[call-overload]
    if kind == "money":
        return f"{value:,.2f}"
    if kind == "frac":
        return f"{100.0 * value:.2f}"  # type: ignore[operator]
    if kind == "num":
        return f"{value:.3f}"
    if isinstance(value, pd.Timedelta):
        return str(value.round("s"))
    return str(value)


def _json_value(value: object) -> object:
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, pd.Timedelta):
        return value.total_seconds()
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
    return value


def _utc_ns(column: pd.Series, name: str) -> np.ndarray:
    if not isinstance(column.dtype, pd.DatetimeTZDtype):
        raise ValueError(f"trades column {name} must hold time-zone aware timestamps "
                         f"(datetime64[ns, UTC]), got {column.dtype}")
    return np.asarray(column.dt.tz_convert("UTC").dt.as_unit("ns").array.asi8, dtype=np.int64)


def _prepared_trades(trades: pd.DataFrame) -> pd.DataFrame:
    """The trades sorted by exit time (stable), or an empty frame; checks the columns."""
    if len(trades) == 0:
        return pd.DataFrame({c: pd.Series(dtype=np.float64) for c in REQUIRED_TRADE_COLUMNS})
    missing = [c for c in REQUIRED_TRADE_COLUMNS if c not in trades.columns]
    if missing:
        raise ValueError(f"trades frame lacks column(s) {', '.join(missing)}; metrics need "
                         f"{', '.join(REQUIRED_TRADE_COLUMNS)} (the simulator's trades contract)")
    for name in ("entry_time", "exit_time"):
        _utc_ns(trades[name], name)
    values = trades[["pnl", "pnl_points", "fees"]].to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        raise ValueError("trades hold NaN or infinite pnl, pnl_points or fees")
    order = np.argsort(_utc_ns(trades["exit_time"], "exit_time"), kind="stable")
    return trades.iloc[order].reset_index(drop=True)


def daily_pnl(trades: pd.DataFrame, *, instrument: Instrument,
              bars: pd.DataFrame | None = None) -> pd.Series:
    """Net PnL (currency, after fees) per trade date, zero-PnL trading days included.

    Each trade's ``pnl`` is booked to the trade date of its exit under the instrument's session
    (a CME trade closed at 17:30 Chicago time belongs to the next trade date). The days are
    every trade date holding at least one bar when ``bars`` are given, otherwise every session
    weekday from the trade date of the first entry to that of the last exit; days with an exit
    are always included. Indexed by trade date (midnight, no time zone) in order.
    """
    table = _prepared_trades(trades)
    has_trades = len(table) > 0
    exit_ns = _utc_ns(table["exit_time"], "exit_time") if has_trades else np.empty(0, np.int64)
    span_ns = (ts_ns(bars) if bars is not None and len(bars) else
               _utc_ns(table["entry_time"], "entry_time") if has_trades else np.empty(0, np.int64))
    empty = pd.Series(np.empty(0), index=pd.DatetimeIndex([], dtype="datetime64[ns]",
                                                          name="trade_date"), name="pnl")
    if exit_ns.size + span_ns.size == 0:
        return empty
    calendar = instrument.session.trade_days_covering(np.concatenate([exit_ns, span_ns]))
    exit_day = calendar.index_of(exit_ns)
    keep = np.zeros(calendar.dates.size, dtype=bool)
    if bars is not None and len(bars):
        keep[calendar.index_of(span_ns)] = True
    elif has_trades:
        first, last = int(calendar.index_of(span_ns).min()), int(exit_day.max())
        keep[first:last + 1] = calendar.is_trading_day[first:last + 1]
    keep[exit_day] = True
    booked = np.bincount(exit_day, weights=table["pnl"].to_numpy(dtype=np.float64),
                         minlength=calendar.dates.size)
    days = np.flatnonzero(keep)
    index = pd.DatetimeIndex(calendar.dates[days].astype("datetime64[ns]"), name="trade_date")
    return pd.Series(booked[days], index=index, name="pnl")


def _flat(std: float, values: np.ndarray) -> bool:
    """True when a standard deviation is zero up to rounding."""
    return not std > 1e-12 * float(np.abs(values).max())


def _ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator with x/0 = +inf for x > 0 and NaN otherwise."""
    if denominator > 0.0:
        return numerator / denominator
    return math.inf if numerator > 0.0 else math.nan


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else math.nan


def _mean_duration(values: pd.Series) -> pd.Timedelta:
    return values.mean() if len(values) else pd.NaT


def compute_metrics(trades: pd.DataFrame, *, instrument: Instrument, capital: float = 100_000.0,
                    bars: pd.DataFrame | None = None) -> Metrics:
    """The stats table of a list of trades (see docs/metrics.md for every definition).

    ``trades`` follows the simulator's trades contract (columns ``REQUIRED_TRADE_COLUMNS`` at least;
    an empty frame means no trades). ``capital`` is the starting equity that returns and
    drawdown percentages refer to. ``bars`` (the canonical bars the trades ran on) enable
    the daily series over every trading day of the span, exposure and the buy-and-hold
    benchmark; without them those three are NaN and the day span comes from the trades.
    Raises ConfigError for a non-positive capital, ValueError for a malformed trades frame.
    """
    if not (math.isfinite(capital) and capital > 0.0):
        raise ConfigError(f"capital must be a positive number, got {capital}")
    table = _prepared_trades(trades)
    pnl = table["pnl"].to_numpy(dtype=np.float64)
    points = table["pnl_points"].to_numpy(dtype=np.float64)
    n = int(pnl.size)
    won, lost = pnl > 0.0, pnl < 0.0
    gross_profit, gross_loss = float(pnl[won].sum()), float(-pnl[lost].sum())
    total_pnl = float(pnl.sum())

    sqn = math.nan
    if n >= 2:
        std = float(pnl.std(ddof=1))
        sqn = math.nan if _flat(std, pnl) else math.sqrt(n) * float(pnl.mean()) / std

    daily = daily_pnl(table, instrument=instrument, bars=bars).to_numpy() / capital
    periods = instrument.trading_days_per_year
    sharpe = sortino = math.nan
    if daily.size >= 2:
        std = float(daily.std(ddof=1))
        if not _flat(std, daily):
            sharpe = float(daily.mean()) / std * math.sqrt(periods)
        downside = math.sqrt(float(np.mean(np.minimum(daily, 0.0) ** 2)))
        sortino = _ratio(float(daily.mean()), downside) * math.sqrt(periods)

    equity = capital + np.cumsum(pnl)
    peak = np.maximum.accumulate(np.concatenate(([capital], equity)))[1:]
    max_dd = float((peak - equity).max()) if n else 0.0
    max_dd_pct = float(((peak - equity) / peak).max()) * 100.0 if n else 0.0
    strategy_return = total_pnl / capital
    annual_return = strategy_return * periods / daily.size if daily.size else math.nan

    has_bars = bars is not None and len(bars) > 0
    close = bars["close"].to_numpy(dtype=np.float64) if has_bars else np.empty(0)
    buy_hold = float((close[-1] - close[0]) / close[0]) if has_bars else math.nan
    exposure = (float(table["bars_held"].to_numpy(dtype=np.float64).sum()) / len(close)
                if has_bars else math.nan)
    held = table["bars_held"].to_numpy(dtype=np.float64)
    duration = table["exit_time"] - table["entry_time"] if n else pd.Series(dtype="m8[ns]")
    move = ((table["exit_price"].to_numpy(dtype=np.float64)
             - table["entry_price"].to_numpy(dtype=np.float64))
            * table["side"].to_numpy(dtype=np.float64))
    if has_bars:
        start, end = bars["ts"].iloc[0], bars["ts"].iloc[-1]
    else:
        start = table["entry_time"].min() if n else None
        end = table["exit_time"].max() if n else None
    total_fees = float(table["fees"].to_numpy(dtype=np.float64).sum())
    return Metrics(
        start=start, end=end, days=int(daily.size), capital=float(capital),
        currency=instrument.currency, trades=n, wins=int(won.sum()), losses=int(lost.sum()),
        scratches=int(n - won.sum() - lost.sum()),
        win_rate=float(won.sum()) / n if n else math.nan,
        total_pnl=total_pnl, total_pnl_points=float(points.sum()),
        gross_profit=gross_profit, gross_loss=gross_loss,
        strategy_return=strategy_return, annual_return=annual_return,
        buy_hold_return=buy_hold, alpha=strategy_return - buy_hold,
        avg_win=_mean(pnl[won]), avg_loss=_mean(pnl[lost]),
        largest_win=float(pnl[won].max()) if won.any() else math.nan,
        largest_loss=float(pnl[lost].min()) if lost.any() else math.nan,
        expectancy=_mean(pnl), expectancy_points=_mean(points),
        profit_factor=_ratio(gross_profit, gross_loss) if n else math.nan,
        sqn=sqn, sqn_band=sqn_band(sqn), sharpe=sharpe, sortino=sortino,
        max_drawdown=max_dd, max_drawdown_pct=max_dd_pct,
        calmar=_ratio(annual_return, max_dd_pct / 100.0) if daily.size else math.nan,
        total_fees=total_fees, fees_pct_of_capital=total_fees / capital * 100.0,
        exposure=exposure, avg_win_bars=_mean(held[won]), avg_loss_bars=_mean(held[lost]),
        avg_win_duration=_mean_duration(duration[won]),
        avg_loss_duration=_mean_duration(duration[lost]),
        hit_rate=float((move > 0.0).mean()) if n else math.nan)
