"""Response models of the routes the dashboard draws from (workers, queue, a research run's
views, a training run's days). Rows read from artifacts stay JSON objects: their columns are
the artifact's (docs/research.md, docs/trainer.md)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

Row = dict[str, Any]


class WorkerOut(BaseModel):
    """A worker process and its last heartbeat."""

    id: str
    hostname: str
    pid: int
    types: list[str] | None = Field(description="Job types it takes (null: every type).")
    concurrency: int = Field(description="Job slots.")
    status: str = Field(description="running, stopped or dead.")
    started_at: str | None
    heartbeat_at: str | None
    stopped_at: str | None
    jobs_done: int
    heartbeat_age_seconds: float | None = Field(description="Seconds since the heartbeat.")


class WorkerList(BaseModel):
    """Every registered worker, latest heartbeat first."""

    workers: list[WorkerOut]


class QueueOut(BaseModel):
    """Jobs per status."""

    jobs: dict[str, int] = Field(description="queued, running, completed, failed, cancelled.")
    depth: int = Field(description="Jobs waiting for a worker (queued).")


class PhasesOut(BaseModel):
    """The phases a run finished so far."""

    run_id: str
    done: list[str] = Field(description="In run order.")
    seconds: dict[str, float | None]
    phases: dict[str, Row] = Field(description="The figures each phase recorded.")


class ComboOut(BaseModel):
    """A template x timeframe combo of the sweep (rows with trades)."""

    template_id: str
    timeframe: str
    rows: int
    mean_pnl_per_trade: float | None
    best_pnl_per_trade: float | None


class HeatmapOut(BaseModel):
    """Mean PnL per trade per (target bin, stop bin); ``z[i][j]`` is target bin i, stop bin
    j (null: no row); ``counts`` the rows per cell."""

    template_id: str | None
    timeframe: str | None
    stop_labels: list[str]
    target_labels: list[str]
    z: list[list[float | None]]
    counts: list[list[int]]
    rows: int


class SweepOut(BaseModel):
    """The sweep's combos (best mean PnL per trade first) and one combo's heatmap."""

    total_rows: int = Field(description="Sweep and refinement rows.")
    combos: list[ComboOut]
    heatmap: HeatmapOut


class TiersOut(BaseModel):
    """The validation table (`validation.parquet`), best tiers first."""

    strategies: list[Row]
    count: int


class CurveOut(BaseModel):
    """One strategy's trades in order: exit time, PnL, cumulative PnL, segment."""

    strategy_id: str
    exit_time: list[str]
    pnl: list[float]
    equity: list[float]
    segment: list[str] = Field(description="in_sample or out_of_sample.")


class CurvesOut(BaseModel):
    """The equity curves of the best strategies."""

    train_end: str | None
    strategies: list[CurveOut]


class TemplatePoint(BaseModel):
    """A template of the run's library, as the z-momentum chart draws it."""

    template_id: str
    timeframes: list[str]
    abs_z: float | None
    abs_momentum_strength: float | None
    members: int
    direction: int
    oracle_win_rate: float | None
    mae_median: float | None
    mfe_median: float | None
    best_is_pnl: float | None = Field(description="Best in-sample PnL in the validation "
                                                  "table (null: not validated).")


class RunTemplatesOut(BaseModel):
    """The run's template library."""

    run_id: str
    count: int
    templates: list[TemplatePoint]


class CandlesOut(BaseModel):
    """Bars as columns."""

    ts: list[str]
    open: list[float]
    high: list[float]
    low: list[float]
    close: list[float]


class TemplateTradesOut(BaseModel):
    """One template, its matches at a timeframe replayed as trades, and the bars under them."""

    template: Row = Field(description="Every field of the template (docs/discovery.md).")
    timeframe: str | None
    timeframes: list[str]
    params: dict[str, float] | None = Field(description="The exit parameters used.")
    params_source: str = Field(description="validated, best sweep row, or none.")
    matches: int
    trades: list[Row]
    candles: CandlesOut


class TrainingDaysOut(BaseModel):
    """The days a training run has trained so far."""

    operation_id: str
    status: str
    days: list[Row] = Field(description="`days.parquet` rows, in order.")
    strongest_states: list[Row] | None = Field(description="The states with the highest "
                                                "posterior win rate (trainer.analysis).")
    strongest_from: str | None = Field(description="`log` (the finished run's), "
                                       "`checkpoint` (computed from the day's brain and "
                                       "trades while the run goes) or null.")
