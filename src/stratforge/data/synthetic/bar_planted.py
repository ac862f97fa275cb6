"""The planted edge of the bar-path engine: shock-and-reversion events counted in bars."""

from __future__ import annotations

import numpy as np

from stratforge.data.synthetic.model import BarPlantedRule
from stratforge.data.synthetic.planted import PlantedEvent, spread_ticks


def reversion_per_bar(total: int, rule: BarPlantedRule) -> np.ndarray:
    """``total`` whole ticks over the ``horizon_bars`` bars after a shock, front-loaded.

    After b of the H bars a share ``(1 - exp(-4 b / H)) / (1 - exp(-4))`` is done, rounded
    cumulatively so the bars sum exactly to ``total``.
    """
    horizon = rule.horizon_bars
    done = -np.expm1(-4.0 * np.arange(1, horizon + 1) / horizon) / -np.expm1(-4.0)
    cumulative = np.rint(total * done).astype(np.int64)
    cumulative[-1] = total
    return np.diff(cumulative, prepend=0)


def planted_bar_drift(rng: np.random.Generator, bar_ts: np.ndarray, bar_first: np.ndarray,
                      variance: np.ndarray, pending: tuple[int, ...], rule: BarPlantedRule,
                      daily: bool) -> tuple[np.ndarray, tuple[int, ...], list[PlantedEvent]]:
    """Whole-tick drift per sub-step of one trade date, the reversion still due, the events.

    ``bar_ts`` are the day's bar starts (UTC epoch seconds), ``bar_first`` the index of each
    bar's first sub-step, ``variance`` the expected per-step variance of the unperturbed price
    (ticks squared). ``pending`` is the signed reversion (ticks per bar) an earlier trade
    date's event still owes to the next bars; what is still owed after this date is
    returned. The draws are the same in number whatever happens, so one day's events never
    shift another's.
    """
    n_bars, n_steps = len(bar_ts), len(variance)
    start = rng.random(n_bars) < rule.rate_per_bar(n_bars)
    direction = rng.integers(0, 2, n_bars) * 2 - 1
    fires = rng.random(n_bars) < rule.p_revert
    bar_variance = np.add.reduceat(variance, bar_first)
    bar_drift = np.zeros(n_bars, dtype=np.int64)
    owed = np.asarray(pending, dtype=np.int64)
    due = min(len(owed), n_bars)
    bar_drift[:due] += owed[:due]
    owed = owed[due:]
    free_from = due if len(owed) == 0 else n_bars
    events: list[PlantedEvent] = []
    for b in np.flatnonzero(start):
        if b < free_from or (not daily and b + rule.window_bars > n_bars):
            continue
        sign = int(direction[b])
        sigma = float(np.sqrt(bar_variance[b]))
        shock = max(1, int(np.rint(rule.k_sigma * sigma)))
        back = int(np.rint(rule.revert_fraction * shock)) if fires[b] else 0
        bar_drift[b] += sign * shock
        reversion = -sign * reversion_per_bar(back, rule)
        end = min(b + rule.window_bars, n_bars)
        bar_drift[b + 1:end] += reversion[:end - b - 1]
        owed = reversion[end - b - 1:]
        free_from = b + rule.window_bars
        events.append(PlantedEvent(second=int(bar_ts[b]), direction=sign, reverted=back > 0,
                                   shock_ticks=shock, reversion_ticks=back, sigma_ticks=sigma))
    drift = np.zeros(n_steps, dtype=np.int64)
    bar_end = np.append(bar_first[1:], n_steps)
    for b in np.flatnonzero(bar_drift):
        drift[bar_first[b]:bar_end[b]] = spread_ticks(int(bar_drift[b]),
                                                      int(bar_end[b] - bar_first[b]))
    return drift, tuple(int(x) for x in owed), events
