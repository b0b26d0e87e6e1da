"""One name per job kind: the API's "evaluate" jobs are "retrieve" jobs (the name ml.kinds, the CLI and the
stored configs already use); the stored requests' "kind" follows.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02

(W3 may add a migration in parallel; the lead re-chains down_revision at merge.)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_jobs = sa.table("jobs", sa.column("id", sa.Integer), sa.column("kind", sa.String(20)),
                 sa.column("request", sa.JSON))


def _rename(old: str, new: str) -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.select(_jobs.c.id, _jobs.c.request).where(_jobs.c.kind == old)).all()
    for job_id, request in rows:
        if isinstance(request, dict) and request.get("kind") == old:
            request = {**request, "kind": new}
        bind.execute(sa.update(_jobs).where(_jobs.c.id == job_id).values(kind=new, request=request))


def upgrade() -> None:
    _rename("evaluate", "retrieve")


def downgrade() -> None:
    _rename("retrieve", "evaluate")
