"""The settings of a training run (what `stratforge train` takes)."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from stratforge.costs import Costs
from stratforge.errors import ConfigError
from stratforge.instruments import Instrument
from stratforge.timeframes import parse_timeframe


class TrainConfig(BaseModel):
    """Every setting of a training run; a resumed run must use the same ones."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    symbol: str = "MNQ"
    timeframe: str | None = None  # None: the finest default timeframe of the store
    max_days: int | None = Field(None, ge=1)
    iterations: int = Field(200, ge=6)
    seed: int = 7
    templates: Literal["latest", "warmup"] = "latest"
    warmup_days: int = Field(10, ge=1)
    start: date | None = Field(None, description=(
        "First trade date to trade; default: the first day after the template library's "
        "training data. Days the library was trained on are refused unless "
        "allow_library_days."))
    allow_library_days: bool = Field(False, description=(
        "Trade days the template library was trained on, labelled in-sample and left out "
        "of the out-of-sample verdict. Default: false."))
    learn_from: Literal["champion", "best"] = Field("champion", description=(
        "What the brain learns from: 'champion' (default), the trades of the parameters "
        "chosen before each day (out of sample); 'best', the day's best iteration (in "
        "sample, optimistic)."))
    # the brain's gate
    min_probability: float = Field(0.5, ge=0.0, le=1.0)
    min_confidence: float = Field(0.6, ge=0.0, le=1.0)
    min_samples: int = Field(10, ge=0)
    # matching and trading
    match_threshold: float = Field(3.0, gt=0.0)
    # trading costs: overrides of the instrument's cost model (None keeps its value)
    commission: float | None = Field(None, ge=0.0)
    spread_ticks: float | None = Field(None, ge=0.0)
    slippage_ticks: float | None = Field(None, ge=0.0)
    fee_bps: float | None = Field(None, ge=0.0)
    min_trades: int = Field(5, ge=1)
    regret_after_bars: int = Field(3, ge=0)

    def costs_for(self, instrument: Instrument) -> Costs:
        """The cost model every simulated trade of the run pays: the instrument's own, with
        the settings given here replacing its values (costs are never searched)."""
        return instrument.costs.with_overrides(
            commission=self.commission, spread_ticks=self.spread_ticks,
            slippage_ticks=self.slippage_ticks, fee_bps=self.fee_bps)

    @field_validator("symbol")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()

    @field_validator("timeframe")
    @classmethod
    def _timeframe(cls, value: str | None) -> str | None:
        return None if value is None else str(parse_timeframe(value))


def make_train_config(**values: Any) -> TrainConfig:
    """A config from keyword values (None means "default"); bad values raise a ConfigError
    naming the setting."""
    given = {k: v for k, v in values.items() if v is not None}
    try:
        return TrainConfig(**given)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {e['msg']}"
                             for e in exc.errors())
        raise ConfigError(f"invalid training settings: {problems}") from None
