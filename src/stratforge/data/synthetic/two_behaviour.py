"""The two-behaviour planted edge (``TwoBehaviourRule``): fast/small and slow/large reversions."""

from __future__ import annotations

import numpy as np

from stratforge.data.synthetic.model import PlantedRule, TwoBehaviourRule
from stratforge.data.synthetic.planted import (
    PlantedEvent,
    event_offsets,
    reversion_ticks,
    spread_ticks,
)


def two_behaviour_drift(rng: np.random.Generator, active: np.ndarray, variance: np.ndarray,
                        open_s: int, core_start: int, core_end: int,
                        rule: TwoBehaviourRule) -> tuple[np.ndarray, list[PlantedEvent]]:
    """The drift (whole ticks per second of the session) of one day's events, and the events.

    Arguments as ``planted.planted_drift``; the schedule is ``event_offsets`` with a window of
    ``rule.window_minutes`` after the shock minute, then one draw per event picks slow or
    fast. Drift is only put on active seconds."""
    schedule = PlantedRule(p_revert=1.0, rate_per_day=rule.rate_per_day,
                           core_share=rule.core_share, horizon_minutes=rule.window_minutes)
    starts, directions, _ = event_offsets(rng, len(active), core_start, core_end, schedule)
    slow = rng.random(len(starts)) < rule.slow_share
    drift = np.zeros(len(active), dtype=np.int64)
    events: list[PlantedEvent] = []
    for start, direction, is_slow in zip(starts, directions, slow, strict=True):
        shock_at = start + np.flatnonzero(active[start:start + 60])
        if len(shock_at) == 0:
            continue
        sigma = float(np.sqrt(variance[start:start + 60].sum()))
        k, fraction, minutes = ((rule.slow_k_sigma, rule.slow_revert_fraction,
                                 rule.slow_horizon_minutes) if is_slow else
                                (rule.fast_k_sigma, rule.fast_revert_fraction,
                                 rule.fast_horizon_minutes))
        shock = max(1, int(np.rint(k * sigma)))
        drift[shock_at] += int(direction) * spread_ticks(shock, len(shock_at))
        back = int(np.rint(fraction * shock))
        begin = start + 60
        if is_slow and rule.slow_extension_minutes:
            # the move first runs on: a fade is under water before it comes back
            extend_end = begin + 60 * rule.slow_extension_minutes
            extend_at = begin + np.flatnonzero(active[begin:extend_end])
            extension = int(np.rint(rule.slow_extension_k_sigma * sigma))
            if extension and len(extend_at):
                drift[extend_at] += int(direction) * spread_ticks(extension, len(extend_at))
                back += extension
            begin = extend_end
        end = begin + 60 * minutes
        revert_at = begin + np.flatnonzero(active[begin:end])
        if back and len(revert_at):
            drift[revert_at] -= int(direction) * reversion_ticks(
                back, revert_at - begin, PlantedRule(horizon_minutes=minutes))
        else:
            back = 0
        relapse_at = end + np.flatnonzero(active[end:end + 60 * rule.fast_relapse_minutes])
        if not is_slow and back and len(relapse_at):
            relapse = int(np.rint(rule.fast_relapse_fraction * back))
            drift[relapse_at] += int(direction) * spread_ticks(relapse, len(relapse_at))
        events.append(PlantedEvent(second=int(open_s + start), direction=int(direction),
                                   reverted=back > 0, shock_ticks=shock, reversion_ticks=back,
                                   sigma_ticks=sigma,
                                   behaviour="slow" if is_slow else "fast"))
    return drift, events
