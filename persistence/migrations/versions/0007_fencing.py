"""fencing: one metric row per (job, name, step), the attempt that wrote it, and when a job's message was sent

Duplicate metric rows (two attempts of a job that ran at once before fencing) are removed first, keeping
the newest row of each (job, name, step).

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from persistence.base import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "DELETE FROM metrics WHERE id NOT IN "
        "(SELECT keep FROM (SELECT MAX(id) AS keep FROM metrics GROUP BY job_id, name, step) AS newest)"
    )
    with op.batch_alter_table("metrics") as batch:
        batch.add_column(sa.Column("attempt", sa.Integer(), server_default="0", nullable=False))
        batch.drop_index("ix_metrics_job_id_name_step")
        batch.create_unique_constraint("uq_metrics_job_id_name_step", ["job_id", "name", "step"])
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("dispatched_at", UTCDateTime(), nullable=True))
    # queued jobs from before this revision count as sent when they were queued
    op.execute("UPDATE jobs SET dispatched_at = queued_at WHERE status = 'queued'")


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("dispatched_at")
    with op.batch_alter_table("metrics") as batch:
        batch.drop_constraint("uq_metrics_job_id_name_step", type_="unique")
        batch.create_index("ix_metrics_job_id_name_step", ["job_id", "name", "step"])
        batch.drop_column("attempt")
