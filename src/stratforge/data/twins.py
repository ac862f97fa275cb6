"""Null twins: copies of a bars series that look like it but have no edge.

``make_twins(bars, n, seed)`` returns ``n`` bars frames with the input's timestamps. A twin
keeps what makes the data look real and removes any direction that could be predicted, so a
research run on twins measures how much the pipeline "finds" on data with no edge that looks
like the user's (``stratforge audit null``; docs/research.md, "Audit your results").

Every bar is cut into four pieces, measured from the previous bar's close: its open **gap**
(open minus previous close; zero for the first bar), its **body** (close minus open), its
**upper wick** (high minus max(open, close)) and its **lower wick** (min(open, close) minus
low). The first bar's open is the anchor the twin is chained from.

* ``method="sign"`` (default): each bar's gap and body get independent random signs (each
  +1 or -1 with probability 1/2). A bar whose body is flipped is mirrored around its open:
  its upper and lower wicks swap, so the range stays the same and high >= max(open, close) >=
  min(open, close) >= low holds. The twin is chained from the first open: open = previous
  twin close + signed gap, close = open + signed body. Kept exactly: timestamps (sessions,
  gaps in time), volume, every bar's range, body size, wick sizes and gap size, hence the
  intraday volatility profile and volatility clustering (the size of the close-to-close move
  is |±gap ± body|, the original's whenever the gap is zero, as between most intraday bars).
  Removed: the sign of every move, so returns have no autocorrelation, the direction after
  any pattern is a coin flip, and a trend or drift is gone.
* ``method="blocks"``: a day-block bootstrap. Trade dates (the ``session``'s, or UTC dates
  without one) are grouped into blocks of ``block_days`` consecutive dates (default 1, or 20
  when the bars are daily or coarser); each block of the twin takes the pieces and volume of
  a block drawn at random (with replacement) among blocks with the same number of bars, and
  the whole block is mirrored with one random sign. Kept: everything inside a block, volume
  with its bar, the timestamps. Removed: order and direction across blocks (trends, day-to-day
  persistence, calendar effects); an edge *inside* a day (e.g. intraday reversion) is kept, so
  "blocks" is the stricter null only for multi-day edges.

Tick grid: when ``tick_size`` is given and every input price is a whole multiple of it, the
twin is chained in whole ticks (exact integer arithmetic) and its prices are whole ticks too.

Positive prices: chained moves are a random walk, so a long twin of a volatile series can
wander below zero. When the input's prices are all positive and a twin's chained low would
reach zero or below, that twin is chained in log prices instead (the same pieces as log
ratios: each move keeps its relative size rather than its size in points) and, with a tick
grid, rounded back to it: open and close to the nearest tick (at least one tick), high up
and low down to the grid, so the bar stays valid; its ``attrs["twin_space"]`` says
``"log"`` (otherwise ``"points"``). Twin ``k`` is drawn from ``numpy.random.default_rng((seed,
k))``: the same seed gives the same twins, and the first twins do not depend on ``n``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from stratforge.data.bars import bars_from_arrays, ts_ns, validate_bars
from stratforge.errors import ConfigError
from stratforge.instruments import tick_decimals
from stratforge.sessions import Session

METHODS = ("sign", "blocks")
DAILY_BLOCK_DAYS = 20
"""Trade dates per block when the bars are daily or coarser (one bar per date)."""
_GRID_TOLERANCE = 1e-6  # in ticks: a price this close to a whole tick is on the grid


def make_twins(bars: pd.DataFrame, n: int, seed: int, *, method: str = "sign",
               tick_size: float | None = None, session: Session | None = None,
               block_days: int | None = None) -> list[pd.DataFrame]:
    """``n`` null twins of ``bars`` (canonical bars, validated first); see the module doc.

    ``tick_size`` keeps the twins on the instrument's tick grid when the input is on it;
    ``session`` books bars to trade dates for ``method="blocks"`` (UTC dates without one);
    ``block_days`` sets the block length of ``"blocks"``. Raises ConfigError for an unknown
    method, ``n`` < 0, a negative seed, a non-positive tick size or block length, and
    DataError (from validation) for bars that break the bars contract.
    """
    if n < 0:
        raise ConfigError(f"twins need n >= 0, got n={n}")
    maker = TwinMaker(bars, seed, method=method, tick_size=tick_size, session=session,
                      block_days=block_days)
    return [maker.twin(k) for k in range(n)]


class TwinMaker:
    """Twins of one bars series, one at a time: ``twin(k)`` is ``make_twins(...)[k]``
    (for a long series, so that only one twin is in memory at a time)."""

    def __init__(self, bars: pd.DataFrame, seed: int, *, method: str = "sign",
                 tick_size: float | None = None, session: Session | None = None,
                 block_days: int | None = None) -> None:
        if method not in METHODS:
            raise ConfigError(f"unknown twin method {method!r}; choose one of "
                              f"{', '.join(METHODS)}")
        if seed < 0:
            raise ConfigError(f"twins need seed >= 0, got seed={seed}")
        if tick_size is not None and not tick_size > 0:
            raise ConfigError(f"tick_size must be > 0, got {tick_size}")
        if block_days is not None and block_days < 1:
            raise ConfigError(f"block_days must be >= 1, got {block_days}")
        self.bars = validate_bars(bars, "bars to twin")
        self.seed = seed
        self.prices = _Prices.of(self.bars, tick_size) if len(self.bars) else None
        self.blocks = (_blocks(self.bars, session, block_days)
                       if method == "blocks" and len(self.bars) else None)

    def twin(self, k: int) -> pd.DataFrame:
        """Twin number ``k`` (0-based), drawn from ``numpy.random.default_rng((seed, k))``."""
        if self.prices is None:
            return self.bars.copy()
        rng = np.random.default_rng((self.seed, k))
        if self.blocks is None:
            n = len(self.bars)
            source = np.arange(n)
            sign_gap, sign_body = _signs(rng, n), _signs(rng, n)
        else:
            source, sign_body = _draw_blocks(rng, self.blocks)
            sign_gap = sign_body
        return self.prices.twin(self.bars, source, sign_gap, sign_body)


def _signs(rng: np.random.Generator, size: int) -> np.ndarray:
    return rng.integers(0, 2, size, dtype=np.int64) * 2 - 1


class _Prices:
    """The input's prices in the space the twins are chained in (ticks or points)."""

    def __init__(self, ohlc: np.ndarray, tick: float | None, positive: bool) -> None:
        self.ohlc, self.tick, self.positive = ohlc, tick, positive

    @classmethod
    def of(cls, bars: pd.DataFrame, tick_size: float | None) -> _Prices:
        ohlc = bars[["open", "high", "low", "close"]].to_numpy(dtype=np.float64).T
        positive = bool((ohlc > 0).all())
        if tick_size is not None:
            ticks = ohlc / tick_size
            whole = np.rint(ticks)
            if (np.abs(ticks - whole) <= _GRID_TOLERANCE).all():
                return cls(whole.astype(np.int64), tick_size, positive)
        return cls(ohlc, None, positive)

    def twin(self, bars: pd.DataFrame, source: np.ndarray, sign_gap: np.ndarray,
             sign_body: np.ndarray) -> pd.DataFrame:
        """One twin: the pieces of bar ``source[i]`` with signs ``sign_*[i]`` at bar ``i``."""
        o, h, lo, c = _chain(_pieces(*self.ohlc), self.ohlc[0][0], source, sign_gap, sign_body)
        space = "points"
        if self.positive and lo.min() <= 0:
            space = "log"
            logs = np.log(self._as_price(self.ohlc))
            o, h, lo, c = np.exp(_chain(_pieces(*logs), logs[0][0], source, sign_gap,
                                        sign_body))
            if self.tick is not None:
                o, h, lo, c = _round_to_grid(o, h, lo, c, self.tick)
        prices = [self._as_price(p) for p in (o, h, lo, c)]
        volume = bars["volume"].to_numpy()[source]
        twin = bars_from_arrays(ts_ns(bars), *prices, volume)
        twin.attrs["twin_space"] = space
        return twin

    def _as_price(self, values: np.ndarray) -> np.ndarray:
        """Whole ticks as prices (rounded to the tick's decimals); points unchanged."""
        if self.tick is None or values.dtype.kind != "i":
            return values.astype(np.float64)
        return np.round(values * self.tick, tick_decimals(self.tick))


def _pieces(o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray) -> tuple:
    """Gap (first bar: 0), body, upper wick and lower wick of every bar."""
    gap = np.concatenate([np.zeros(1, dtype=o.dtype), o[1:] - c[:-1]])
    return gap, c - o, h - np.maximum(o, c), np.minimum(o, c) - lo


def _chain(pieces: tuple, anchor, source: np.ndarray, sign_gap: np.ndarray,
           sign_body: np.ndarray) -> tuple[np.ndarray, ...]:
    """Open, high, low, close chained from ``anchor`` (the first open) with signed pieces."""
    gap, body, upper, lower = (p[source] for p in pieces)
    gap = gap * sign_gap
    gap[0] = 0  # the first bar opens at the anchor
    body = body * sign_body
    close = anchor + np.cumsum(gap + body)
    open_ = close - body
    flipped = sign_body < 0  # mirrored around the open: the wicks swap
    high = np.maximum(open_, close) + np.where(flipped, lower, upper)
    low = np.minimum(open_, close) - np.where(flipped, upper, lower)
    return open_, high, low, close


def _round_to_grid(o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray,
                   tick: float) -> tuple[np.ndarray, ...]:
    """Log-chained prices back on the tick grid, whole ticks (int64), a valid bar, >= 1 tick."""
    o_t = np.maximum(np.rint(o / tick), 1).astype(np.int64)
    c_t = np.maximum(np.rint(c / tick), 1).astype(np.int64)
    h_t = np.maximum(np.ceil(h / tick - _GRID_TOLERANCE).astype(np.int64), np.maximum(o_t, c_t))
    lo_t = np.minimum(np.maximum(np.floor(lo / tick + _GRID_TOLERANCE), 1).astype(np.int64),
                      np.minimum(o_t, c_t))
    return o_t, h_t, lo_t, c_t


def _blocks(bars: pd.DataFrame, session: Session | None, block_days: int | None) -> list:
    """Bar index ranges of the blocks of consecutive trade dates, in order."""
    stamps = ts_ns(bars)
    if session is not None:
        day = session.trade_days_covering(stamps).index_of(stamps)
    else:
        day = stamps // (86_400 * 10**9)
    starts = np.flatnonzero(np.diff(day, prepend=day[0] - 1))
    if block_days is None:
        block_days = DAILY_BLOCK_DAYS if len(starts) == len(bars) else 1
    starts = starts[::block_days]
    ends = np.append(starts[1:], len(bars))
    return [np.arange(a, b) for a, b in zip(starts, ends, strict=True)]


def _draw_blocks(rng: np.random.Generator,
                 blocks: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Source bar of every twin bar and its sign: each block draws a same-length block."""
    by_length: dict[int, list[int]] = {}
    for i, block in enumerate(blocks):
        by_length.setdefault(len(block), []).append(i)
    picks = rng.random(len(blocks))
    signs = _signs(rng, len(blocks))
    source, sign = [], []
    for i, block in enumerate(blocks):
        same = by_length[len(block)]
        chosen = blocks[same[min(int(picks[i] * len(same)), len(same) - 1)]]
        source.append(chosen)
        sign.append(np.full(len(block), signs[i], dtype=np.int64))
    return np.concatenate(source), np.concatenate(sign)
