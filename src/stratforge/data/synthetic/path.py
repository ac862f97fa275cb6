"""The bar-path engine: coarse bars (1m, 1h, 1D) made directly from a whole-tick path.

Each trade date's session is cut into sub-steps (``step_seconds``); every step moves the
price by ``rint(sigma * z)`` whole ticks with ``z`` symmetric and independent of the past, so
the close is an exact martingale on the tick grid (the planted drift is the only exception).
A bar's open is the close before it (plus the gap at the session's first bar), its close the
path's last price, and its high and low the extremes of a Brownian bridge across each step
(see ``day.bridge_extremes``), so a wick gives a limit order no free edge. Volatility is a
day-level AR(1) plus an intraday AR(1) of log-volatility, times the session's intraday
profile (``bar_profile``), proportional to the last close (so a planted market shares every
random draw with its realistic twin, but its noise is scaled to its own price).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from stratforge.data.synthetic.bar_planted import planted_bar_drift
from stratforge.data.synthetic.day import DayBars, bridge_extremes, day_streams, symmetric_draws
from stratforge.data.synthetic.model import BarPlantedRule, PathModel
from stratforge.data.synthetic.planted import PlantedEvent


@dataclass(frozen=True)
class PathDay:
    """One trade date's geometry: where its bars start and which bar each sub-step feeds."""

    open_s: int               # UTC epoch seconds of the session open
    close_s: int              # UTC epoch seconds of the session close
    break_seconds: int        # time since the previous trading day's close
    bar_ts: np.ndarray        # UTC epoch seconds of each bar's start
    bar_first: np.ndarray     # index of each bar's first sub-step
    shares: np.ndarray        # variance share of each sub-step (sums to one)


@dataclass(frozen=True)
class PathCarry:
    """State handed from one trade date to the next."""

    close_ticks: int          # the last close: it sets the volatility scale
    day_vol: float | None     # day-level log-volatility (None before the first day)
    step_vol: float           # last intraday log-volatility
    close_s: int              # UTC epoch seconds of the previous session close
    pending: tuple[int, ...] = ()  # planted reversion still owed to the next bars (ticks)


@dataclass(frozen=True)
class PathSettings:
    """Settings shared by every day of one bar-path market."""

    seed: int
    heavy_tails: bool             # Student-t increments ("realistic", "planted") or Gaussian
    rule: BarPlantedRule | None   # the planted edge, or None
    step_seconds: int
    daily: bool                   # one bar per trade date (1D)
    daily_volatility: float
    intraday_share: float         # share of a typical day's variance inside the session
    min_ticks: float              # price (in ticks) below which volatility stops shrinking
    model: PathModel


def step_seconds_for(resolution_s: int, model: PathModel) -> int:
    """Sub-step length for bars of ``resolution_s`` seconds (see ``PathModel``)."""
    if resolution_s >= 86_400:
        return model.daily_step_seconds
    return resolution_s // 60 if resolution_s % 60 == 0 else 1


def day_geometry(open_s: int, close_s: int, day_start_s: int, break_seconds: int,
                 resolution_s: int, step_s: int, shares: np.ndarray) -> PathDay:
    """Bars of one trade date: anchored at the session open like ``data.resample`` for an
    intraday ``resolution_s``; one bar at the trade date's first instant for 1D."""
    offsets = np.arange(0, close_s - open_s, step_s, dtype=np.int64)
    if resolution_s >= 86_400:
        bar_ts, bar_first = np.array([day_start_s], dtype=np.int64), np.zeros(1, np.int64)
    else:
        bucket = offsets // resolution_s
        bar_first = np.flatnonzero(np.diff(bucket, prepend=-1))
        bar_ts = open_s + bucket[bar_first] * resolution_s
    return PathDay(open_s, close_s, break_seconds, bar_ts, bar_first, shares)


def step_volatility(rng: np.random.Generator, carry: PathCarry, day: PathDay,
                    run: PathSettings) -> tuple[np.ndarray, float, float]:
    """Per-step volatility multipliers (mean square one), the day level, the last step level.

    The intraday level decays over the break between sessions (not at all for a market that
    never closes).
    """
    model, n = run.model, len(day.shares)
    eps = rng.standard_normal(n + 1)
    halflife = model.intraday_vol_halflife_seconds
    if carry.day_vol is None:
        level_day, decay = model.day_vol_std * eps[0], 0.0
    else:
        rho = model.day_vol_persistence
        level_day = rho * carry.day_vol + np.sqrt(1 - rho ** 2) * model.day_vol_std * eps[0]
        decay = 0.5 ** ((day.open_s - carry.close_s) / halflife)
    phi = 0.5 ** (run.step_seconds / halflife)
    first = decay * carry.step_vol + np.sqrt(1 - decay ** 2) * model.intraday_vol_std * eps[1]
    rest, _ = lfilter([np.sqrt(1 - phi ** 2) * model.intraday_vol_std], [1.0, -phi], eps[2:],
                      zi=[phi * first])
    level = np.concatenate(([first], rest))
    return (np.exp(level_day + level - model.log_vol_variance), float(level_day),
            float(level[-1]))


def simulate_path_day(day: PathDay, carry: PathCarry, day_index: int, run: PathSettings
                      ) -> tuple[DayBars, PathCarry, list[PlantedEvent]]:
    """One trade date's bars (prices in ticks), the carry for the next, planted events."""
    model, rng = run.model, day_streams(run.seed, day_index)
    mult, day_vol, step_vol = step_volatility(rng["volatility"], carry, day, run)
    daily_ticks = run.daily_volatility * max(carry.close_ticks, run.min_ticks)
    variance = run.intraday_share * daily_ticks ** 2 * day.shares * mult ** 2
    sigma = np.sqrt(variance)
    noise, scale = symmetric_draws(rng["noise"], len(sigma), run.heavy_tails, model.tail_df)
    move = np.rint(sigma * noise).astype(np.int64)
    gap_share = min(model.gap_share_max, model.gap_share_per_day * day.break_seconds / 86_400)
    gap_noise = symmetric_draws(rng["gap"], 1, run.heavy_tails, model.tail_df)[0][0]
    gap = int(np.rint(np.sqrt(gap_share) * daily_ticks * gap_noise))
    pending, events = carry.pending, []
    if run.rule is not None:
        drift, pending, events = planted_bar_drift(rng["events"], day.bar_ts, day.bar_first,
                                                   variance, carry.pending, run.rule, run.daily)
        move += drift

    close = carry.close_ticks + gap + np.cumsum(move)
    open_ = np.concatenate(([carry.close_ticks + gap], close[:-1]))
    high, low = bridge_extremes(rng["wick"], open_, close, sigma * scale)
    size = np.minimum(np.abs(move) / np.maximum(sigma, 1e-9), 6.0)  # moves draw volume
    activity = day.shares * len(day.shares) * mult
    mean_volume = model.volume_per_second * run.step_seconds * activity * (0.5 + 0.5 * size)
    volume = rng["volume"].poisson(mean_volume).astype(np.float64)

    first, last = day.bar_first, np.append(day.bar_first[1:], len(close)) - 1
    bars = DayBars(ts_s=day.bar_ts, open=open_[first], high=np.maximum.reduceat(high, first),
                   low=np.minimum.reduceat(low, first), close=close[last],
                   volume=1.0 + np.add.reduceat(volume, first))
    return bars, PathCarry(int(close[-1]), day_vol, step_vol, day.close_s, pending), events
