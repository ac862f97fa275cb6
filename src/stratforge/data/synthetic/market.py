"""``generate_market``: argument checks, the day-by-day loop, assembly of bars and ``spec``."""

from __future__ import annotations

import datetime
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from stratforge.data.bars import BAR_COLUMNS
from stratforge.data.synthetic.calendar import SessionDays, session_days
from stratforge.data.synthetic.day import Carry, DayPlan, RunSettings, simulate_day
from stratforge.data.synthetic.defaults import (
    DEFAULT_START,
    PATH_ENGINE,
    TICK_ENGINE,
    default_days,
    default_start,
    engine_for,
    native_timeframe,
)
from stratforge.data.synthetic.model import (
    GENERATOR_VERSION,
    BarPlantedRule,
    MarketModel,
    PathModel,
    PlantedRule,
    TwoBehaviourRule,
)
from stratforge.data.synthetic.path_market import BAR_PLANTED_DESCRIPTION, simulate_path_market
from stratforge.data.synthetic.planted import PlantedEvent
from stratforge.data.synthetic.profile import ProfileCache
from stratforge.data.synthetic.storage import append_day, empty_columns, storage_dtypes
from stratforge.errors import ConfigError
from stratforge.instruments import Instrument
from stratforge.progress import ProgressCallback
from stratforge.sessions import NS_PER_SECOND, Session
from stratforge.timeframes import Timeframe, parse_timeframe

SYNTHETIC_KINDS = ("realistic", "null", "planted")
__all__ = ["DEFAULT_START", "SYNTHETIC_KINDS", "SyntheticMarket", "generate_market"]
KIND_DESCRIPTIONS = {
    "null": "martingale on the tick grid: Gaussian whole-tick increments with the intraday "
            "profile and volatility clustering, no exploitable structure",
    "realistic": "the null market with Student-t (fat-tailed) increments and gaps; no edge",
    "planted": "the realistic market plus the documented shock-and-reversion edge "
               "(see planted.rule and planted.events)",
}

PLANTED_DESCRIPTION = (
    "About rate_per_day events per trade date (Poisson; a share core_share in the core hours; "
    "windows never overlap). Each starts on a whole minute from the session open: in that "
    "minute the price gets an extra move of k_sigma local one-minute sigmas (sigma_ticks, the "
    "expected std of the unperturbed price over that minute) in direction +1 or -1 (each 1/2). "
    "With probability p_revert the price then gives back revert_fraction of the shock over the "
    "next horizon_minutes minutes, front-loaded (share (1 - exp(-4t/T)) / (1 - exp(-4)) after t "
    "of T), otherwise the shock stays. Drifts are whole ticks on active seconds. To trade it: "
    "fade a one-minute move beyond a few local sigmas and hold a few minutes.")

TWO_BEHAVIOUR_DESCRIPTION = (
    "Two planted behaviours (see stratforge.data.synthetic.TwoBehaviourRule). Events are "
    "scheduled like the shock_reversion rule and always revert; each is slow with probability "
    "slow_share. Fast: a shock of fast_k_sigma local one-minute sigmas, fast_revert_fraction "
    "of it back within fast_horizon_minutes (front-loaded), then fast_relapse_fraction times "
    "that reversion given back evenly over fast_relapse_minutes (past the shock when above 1): "
    "a tight target and a short hold want it. Slow: a shock of slow_k_sigma sigmas that runs "
    "on by slow_extension_k_sigma sigmas over slow_extension_minutes, then the shock and the "
    "extension (times slow_revert_fraction of the shock) back over slow_horizon_minutes "
    "(front-loaded): a wide stop and a wide target want it. Every event carries its "
    "behaviour.")


@dataclass(frozen=True)
class SyntheticMarket:
    """A generated market: canonical bars and the JSON-serialisable spec that made them."""

    bars: pd.DataFrame
    spec: dict


def generate_market(instrument: Instrument, *, days: int | None = None, seed: int,
                    kind: str = "realistic", resolution: str | None = None,
                    start: datetime.date | None = None,
                    progress: ProgressCallback | None = None,
                    planted_rule: PlantedRule | TwoBehaviourRule | None = None
                    ) -> SyntheticMarket:
    """A synthetic market of ``days`` trading days of ``instrument`` from ``start``.

    Bars follow the instrument's session calendar (nothing outside [session open, session
    close) of a trading day; a 1D bar per trade date at the date's first instant, like
    ``stratforge.data.resample``), prices are whole ticks around
    ``instrument.reference_price`` with daily volatility around
    ``instrument.daily_volatility``. ``kind`` is ``"null"`` (no edge at all), ``"realistic"``
    (fat tails, still no edge) or ``"planted"`` (realistic plus a documented edge, with every
    event listed in ``spec["planted"]["events"]``). The same arguments always give identical
    bars, and the first N days of a longer market equal the N-day market. Kinds with the same
    seed share every random draw but the events': a tick-engine ``planted`` market is its
    ``realistic`` twin plus the planted drift; a bar-path one equals its twin until the first
    event (its noise then scales with its own price).

    The instrument's ``synthetic_timeframe`` picks the engine (see ``defaults``): under one
    minute the tick engine (sparse one-second trading, ``PlantedRule``), else the bar-path
    engine (``PathModel``, ``BarPlantedRule``). ``days``, ``resolution`` and ``start`` default
    to the instrument's profile (MNQ: 60 days of 1s bars from 2023-01-02).

    ``planted_rule`` replaces the planted edge of a tick-engine ``planted`` market (default
    ``PlantedRule()``); ``TwoBehaviourRule()`` plants two behaviours that want different
    exits (fast/small and slow/large reversions, the fission benchmark's market).

    Raises ConfigError for ``days`` < 1, a negative seed, an unknown ``kind`` or a
    ``resolution`` the engine cannot make (the tick engine: intraday only; the bar-path
    engine: intraday or 1D).
    """
    engine = engine_for(instrument)
    days = default_days(instrument) if days is None else days
    resolution = native_timeframe(instrument).name if resolution is None else resolution
    timeframe = _check_arguments(days, seed, kind, resolution, engine)
    if planted_rule is not None and (kind != "planted" or engine != TICK_ENGINE):
        raise ConfigError(f"planted_rule needs kind='planted' on the tick engine (second "
                          f"bars, e.g. MNQ); {instrument.symbol} kind {kind!r} uses the "
                          f"{engine} engine: drop planted_rule or pick such a market")
    first = _start_date(start, instrument)
    ticks = _reference_ticks(instrument)
    calendar = session_days(instrument.session, first, days, MarketModel())
    if engine == TICK_ENGINE:
        model = MarketModel()
        rule = (planted_rule or PlantedRule()) if kind == "planted" else None
        run = RunSettings(seed=seed, heavy_tails=kind != "null", rule=rule,
                          resolution_s=timeframe.seconds,
                          daily_volatility=instrument.daily_volatility,
                          min_ticks=model.min_price_share * ticks, model=model)
        columns, events = _simulate(calendar, instrument, run, progress)
    else:
        columns, events, model, rule = simulate_path_market(
            calendar, instrument.session, timeframe, seed=seed, kind=kind,
            reference_ticks=ticks, daily_volatility=instrument.daily_volatility,
            progress=progress)
    bars = _assemble(columns, instrument.tick_size)
    spec = _spec(instrument, kind, seed, days, timeframe, first, calendar, model, rule, events,
                 len(bars))
    spec["engine"] = engine
    return SyntheticMarket(bars=bars, spec=spec)


def _check_arguments(days: int, seed: int, kind: str, resolution: str,
                     engine: str) -> Timeframe:
    if isinstance(days, bool) or not isinstance(days, int | np.integer) or days < 1:
        raise ConfigError(f"days must be a whole number of trading days >= 1, got {days!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ConfigError(f"seed must be a whole number >= 0, got {seed!r}")
    if kind not in SYNTHETIC_KINDS:
        raise ConfigError(f"unknown synthetic market kind {kind!r}; use one of "
                          f"{', '.join(SYNTHETIC_KINDS)}")
    valid = "an intraday timeframe such as 1s, 5s, 15s, 1m, 5m, 15m, 1h"
    if engine == PATH_ENGINE:
        valid += ", or 1D"
    try:
        timeframe = parse_timeframe(str(resolution))
    except ConfigError as exc:
        raise ConfigError(f"resolution {resolution!r} is not valid: use {valid}") from exc
    if engine == TICK_ENGINE and not timeframe.intraday:
        raise ConfigError(f"resolution {resolution!r} is not intraday: use {valid} (this "
                          "instrument's synthetic market trades second by second)")
    if timeframe.seconds > 86_400:
        raise ConfigError(f"resolution {resolution!r} is coarser than one trade date: use "
                          f"{valid}")
    return timeframe


def _start_date(start: datetime.date | None, instrument: Instrument) -> datetime.date:
    if start is None:
        return default_start(instrument)
    if isinstance(start, datetime.datetime):
        return start.date()
    if not isinstance(start, datetime.date):
        raise ConfigError(f"start must be a date such as 2023-01-02, got {start!r}")
    return start


def _reference_ticks(instrument: Instrument) -> int:
    return max(1, round(instrument.reference_price / instrument.tick_size))


def typical_gap_share(session: Session, model: MarketModel) -> float:
    """Share of the daily variance in an ordinary weekday break between two sessions."""
    open_h = session.open.hour + session.open.minute / 60
    close_h = session.close.hour + session.close.minute / 60
    hours = (open_h - close_h) % 24 if session.overnight else 24 - (close_h - open_h)
    return min(model.gap_share_max, model.gap_share_per_day * hours / 24)


def _simulate(calendar: SessionDays, instrument: Instrument, run: RunSettings,
              progress: ProgressCallback | None) -> tuple[dict[str, list], list[PlantedEvent]]:
    """Every trade date in turn; per-column lists of compact per-day arrays, and the events."""
    model = run.model
    intraday_share = 1.0 - typical_gap_share(instrument.session, model)
    profiles = ProfileCache(model)
    carry = Carry(_reference_ticks(instrument), _reference_ticks(instrument), None, 0.0, 0)
    columns = empty_columns()
    dtypes = storage_dtypes(carry.close_ticks)
    events: list[PlantedEvent] = []
    total, step = len(calendar), max(1, len(calendar) // 50)
    for i in range(total):
        open_s, close_s = int(calendar.open_s[i]), int(calendar.close_s[i])
        core = int(calendar.core_start[i]), int(calendar.core_end[i])
        gap_share = min(model.gap_share_max,
                        model.gap_share_per_day * float(calendar.break_seconds[i]) / 86_400)
        plan = DayPlan(open_s, close_s, *core, gap_share, intraday_share,
                       profiles.get(close_s - open_s, *core))
        bars, carry, found = simulate_day(plan, carry, i, run)
        append_day(columns, bars, dtypes)
        events.extend(found)
        if progress is not None and ((i + 1) % step == 0 or i + 1 == total):
            progress("synth", i + 1, total, "")
    return columns, events


def _assemble(columns: dict[str, list], tick_size: float) -> pd.DataFrame:
    """One canonical frame from per-day arrays (freed column by column), ticks to prices."""
    inverse = round(1 / tick_size)
    exact = inverse > 0 and abs(inverse * tick_size - 1) < 1e-12

    def take(name: str) -> np.ndarray:
        parts = columns.pop(name)
        joined = np.concatenate(parts) if parts else np.empty(0)
        parts.clear()
        return joined

    def prices(name: str) -> np.ndarray:
        ticks = take(name).astype(np.float64)
        return ticks / inverse if exact else ticks * tick_size

    stamps = pd.DatetimeIndex((take("ts_s") * NS_PER_SECOND).view("datetime64[ns]"), tz="UTC")
    frame = {"ts": stamps}
    for name in ("open", "high", "low", "close"):
        frame[name] = prices(name)
    frame["volume"] = take("volume").astype(np.float64)
    # Same frame as data.bars.bars_from_arrays, without the constructor's copy of 13M rows.
    return pd.DataFrame(frame, columns=list(BAR_COLUMNS), copy=False)


def _spec(instrument: Instrument, kind: str, seed: int, days: int, timeframe: Timeframe,
          start: datetime.date, calendar: SessionDays, model: MarketModel | PathModel,
          rule: PlantedRule | BarPlantedRule | TwoBehaviourRule | None,
          events: list[PlantedEvent],
          rows: int) -> dict:
    """The JSON-serialisable description of a market (plain Python types only)."""
    planted = None
    if isinstance(rule, TwoBehaviourRule):
        planted = {"rule": "two_behaviour", "description": TWO_BEHAVIOUR_DESCRIPTION,
                   **asdict(rule), "events": [e.to_json() for e in events]}
    elif isinstance(rule, PlantedRule):
        planted = {"rule": "shock_reversion", "description": PLANTED_DESCRIPTION,
                   **asdict(rule), "events": [e.to_json() for e in events]}
    elif rule is not None:
        planted = {"rule": "shock_reversion_bars", "description": BAR_PLANTED_DESCRIPTION,
                   **asdict(rule), "events": [e.to_json() for e in events]}
    return {
        "generator": "stratforge.data.synthetic",
        "version": GENERATOR_VERSION,
        "kind": kind,
        "kind_description": KIND_DESCRIPTIONS[kind],
        "seed": int(seed),
        "days": int(days),
        "resolution": timeframe.name,
        "symbol": instrument.symbol,
        "start": start.isoformat(),
        "first_trade_date": calendar.dates[0].isoformat(),
        "last_trade_date": calendar.dates[-1].isoformat(),
        "tick_size": instrument.tick_size,
        "reference_price": instrument.reference_price,
        "daily_volatility": instrument.daily_volatility,
        "session": instrument.session.describe(),
        "bars": int(rows),
        "model": asdict(model),
        "planted": planted,
    }
