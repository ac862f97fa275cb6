"""Response models of the routes the dashboard draws from (workers, queue, a research run's
views, a training run's days). Rows read from artifacts stay JSON objects: their columns are
the artifact's (docs/research.md, docs/trainer.md)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from stratforge.instruments import Instrument

Row = dict[str, Any]


class PriceFormat(BaseModel):
    """How to write the numbers of a symbol: prices and price distances with
    ``price_decimals`` decimals (from the tick size: 0.25 -> 2, 0.00001 -> 5), money in
    ``currency``."""

    symbol: str
    currency: str = Field(description="The currency of every PnL, fee and commission.")
    tick_size: float
    point_value: float = Field(description="Currency per one price unit and contract.")
    price_decimals: int = Field(description="Decimals that show every tick.")

    @classmethod
    def of(cls, instrument: Instrument) -> PriceFormat:
        """The format of ``instrument``."""
        return cls(symbol=instrument.symbol, currency=instrument.currency,
                   tick_size=instrument.tick_size, point_value=instrument.point_value,
                   price_decimals=instrument.price_decimals)


class RunMarketOut(BaseModel):
    """A research run's market: the `market` block its data phase recorded (summary.json
    states the same), else (before the data phase) what the instrument says."""

    source: str = Field(description="`run` (the data phase's block) or `instrument` (the "
                                    "run has not measured its market yet).")
    symbol: str
    currency: str
    tick_size: float
    point_value: float
    price_decimals: int
    base_timeframe: str | None = None
    timeframes: list[str] = Field(default_factory=list)
    session: str | None = None
    cost_model: Row | None = Field(None, description="Settings, per_fill_price, "
                                   "round_trip_price, round_trip_currency, description, "
                                   "reference_price.")
    per_timeframe: dict[str, Row] = Field(
        default_factory=dict, description="Per timeframe: yardstick_ticks, yardstick_price, "
        "in_sample_bars, resolved_space (each parameter's low/high in ticks and price "
        "units, or bars).")


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
    stop_price_labels: list[str] = Field(default_factory=list, description="The stop bins "
                                         "in price units, with the instrument's decimals.")
    target_price_labels: list[str] = Field(default_factory=list, description="The target "
                                           "bins in price units.")


class SweepOut(BaseModel):
    """The sweep's combos (best mean PnL per trade first) and one combo's heatmap."""

    total_rows: int = Field(description="Sweep and refinement rows.")
    combos: list[ComboOut]
    heatmap: HeatmapOut
    market: PriceFormat = Field(description="Price decimals and PnL currency.")


class TiersOut(BaseModel):
    """The validation table (`validation.parquet`), best tiers first, then by in-sample
    per-trade Sharpe."""

    strategies: list[Row]
    count: int
    market: PriceFormat = Field(description="Price decimals and PnL currency.")
    overfitting: dict[str, Any] | None = Field(
        None, description="The run's overfitting block (`overfitting.json`): trials raw, "
                          "eligible and effective, the DSR benchmark, the out-of-sample test, "
                          "the run PBO.")


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
    market: PriceFormat = Field(description="Price decimals and PnL currency.")


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
    market: PriceFormat = Field(description="Price decimals and PnL currency.")


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
    market: PriceFormat = Field(description="Price decimals and PnL currency.")


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
    market: PriceFormat = Field(description="Price decimals and PnL currency.")
