"""Migrations: upgrade head on an empty SQLite and PostgreSQL database, then autogenerate finds no diff."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from persistence import models  # noqa: F401
from persistence.base import Base
from persistence.migrate import upgrade
from persistence.session import make_engine

TABLES = {"alembic_version", "datasets", "jobs", "metrics", "workers", "api_tokens", "experiments",
          "experiment_jobs"}


def _check(url: str) -> None:
    upgrade(url)
    engine = make_engine(url)
    try:
        assert set(inspect(engine).get_table_names()) == TABLES
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
        assert diff == [], f"models and migrations disagree: {diff}"
        upgrade(url)  # idempotent
    finally:
        engine.dispose()


def test_upgrade_head_sqlite(tmp_path: Path) -> None:
    _check(f"sqlite:///{tmp_path / 'empty.db'}")


def test_upgrade_head_postgresql(pg_url: str) -> None:
    _check(pg_url)


def test_constraint_names_follow_convention() -> None:
    jobs = Base.metadata.tables["jobs"]
    names = {c.name for c in jobs.constraints}
    assert {"pk_jobs", "uq_jobs_idempotency_key", "fk_jobs_parent_id_jobs"} <= names


@pytest.mark.parametrize("table", sorted(TABLES - {"alembic_version"}))
def test_every_model_table_has_a_migration(table: str) -> None:
    assert table in Base.metadata.tables
