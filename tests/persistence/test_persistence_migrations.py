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


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_fencing_migration_dedupes_metrics_then_forbids_duplicates(db: str, tmp_path: Path,
                                                                   request: pytest.FixtureRequest) -> None:
    """0007 on a database that holds the doubled epochs of two attempts run at once: the newest row of each
    (job, name, step) stays, and a duplicate cannot be written any more."""
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    url = f"sqlite:///{tmp_path / 'old.db'}" if db == "sqlite" else request.getfixturevalue("pg_url")
    upgrade(url, "0005")
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO jobs (id, kind, status, request, config, config_hash, attempts, "
                              "max_attempts, cancel_requested, progress, epoch, step, created_at, updated_at, queued_at)"
                              " VALUES (1, 'pretrain', 'queued', '{}', '{}', 'h', 0, 3, false, 0, 0, 0, "
                              "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
            for i, (step, value) in enumerate([(1, 0.5), (2, 0.4), (2, 0.3), (1, 0.2)], start=1):
                conn.execute(text("INSERT INTO metrics (id, job_id, name, step, epoch, value, time) "
                                  "VALUES (:id, 1, 'loss', :step, 1, :value, CURRENT_TIMESTAMP)"),
                             {"id": i, "step": step, "value": value})
        upgrade(url)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT step, value, attempt FROM metrics ORDER BY step")).all()
            assert [tuple(r) for r in rows] == [(1, 0.2, 0), (2, 0.3, 0)]
            assert conn.execute(text("SELECT dispatched_at IS NOT NULL FROM jobs")).scalar()
        with pytest.raises(IntegrityError):
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO metrics (job_id, name, step, epoch, value, time) "
                                  "VALUES (1, 'loss', 1, 1, 0.1, CURRENT_TIMESTAMP)"))
    finally:
        engine.dispose()
