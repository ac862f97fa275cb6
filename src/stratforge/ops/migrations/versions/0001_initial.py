"""The first schema: operations, jobs, workers, events, experiments.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create every table of the first release."""
    op.create_table(
        "operations",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("type", sa.String(40), nullable=False, index=True),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("parent_id", sa.String(64),
                  sa.ForeignKey("operations.id", ondelete="SET NULL"), index=True),
        sa.Column("progress_percent", sa.Float, nullable=False),
        sa.Column("progress_step", sa.String(200), nullable=False),
        sa.Column("items_done", sa.Integer, nullable=False),
        sa.Column("items_total", sa.Integer, nullable=False),
        sa.Column("progress_message", sa.Text, nullable=False),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("result_summary", sa.JSON),
        sa.Column("error", sa.Text),
        sa.Column("created_at", sa.DateTime, nullable=False, index=True),
        sa.Column("started_at", sa.DateTime),
        sa.Column("completed_at", sa.DateTime),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.Column("worker_id", sa.String(120)),
        sa.Column("heartbeat_at", sa.DateTime),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("operation_id", sa.String(64),
                  sa.ForeignKey("operations.id", ondelete="CASCADE"), index=True),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("max_attempts", sa.Integer, nullable=False),
        sa.Column("worker_id", sa.String(120), index=True),
        sa.Column("heartbeat_at", sa.DateTime),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("started_at", sa.DateTime),
        sa.Column("finished_at", sa.DateTime),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_jobs_queued", "jobs", [sa.text("priority DESC"), "created_at", "id"],
                    postgresql_where=sa.text("status = 'queued'"),
                    sqlite_where=sa.text("status = 'queued'"))
    op.create_index("ix_jobs_status", "jobs", ["status"])
    op.create_table(
        "workers",
        sa.Column("id", sa.String(120), primary_key=True),
        sa.Column("hostname", sa.String(200), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("types", sa.JSON),
        sa.Column("concurrency", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("heartbeat_at", sa.DateTime, nullable=False),
        sa.Column("stopped_at", sa.DateTime),
        sa.Column("jobs_done", sa.Integer, nullable=False),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ts", sa.DateTime, nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("operation_id", sa.String(64), index=True),
        sa.Column("payload", sa.JSON, nullable=False),
    )
    op.create_table(
        "experiments",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False, unique=True),
        sa.Column("operation_id", sa.String(64), index=True),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("arm", sa.String(200), nullable=False, index=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("verdict", sa.String(16)),
        sa.Column("rejection_reason", sa.Text),
        sa.Column("training_metrics", sa.JSON),
        sa.Column("backtest_metrics", sa.JSON),
        sa.Column("assessment", sa.JSON),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("completed_at", sa.DateTime),
    )
