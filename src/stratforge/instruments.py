"""Instrument specifications: tick size, point value, currency, trading session and cost model.

Built-in instruments cover CME equity-index futures (MNQ, NQ, MES, ES), EURUSD, US equities
(SPY, AAPL, a generic EQUITY) and 24/7 crypto (BTCUSD).
Users add or override instruments in ``<home>/instruments.yaml``::

    CL:
      tick_size: 0.01
      point_value: 1000
      currency: USD
      session: cme_globex          # a preset, or a mapping:
      costs: {commission: 2.5, spread_ticks: 1, slippage_ticks: 1}   # see stratforge.costs
    DAX:
      tick_size: 0.5
      point_value: 25
      currency: EUR
      session: {timezone: Europe/Berlin, open: "08:00", close: "22:00", flat: "21:55",
                calendar: XETR}   # optional exchange calendar (holidays, early closes)
    BTCUSD:
      tick_size: 0.01
      point_value: 1
      session: crypto_24x7         # or {timezone: UTC, open: "00:00", close: "00:00",
                                   #     flat: null, weekdays: [0, 1, 2, 3, 4, 5, 6]}
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import time
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stratforge.config import resolve_home
from stratforge.costs import BUILTIN_COSTS, DEFAULT_COSTS, Costs
from stratforge.errors import ConfigError
from stratforge.sessions import (
    CME_GLOBEX,
    CRYPTO_24X7,
    FX_24X5,
    SESSION_PRESETS,
    US_EQUITY_RTH,
    Session,
    check_calendar_name,
)


@dataclass(frozen=True)
class Instrument:
    """Everything needed to turn prices into money and bars into trading days."""

    symbol: str
    tick_size: float
    point_value: float
    currency: str
    session: Session
    description: str = ""
    reference_price: float = 100.0   # typical price level (used by the synthetic market)
    daily_volatility: float = 0.01   # typical daily return std (used by the synthetic market)
    trading_days_per_year: int = 252
    # Bar size of this instrument's synthetic market (MNQ 1s, EURUSD 1h, ...); None: no
    # synthetic profile, so the main job does not build a synthetic market for it.
    synthetic_timeframe: str | None = None
    costs: Costs = field(default=Costs())  # the cost model every run charges

    @property
    def price_decimals(self) -> int:
        """Decimals that show every tick (0.25 -> 2, 0.00001 -> 5, 1 -> 0)."""
        return tick_decimals(self.tick_size)

    def format_price(self, value: float) -> str:
        """A price or price distance with the decimals of the tick size."""
        return f"{value:,.{self.price_decimals}f}"

    def round_to_tick(self, price: float) -> float:
        """``price`` rounded to the nearest tick."""
        return round(price / self.tick_size) * self.tick_size


BUILTIN_INSTRUMENTS: dict[str, Instrument] = {
    spec.symbol: spec for spec in (
        Instrument("MNQ", 0.25, 2.0, "USD", CME_GLOBEX, "Micro E-mini Nasdaq-100 futures",
                   18_000.0, 0.013, synthetic_timeframe="1s"),
        Instrument("NQ", 0.25, 20.0, "USD", CME_GLOBEX, "E-mini Nasdaq-100 futures",
                   18_000.0, 0.013),
        Instrument("MES", 0.25, 5.0, "USD", CME_GLOBEX, "Micro E-mini S&P 500 futures",
                   5_000.0, 0.010),
        Instrument("ES", 0.25, 50.0, "USD", CME_GLOBEX, "E-mini S&P 500 futures",
                   5_000.0, 0.010),
        Instrument("EURUSD", 0.00001, 100_000.0, "USD", FX_24X5,
                   "Euro / US dollar spot, one standard lot", 1.08, 0.005, 260,
                   synthetic_timeframe="1h"),
        Instrument("SPY", 0.01, 1.0, "USD", US_EQUITY_RTH, "SPDR S&P 500 ETF (one share)",
                   450.0, 0.010),
        Instrument("EQUITY", 0.01, 1.0, "USD", US_EQUITY_RTH,
                   "Generic US equity (one share, regular trading hours)", 100.0, 0.015),
        Instrument("AAPL", 0.01, 1.0, "USD", US_EQUITY_RTH,
                   "Apple Inc. common stock (one share, regular trading hours)", 150.0, 0.016,
                   synthetic_timeframe="1D"),
        Instrument("BTCUSD", 0.01, 1.0, "USD", CRYPTO_24X7,
                   "Bitcoin / US dollar spot (one coin), trades 24/7", 60_000.0, 0.03, 365,
                   synthetic_timeframe="1m"),
    )
}

BUILTIN_INSTRUMENTS = {symbol: replace(spec, costs=BUILTIN_COSTS.get(symbol, spec.costs))
                       for symbol, spec in BUILTIN_INSTRUMENTS.items()}

USER_FILE_NAME = "instruments.yaml"


def tick_decimals(tick_size: float) -> int:
    """Decimals needed to write a multiple of ``tick_size`` exactly (at most 10)."""
    for decimals in range(11):
        if abs(round(tick_size, decimals) - tick_size) <= 1e-12 * max(1.0, tick_size):
            return decimals
    return 10


class _CostsModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    commission: float = Field(default=0.0, ge=0)
    spread_ticks: float = Field(default=0.0, ge=0)
    slippage_ticks: float = Field(default=0.0, ge=0)
    fee_bps: float = Field(default=0.0, ge=0)
    velocity_slippage: float = Field(default=0.0, ge=0)
    velocity_cap_ticks: float = Field(default=0.0, ge=0)


class _SessionModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    timezone: str
    open: time
    close: time
    flat: time | None  # required; null: no daily flat (positions held across trade dates)
    weekdays: tuple[int, ...] = (0, 1, 2, 3, 4)
    calendar: str | None = None


class _InstrumentModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tick_size: float = Field(gt=0)
    point_value: float = Field(gt=0)
    currency: str = "USD"
    session: str | _SessionModel = "cme_globex"
    description: str = ""
    reference_price: float = Field(default=100.0, gt=0)
    daily_volatility: float = Field(default=0.01, gt=0)
    trading_days_per_year: int = Field(default=252, gt=0)
    synthetic_timeframe: str | None = None
    costs: _CostsModel | None = None


def _session_from(value: str | _SessionModel, where: str) -> Session:
    if isinstance(value, str):
        if value not in SESSION_PRESETS:
            raise ConfigError(f"{where}: unknown session preset {value!r}; "
                              f"use one of {', '.join(sorted(SESSION_PRESETS))} or a mapping")
        return SESSION_PRESETS[value]
    calendar = None
    if value.calendar is not None:
        try:
            calendar = check_calendar_name(value.calendar)
        except ConfigError as exc:
            raise ConfigError(f"{where}: session.calendar: {exc}") from exc
    try:
        return Session(value.timezone, value.open, value.close, value.flat, value.weekdays,
                       calendar)
    except ConfigError as exc:
        raise ConfigError(f"{where}: session: {exc}") from exc


def load_user_instruments(path: Path) -> dict[str, Instrument]:
    """Instruments defined in a YAML file (see the module docstring for the format)."""
    if not path.exists():
        return {}
    try:
        raw: Any = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of SYMBOL: {{tick_size: ..., ...}}")
    found: dict[str, Instrument] = {}
    for symbol, body in raw.items():
        where = f"{path}: instrument {symbol}"
        try:
            model = _InstrumentModel.model_validate(body or {})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                 for e in exc.errors())
            raise ConfigError(f"{where}: {problems}") from exc
        found[str(symbol).upper()] = Instrument(
            symbol=str(symbol).upper(), tick_size=model.tick_size, point_value=model.point_value,
            currency=model.currency, session=_session_from(model.session, where),
            description=model.description, reference_price=model.reference_price,
            daily_volatility=model.daily_volatility,
            trading_days_per_year=model.trading_days_per_year,
            synthetic_timeframe=model.synthetic_timeframe,
            costs=(DEFAULT_COSTS if model.costs is None
                   else Costs(**model.costs.model_dump())))
    return found


def list_instruments(home: Path | str | None = None) -> dict[str, Instrument]:
    """Built-in instruments overlaid with the user's ``instruments.yaml``, by symbol."""
    known = dict(BUILTIN_INSTRUMENTS)
    known.update(load_user_instruments(resolve_home(home) / USER_FILE_NAME))
    return known


def get_instrument(symbol: str, home: Path | str | None = None) -> Instrument:
    """The instrument for ``symbol`` (case-insensitive), or a ConfigError naming the known ones."""
    known = list_instruments(home)
    spec = known.get(symbol.upper())
    if spec is None:
        raise ConfigError(
            f"unknown instrument {symbol!r}; known: {', '.join(sorted(known))}. "
            f"Add it to {resolve_home(home) / USER_FILE_NAME} (see docs/instruments.md)")
    return spec
