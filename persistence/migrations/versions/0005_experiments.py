"""experiments (research grids submitted as jobs)

Revision ID: 0005
Revises: 0004
Create Date: 2025-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from persistence.base import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("grid", sa.String(20), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], name=op.f("fk_experiments_dataset_id_datasets")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experiments")),
    )
    op.create_index(op.f("ix_experiments_dataset_id"), "experiments", ["dataset_id"])
    op.create_table(
        "experiment_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("backbone", sa.String(20), nullable=False),
        sa.Column("teacher_backbone", sa.String(20), nullable=True),
        sa.Column("fraction", sa.Float(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["experiment_id"], ["experiments.id"],
                                name=op.f("fk_experiment_jobs_experiment_id_experiments"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_experiment_jobs_job_id_jobs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experiment_jobs")),
        sa.UniqueConstraint("job_id", name=op.f("uq_experiment_jobs_job_id")),
    )
    op.create_index(op.f("ix_experiment_jobs_experiment_id"), "experiment_jobs", ["experiment_id"])


def downgrade() -> None:
    op.drop_table("experiment_jobs")
    op.drop_table("experiments")
