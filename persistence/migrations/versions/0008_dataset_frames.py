"""datasets.frames: the scanned frame counts per split (min, max, videos), checked against a job's clip needs

Revision ID: 0008
Revises: 0005
Create Date: 2026-12-02

(B and C add 0006 and 0007 in parallel; the lead re-chains down_revision at merge.)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("datasets") as batch:
        batch.add_column(sa.Column("frames", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("datasets") as batch:
        batch.drop_column("frames")
