"""The database tables (SQLAlchemy 2 declarative models).

Times are naive UTC datetimes in every table, so they compare the same way on SQLite and
PostgreSQL; the API adds the zone when it writes them out. Changes after the first release
are additive only, each with its own Alembic migration (``ops/migrations/versions``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """The declarative base of every stratforge table."""


class Operation(Base):
    """A long piece of work: the operations contract of ARCHITECTURE.md."""

    __tablename__ = "operations"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    type: Mapped[str] = mapped_column(String(40), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    parent_id: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("operations.id", ondelete="SET NULL"), index=True)
    progress_percent: Mapped[float] = mapped_column(Float, default=0.0)
    progress_step: Mapped[str] = mapped_column(String(200), default="")
    items_done: Mapped[int] = mapped_column(Integer, default=0)
    items_total: Mapped[int] = mapped_column(Integer, default=0)
    progress_message: Mapped[str] = mapped_column(Text, default="")
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    result_summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    worker_id: Mapped[str | None] = mapped_column(String(120))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime)


class Job(Base):
    """One entry of the job queue; most jobs run one operation."""

    __tablename__ = "jobs"
    __table_args__ = (
        # the claim's ORDER BY, over queued rows only: a claim reads one index entry
        Index("ix_jobs_queued", text("priority DESC"), "created_at", "id",
              postgresql_where=text("status = 'queued'"),
              sqlite_where=text("status = 'queued'")),
        Index("ix_jobs_status", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    operation_id: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("operations.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    worker_id: Mapped[str | None] = mapped_column(String(120), index=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    error: Mapped[str | None] = mapped_column(Text)


class Worker(Base):
    """A worker process: where it runs, what it takes and when it was last alive."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(120), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    types: Mapped[list[str] | None] = mapped_column(JSON)
    concurrency: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(DateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime)
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime)
    jobs_done: Mapped[int] = mapped_column(Integer, default=0)


class Event(Base):
    """An append-only change feed (operation state and progress, jobs, the agent), read by the
    API's Server-Sent Events stream in id order."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ts: Mapped[datetime] = mapped_column(DateTime)
    kind: Mapped[str] = mapped_column(String(40))
    operation_id: Mapped[str | None] = mapped_column(String(64), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Experiment(Base):
    """One agent research cycle's design, outcome and assessment."""

    __tablename__ = "experiments"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    operation_id: Mapped[str | None] = mapped_column(String(64), index=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    arm: Mapped[str] = mapped_column(String(200), index=True)
    status: Mapped[str] = mapped_column(String(16))
    verdict: Mapped[str | None] = mapped_column(String(16))
    rejection_reason: Mapped[str | None] = mapped_column(Text)
    training_metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    backtest_metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    assessment: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime)


class EvolutionModel(Base):
    """A model of the evolution factory, by fingerprint; its files live under
    ``<home>/models/<fingerprint>/`` (the path is never taken from a caller)."""

    __tablename__ = "evolution_models"

    fingerprint: Mapped[str] = mapped_column(String(64), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(32))
    timeframe: Mapped[str] = mapped_column(String(16))
    algorithm: Mapped[str] = mapped_column(String(40))
    parent_fingerprint: Mapped[str | None] = mapped_column(String(64), index=True)
    generation: Mapped[int] = mapped_column(Integer)
    n_features: Mapped[int] = mapped_column(Integer)
    features: Mapped[list[str]] = mapped_column(JSON)
    identity: Mapped[dict[str, Any]] = mapped_column(JSON)
    importance: Mapped[dict[str, Any]] = mapped_column(JSON)
    training: Mapped[dict[str, Any]] = mapped_column(JSON)
    run_operation_id: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class EvolutionGeneration(Base):
    """One generation of an evolution run: its model, its simulations and best results."""

    __tablename__ = "evolution_generations"
    __table_args__ = (UniqueConstraint("run_operation_id", "generation",
                                       name="uq_evolution_generations_run_generation"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_operation_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("operations.id", ondelete="CASCADE"), index=True)
    generation: Mapped[int] = mapped_column(Integer)
    model_fingerprint: Mapped[str] = mapped_column(String(64), index=True)
    parent_fingerprint: Mapped[str | None] = mapped_column(String(64))
    features: Mapped[list[str]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    reused: Mapped[bool] = mapped_column(Boolean)
    priority: Mapped[int] = mapped_column(Integer)
    jobs_total: Mapped[int] = mapped_column(Integer)
    simulations: Mapped[list[str]] = mapped_column(JSON)
    best_sqn: Mapped[float | None] = mapped_column(Float)
    best_profit_factor: Mapped[float | None] = mapped_column(Float)
    best_validation_sqn: Mapped[float | None] = mapped_column(Float)
    best_result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    top_results: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    promoted: Mapped[bool] = mapped_column(Boolean)
    failed_criteria: Mapped[list[str] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime)


class EvolutionSimulation(Base):
    """A finished simulation of one model over one grid point, by simulation fingerprint."""

    __tablename__ = "evolution_simulations"

    fingerprint: Mapped[str] = mapped_column(String(64), primary_key=True)
    model_fingerprint: Mapped[str] = mapped_column(String(64), index=True)
    point: Mapped[dict[str, Any]] = mapped_column(JSON)
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    operation_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime)


class EvolutionPromotion(Base):
    """A model that met the promotion criteria out-of-sample, with its lineage."""

    __tablename__ = "evolution_promotions"
    __table_args__ = (UniqueConstraint("model_fingerprint", "run_operation_id",
                                       name="uq_evolution_promotions_model_run"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_fingerprint: Mapped[str] = mapped_column(String(64), index=True)
    run_operation_id: Mapped[str] = mapped_column(String(64), index=True)
    generation: Mapped[int] = mapped_column(Integer)
    algorithm: Mapped[str] = mapped_column(String(40))
    features: Mapped[list[str]] = mapped_column(JSON)
    point: Mapped[dict[str, Any]] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    lineage: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime)
