"""The day-by-day loop of the bar-path engine over a market's trade dates."""

from __future__ import annotations

from stratforge.data.synthetic.bar_profile import StepProfiles
from stratforge.data.synthetic.calendar import SessionDays
from stratforge.data.synthetic.model import BarPlantedRule, PathModel
from stratforge.data.synthetic.path import (
    PathCarry,
    PathSettings,
    day_geometry,
    simulate_path_day,
    step_seconds_for,
)
from stratforge.data.synthetic.planted import PlantedEvent
from stratforge.data.synthetic.storage import append_day, empty_columns, storage_dtypes
from stratforge.progress import ProgressCallback
from stratforge.sessions import Session
from stratforge.timeframes import Timeframe

BAR_PLANTED_DESCRIPTION = (
    "Shock-and-reversion counted in bars of the market's bar size. Each bar starts an event "
    "with probability min(max_rate_per_bar, events_per_day / bars of its trade date) unless "
    "an earlier event's window (the shock bar plus horizon_bars) still runs; intraday an "
    "event starts only where its window fits inside the trade date, daily windows run over "
    "the next trade dates. In the shock bar the price gets "
    "an extra move of k_sigma local one-bar sigmas (sigma_ticks, the expected std of the "
    "unperturbed price over that bar) in direction +1 or -1 (each 1/2). With probability "
    "p_revert the price then gives back revert_fraction of the shock over the next "
    "horizon_bars bars, front-loaded (share (1 - exp(-4b/H)) / (1 - exp(-4)) after b of H), "
    "otherwise the shock stays. Drifts are whole ticks. To trade it: fade a one-bar move "
    "beyond a few local sigmas and hold a few bars.")


def typical_break_hours(session: Session) -> float:
    """Hours between an ordinary trading day's close and the next open (0 for FX and 24/7)."""
    open_h = session.open.hour + session.open.minute / 60
    close_h = session.close.hour + session.close.minute / 60
    length = (close_h - open_h) % 24 or 24.0  # a session from a time to itself lasts 24 h
    return 24.0 - length


def simulate_path_market(calendar: SessionDays, session: Session, timeframe: Timeframe, *,
                         seed: int, kind: str, reference_ticks: int, daily_volatility: float,
                         progress: ProgressCallback | None
                         ) -> tuple[dict[str, list], list[PlantedEvent], PathModel,
                                    BarPlantedRule | None]:
    """Every trade date in turn with the bar-path engine: per-column lists of compact
    per-day arrays, the planted events, the model and the planted rule (or None)."""
    model = PathModel()
    rule = BarPlantedRule() if kind == "planted" else None
    step = step_seconds_for(timeframe.seconds, model)
    gap_share = min(model.gap_share_max,
                    model.gap_share_per_day * typical_break_hours(session) / 24)
    run = PathSettings(seed=seed, heavy_tails=kind != "null", rule=rule, step_seconds=step,
                       daily=not timeframe.intraday, daily_volatility=daily_volatility,
                       intraday_share=1.0 - gap_share,
                       min_ticks=model.min_price_share * reference_ticks, model=model)
    profiles = StepProfiles(session, calendar, step, model)
    carry = PathCarry(reference_ticks, None, 0.0, 0)
    columns, dtypes = empty_columns(), storage_dtypes(reference_ticks)
    events: list[PlantedEvent] = []
    total, every = len(calendar), max(1, len(calendar) // 50)
    for i in range(total):
        day = day_geometry(int(calendar.open_s[i]), int(calendar.close_s[i]),
                           int(calendar.day_start_s[i]), int(calendar.break_seconds[i]),
                           timeframe.seconds, step, profiles.shares(i))
        bars, carry, found = simulate_path_day(day, carry, i, run)
        append_day(columns, bars, dtypes)
        events.extend(found)
        if progress is not None and ((i + 1) % every == 0 or i + 1 == total):
            progress("synth", i + 1, total, "")
    return columns, events, model, rule

