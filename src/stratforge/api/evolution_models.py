"""Request and response models of the evolution routes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from stratforge.api.deps import SymbolName


class PromotionCriteria(BaseModel):
    """Promotion ("holy grail") criteria, inclusive bounds; null keeps the default."""

    model_config = ConfigDict(extra="forbid")

    sqn_min: float | None = None
    sqn_max: float | None = None
    profit_factor_min: float | None = None
    profit_factor_max: float | None = None
    trades_min: int | None = Field(None, ge=0, le=10**9)
    trades_max: int | None = Field(None, ge=0, le=10**9)
    weekly_consistency_max: float | None = None


class EvolutionRunRequest(BaseModel):
    """Settings of an evolution run (docs/evolution.md); every field optional, null means the
    default."""

    model_config = ConfigDict(extra="forbid")

    symbol: SymbolName | None = None
    timeframe: str | None = Field(None, max_length=8)
    reference_symbols: list[SymbolName] | None = Field(None, max_length=8)
    algorithm: str | None = Field(None, max_length=40)
    hyperparameters: dict[str, float | int | str | bool | list[float]] | None = None
    max_generations: int | None = Field(None, ge=1, le=50)
    prune_fraction: float | None = None
    min_features: int | None = Field(None, ge=1, le=1000)
    target: str | None = Field(None, max_length=20)
    horizon: int | None = Field(None, ge=1, le=10_000)
    train_fraction: float | None = None
    validation_fraction: float | None = None
    purge_bars: int | None = Field(None, ge=0, le=100_000)
    segments: int | None = Field(None, ge=1, le=20)
    start: str | None = Field(None, max_length=40)
    end: str | None = Field(None, max_length=40)
    thresholds: list[float] | None = Field(None, min_length=1, max_length=50)
    z_cutoffs: list[float] | None = Field(None, min_length=1, max_length=20)
    regimes: list[str] | None = Field(None, min_length=1, max_length=20)
    long_only: bool | None = None
    delay_bars: int | None = Field(None, ge=1, le=1000)
    commission: float | None = Field(None, ge=0, description=(
        "Commission per contract per side in the instrument's currency; null keeps the "
        "instrument's cost model."))
    spread_ticks: float | None = Field(None, ge=0, description=(
        "Full bid-ask spread in ticks; null keeps the instrument's cost model."))
    slippage_ticks: float | None = Field(None, ge=0, description=(
        "Slippage in ticks per market fill; null keeps the instrument's cost model."))
    fee_bps: float | None = Field(None, ge=0, description=(
        "Fee in basis points of notional per fill; null keeps the instrument's cost model."))
    stop_ticks: float | None = None
    target_ticks: float | None = None
    importance_repeats: int | None = Field(None, ge=1, le=50)
    importance_rows: int | None = Field(None, ge=100, le=10_000_000)
    seed: int | None = Field(None, ge=0, le=2**31 - 1)
    n_jobs: int | None = Field(None, ge=1, le=64)
    promotion: PromotionCriteria | None = None


class EvolutionRunStarted(BaseModel):
    """A queued evolution run."""

    operation_id: str
    status: str
    grid_points: int = Field(description="Simulations per generation.")


class EvolutionRunItem(BaseModel):
    """One evolution run in a list."""

    operation_id: str
    status: str
    symbol: str
    timeframe: str
    algorithm: str
    generations: int
    best_sqn: float | None = Field(description="Best out-of-sample SQN over the generations.")
    best_profit_factor: float | None
    promoted: int = Field(description="Generations whose model was promoted.")
    stop_reason: str | None
    created_at: str


class EvolutionRunList(BaseModel):
    """A page of evolution runs, newest first."""

    items: list[EvolutionRunItem]
    total: int
    limit: int
    offset: int


class GenerationOut(BaseModel):
    """One generation of a run."""

    generation: int
    model_fingerprint: str
    parent_fingerprint: str | None
    features: list[str]
    n_features: int
    status: str
    reused: bool = Field(description="The model was stored already and not retrained.")
    priority: int
    jobs_total: int
    jobs_done: int
    best_sqn: float | None = Field(description="Out-of-sample SQN of the grid point chosen "
                                               "on the validation span.")
    best_profit_factor: float | None
    best_validation_sqn: float | None
    best_result: dict[str, Any] | None
    top_results: list[dict[str, Any]]
    promoted: bool
    failed_criteria: list[str]
    created_at: str | None
    completed_at: str | None


class EvolutionRunDetail(EvolutionRunItem):
    """A run with its settings and generations."""

    parameters: dict[str, Any]
    progress: float
    error: str | None
    stop_detail: str | None
    generations: list[GenerationOut]


class AncestorOut(BaseModel):
    """One model of a lineage."""

    fingerprint: str
    generation: int
    parent_fingerprint: str | None
    n_features: int
    algorithm: str
    best_sqn: float | None
    best_profit_factor: float | None
    promoted: bool


class LineageOut(BaseModel):
    """A model and its ancestors, from the model back to the seed."""

    fingerprint: str
    ancestors: list[AncestorOut]


class PromotedOut(BaseModel):
    """A promoted model with its out-of-sample metrics and lineage."""

    fingerprint: str
    run_operation_id: str
    generation: int
    algorithm: str
    features: list[str]
    point: dict[str, Any]
    metrics: dict[str, Any]
    lineage: list[str]
    created_at: str | None


class PromotedList(BaseModel):
    """Promoted models, newest first."""

    items: list[PromotedOut]
