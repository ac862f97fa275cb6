"""The evolution factory: models, generations, simulations, promotions (additive).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the four evolution tables."""
    op.create_table(
        "evolution_models",
        sa.Column("fingerprint", sa.String(64), primary_key=True),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("timeframe", sa.String(16), nullable=False),
        sa.Column("algorithm", sa.String(40), nullable=False),
        sa.Column("parent_fingerprint", sa.String(64), index=True),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("n_features", sa.Integer, nullable=False),
        sa.Column("features", sa.JSON, nullable=False),
        sa.Column("identity", sa.JSON, nullable=False),
        sa.Column("importance", sa.JSON, nullable=False),
        sa.Column("training", sa.JSON, nullable=False),
        sa.Column("run_operation_id", sa.String(64), index=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "evolution_generations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_operation_id", sa.String(64),
                  sa.ForeignKey("operations.id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("model_fingerprint", sa.String(64), nullable=False, index=True),
        sa.Column("parent_fingerprint", sa.String(64)),
        sa.Column("features", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reused", sa.Boolean, nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("jobs_total", sa.Integer, nullable=False),
        sa.Column("simulations", sa.JSON, nullable=False),
        sa.Column("best_sqn", sa.Float),
        sa.Column("best_profit_factor", sa.Float),
        sa.Column("best_validation_sqn", sa.Float),
        sa.Column("best_result", sa.JSON),
        sa.Column("top_results", sa.JSON),
        sa.Column("promoted", sa.Boolean, nullable=False),
        sa.Column("failed_criteria", sa.JSON),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("completed_at", sa.DateTime),
        sa.UniqueConstraint("run_operation_id", "generation",
                            name="uq_evolution_generations_run_generation"),
    )
    op.create_table(
        "evolution_simulations",
        sa.Column("fingerprint", sa.String(64), primary_key=True),
        sa.Column("model_fingerprint", sa.String(64), nullable=False, index=True),
        sa.Column("point", sa.JSON, nullable=False),
        sa.Column("result", sa.JSON, nullable=False),
        sa.Column("operation_id", sa.String(64)),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "evolution_promotions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model_fingerprint", sa.String(64), nullable=False, index=True),
        sa.Column("run_operation_id", sa.String(64), nullable=False, index=True),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("algorithm", sa.String(40), nullable=False),
        sa.Column("features", sa.JSON, nullable=False),
        sa.Column("point", sa.JSON, nullable=False),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("lineage", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("model_fingerprint", "run_operation_id",
                            name="uq_evolution_promotions_model_run"),
    )


def downgrade() -> None:
    """Drop the evolution tables."""
    for name in ("evolution_promotions", "evolution_simulations", "evolution_generations",
                 "evolution_models"):
        op.drop_table(name)
