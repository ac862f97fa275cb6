"""The settings of a research run (what `stratforge run` takes), with the issue's defaults."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from stratforge.errors import ConfigError
from stratforge.timeframes import parse_timeframe

EXECUTION_FIELDS: tuple[str, ...] = ("executor", "workers", "ray_address", "checkpoint_every")
"""Settings that change how a run is executed, never its result."""

QUICK: dict[str, Any] = {
    "quick": True, "mc_iters": 200, "top_combos": 10,
    "refine_budget": 2_000, "refine_rounds": 10, "folds": 3, "pbo_configs": 32,
    "optimize_templates": 4, "optimize_iterations": 12, "optimize_members": 10,
}
"""What ``--quick`` changes (each can still be set explicitly); with no --timeframes a quick
run also takes fewer timeframes (see ``research.prepare.choose_timeframes``)."""
COST_OVERRIDES: tuple[str, ...] = ("commission", "spread_ticks", "slippage_ticks", "fee_bps")
"""Cost settings a run may override (None = the instrument's cost model); never searched."""


class ResearchConfig(BaseModel):
    """Every setting of a research run. Execution settings (``EXECUTION_FIELDS``) may differ
    between a run and its resumption; the others are fixed when the run starts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    symbol: str = "MNQ"
    timeframes: tuple[str, ...] | None = None
    quick: bool = False
    seed: int = 7
    train_fraction: float = Field(0.5, gt=0.0, lt=1.0)
    max_templates: int | None = Field(None, ge=1)
    # discovery: "full" scans every bar of every timeframe; "drill" is the fractal
    # drill-down (the top timeframe in full, each lower one inside its parents' windows)
    scan: Literal["drill", "full"] = "full"
    # optimize (per-template design of experiments, then fission; docs/research.md)
    optimize: bool = True
    optimize_templates: int | None = Field(None, ge=1)
    optimize_iterations: int = Field(60, ge=6)
    optimize_members: int = Field(20, ge=1)
    fission: bool = True
    fission_alpha: float = Field(0.01, gt=0.0, lt=1.0)
    seed_share: float = Field(0.25, ge=0.0, le=1.0)
    seed_scale: float = Field(0.05, gt=0.0)
    # matching
    match_threshold: float = Field(3.0, gt=0.0)
    match_bars: Literal["patterns", "all"] = "patterns"
    # sweep
    mc_iters: int = Field(2000, ge=1)
    sampler: Literal["sobol", "lhs", "uniform"] = "sobol"
    space_path: str | None = None
    commission: float | None = Field(None, ge=0.0)
    spread_ticks: float | None = Field(None, ge=0.0)
    slippage_ticks: float | None = Field(None, ge=0.0)
    fee_bps: float | None = Field(None, ge=0.0)
    fill: Literal["close", "next_open", "delayed_mid"] = "close"
    # ANOVA and refinement
    anova_min_trades: float = Field(5.0, ge=0.0)
    top_combos: int = Field(20, ge=0)
    refine_budget: int = Field(20_000, ge=0)
    refine_rounds: int = Field(50, ge=1)
    refine_min: int = Field(10, ge=1)
    mutation_scale: float = Field(0.1, gt=0.0)
    proposer: Literal["mutation", "tpe"] = "mutation"
    min_trades: int = Field(20, ge=1)
    # validation
    folds: int = Field(4, ge=0)
    min_is_trades: int = Field(10, ge=1)
    pbo_configs: int = Field(64, ge=2)
    pbo_splits: int = Field(10, ge=2)
    tiers: dict[str, float] = Field(default_factory=dict)
    # execution
    executor: Literal["serial", "local", "ray"] = "local"
    workers: int | None = Field(None, ge=1)
    ray_address: str | None = None
    checkpoint_every: int = Field(8, ge=1)

    @field_validator("symbol")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()

    @field_validator("timeframes", mode="before")
    @classmethod
    def _timeframes(cls, value: Any) -> tuple[str, ...] | None:
        if value is None:
            return None
        items = value.split(",") if isinstance(value, str) else list(value)
        names = [str(parse_timeframe(str(v).strip())) for v in items if str(v).strip()]
        if not names:
            raise ValueError("give at least one timeframe")
        if len(set(names)) != len(names):
            raise ValueError(f"repeated timeframe in {names}")
        return tuple(names)

    def result_settings(self) -> dict[str, Any]:
        """The settings that determine the result (everything but execution)."""
        return self.model_dump(mode="json", exclude=set(EXECUTION_FIELDS))

    @property
    def run_timeframes(self) -> tuple[str, ...]:
        """The timeframes of the run (a ConfigError before they are chosen)."""
        if self.timeframes is None:
            raise ConfigError("the run's timeframes are not chosen yet (they come from the "
                              "store: see research.prepare.choose_timeframes)")
        return self.timeframes

    @property
    def cost_overrides(self) -> dict[str, float | None]:
        """The run's cost overrides (None = the instrument's setting)."""
        return {name: getattr(self, name) for name in COST_OVERRIDES}

    @property
    def hierarchy(self) -> list[str]:
        """The timeframes from the longest down (the discovery and feature hierarchy)."""
        return sorted(self.run_timeframes, key=lambda tf: -parse_timeframe(tf).seconds)


def make_config(quick: bool = False, **values: Any) -> ResearchConfig:
    """A config from keyword values (None means "default"); ``quick`` applies ``QUICK``
    underneath. Bad values raise a ConfigError naming the setting."""
    given = {k: v for k, v in values.items() if v is not None}
    merged = {**(QUICK if quick else {}), **given}
    try:
        return ResearchConfig(**merged)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {e['msg']}"
                             for e in exc.errors())
        raise ConfigError(f"invalid research settings: {problems}") from None
