"""The planted edge: shock-and-reversion events and the whole-tick drift they add to a day."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stratforge.data.synthetic.model import PlantedRule


@dataclass(frozen=True)
class PlantedEvent:
    """One planted event, as it went into the prices."""

    second: int           # UTC epoch seconds at which the shock minute starts
    direction: int        # +1 shock up (then reversion down), -1 shock down
    reverted: bool        # whether the reversion fired
    shock_ticks: int      # size of the shock, whole ticks (unsigned)
    reversion_ticks: int  # size of the reversion, whole ticks (0 when it did not fire)
    sigma_ticks: float    # local one-minute sigma the shock was scaled by
    behaviour: str = ""   # "fast" or "slow" under TwoBehaviourRule, else empty

    def to_json(self) -> dict:
        """A JSON-serialisable record with the start as an ISO-8601 UTC string (and the
        ``behaviour`` when there is one)."""
        stamp = np.datetime64(self.second, "s").astype(object).isoformat() + "+00:00"
        out = {"ts": stamp, "direction": self.direction, "reverted": self.reverted,
               "shock_ticks": self.shock_ticks, "reversion_ticks": self.reversion_ticks,
               "sigma_ticks": round(self.sigma_ticks, 4)}
        if self.behaviour:
            out["behaviour"] = self.behaviour
        return out


def event_offsets(rng: np.random.Generator, length: int, core_start: int, core_end: int,
                  rule: PlantedRule) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Start offsets (seconds from the open, whole minutes), directions and reversion flags.

    The draws are the same in number whatever the geometry, so one day's events never shift
    another's. Events whose window would overlap an earlier kept event are dropped.
    """
    count = int(rng.poisson(rule.rate_per_day))
    in_core = rng.random(count) < rule.core_share
    pick = rng.random(count)
    direction = rng.integers(0, 2, count) * 2 - 1
    reverted = rng.random(count) < rule.p_revert
    minutes = np.arange(0, length - rule.window_seconds + 1, 60, dtype=np.int64)
    core = (minutes >= core_start) & (minutes + 60 <= core_end)
    pools = (minutes[~core], minutes[core])
    start = np.full(count, -1, dtype=np.int64)
    for i in range(count):
        wanted = int(in_core[i])
        pool = pools[wanted] if len(pools[wanted]) else pools[1 - wanted]
        if len(pool):
            start[i] = pool[int(pick[i] * len(pool))]
    order = np.argsort(start, kind="stable")
    keep = np.zeros(count, dtype=bool)
    free_from = 0
    for i in order:
        if free_from <= start[i]:
            keep[i] = True
            free_from = start[i] + rule.window_seconds
    chosen = order[keep[order]]
    return start[chosen], direction[chosen], reverted[chosen]


def spread_ticks(total: int, slots: int) -> np.ndarray:
    """``total`` whole ticks spread evenly over ``slots`` by cumulative rounding (sums exactly)."""
    cumulative = np.rint(total * np.arange(1, slots + 1) / slots).astype(np.int64)
    return np.diff(cumulative, prepend=0)


def reversion_ticks(total: int, elapsed: np.ndarray, rule: PlantedRule) -> np.ndarray:
    """``total`` whole ticks over seconds ``elapsed`` into the reversion, front-loaded.

    The cumulative reversion after t seconds is ``total * (1 - exp(-t/tau)) / (1 - exp(-T/tau))``
    with T the horizon and tau = T / 4 (three quarters done after a third of the horizon),
    rounded cumulatively so it sums exactly to ``total``.
    """
    horizon = 60.0 * rule.horizon_minutes
    tau = horizon / 4
    share = -np.expm1(-(elapsed + 1) / tau) / -np.expm1(-horizon / tau)
    cumulative = np.rint(total * share).astype(np.int64)
    cumulative[-1] = total
    return np.diff(cumulative, prepend=0)


def planted_drift(rng: np.random.Generator, active: np.ndarray, variance: np.ndarray,
                  open_s: int, core_start: int, core_end: int,
                  rule: PlantedRule) -> tuple[np.ndarray, list[PlantedEvent]]:
    """The drift (whole ticks per second of the session) of one day's events, and the events.

    ``variance`` is the expected per-second price variance in ticks squared (volatility state
    included), ``active`` which seconds trade. Drift is only put on active seconds; an event
    whose shock minute has no active second is skipped.
    """
    length = len(active)
    drift = np.zeros(length, dtype=np.int64)
    events: list[PlantedEvent] = []
    starts, directions, reverted = event_offsets(rng, length, core_start, core_end, rule)
    for start, direction, fires in zip(starts, directions, reverted, strict=True):
        shock_at = start + np.flatnonzero(active[start:start + 60])
        if len(shock_at) == 0:
            continue
        sigma = float(np.sqrt(variance[start:start + 60].sum()))
        shock = max(1, int(np.rint(rule.k_sigma * sigma)))
        drift[shock_at] += int(direction) * spread_ticks(shock, len(shock_at))
        back = 0
        revert_at = start + 60 + np.flatnonzero(active[start + 60:start + rule.window_seconds])
        if fires and len(revert_at):
            back = int(np.rint(rule.revert_fraction * shock))
            elapsed = revert_at - (start + 60)
            drift[revert_at] -= int(direction) * reversion_ticks(back, elapsed, rule)
        events.append(PlantedEvent(second=int(open_s + start), direction=int(direction),
                                   reverted=bool(back > 0), shock_ticks=shock,
                                   reversion_ticks=back, sigma_ticks=sigma))
    return drift, events
