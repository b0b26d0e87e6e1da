"""worker heartbeats

Revision ID: 0003
Revises: 0002
Create Date: 2025-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from persistence.base import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("hostname", sa.String(200), nullable=False),
        sa.Column("device", sa.String(200), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("code_version", sa.String(100), nullable=True),
        sa.Column("current_job_id", sa.Integer(), nullable=True),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("heartbeat_at", UTCDateTime(), nullable=False),
        sa.Column("stopped_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("hostname", name=op.f("pk_workers")),
    )


def downgrade() -> None:
    op.drop_table("workers")
