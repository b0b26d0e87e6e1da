"""datasets.frames (scanned frame counts per split, checked against a job's clip needs) and datasets.job_id
(the "synthesize" job that renders a synthetic dataset on a worker; the dataset is pending until it completes)

Revision ID: 0008
Revises: 0005
Create Date: 2026-12-02

(B and C add 0006 and 0007 in parallel; the lead re-chains down_revision at merge.)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("datasets") as batch:
        batch.add_column(sa.Column("frames", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("job_id", sa.Integer(), nullable=True))
        batch.create_index(op.f("ix_datasets_job_id"), ["job_id"])


def downgrade() -> None:
    with op.batch_alter_table("datasets") as batch:
        batch.drop_index(op.f("ix_datasets_job_id"))
        batch.drop_column("job_id")
        batch.drop_column("frames")
