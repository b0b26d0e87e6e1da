"""Shared fixtures for the service tests (api/, worker/, persistence/); tests/ml has its own."""

from __future__ import annotations

import os
import random
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the project is not pip-installed; make api/, worker/, persistence/ importable
    sys.path.insert(0, str(ROOT))

from service_helpers import PG_URL, REDIS_URL  # noqa: E402


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL schema (search_path in the URL); skipped if the server is unreachable."""
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_URL)
    schema = f"svc_{uuid.uuid4().hex[:12]}"
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # noqa: BLE001
        admin.dispose()
        pytest.skip(f"PostgreSQL unreachable at {PG_URL} ({type(exc).__name__}: {exc}); set TEST_POSTGRES_URL")
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis database number picked at random (queues are unique per test too); skipped if unreachable."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"Redis unreachable at {REDIS_URL} ({type(exc).__name__}: {exc}); set TEST_REDIS_URL")
    yield f"{REDIS_URL.rstrip('/')}/{random.randint(1, 15)}"


@pytest.fixture
def settings(tmp_path: Path) -> Any:
    """Embedded-mode settings (SQLite + sqla broker) in a tmp dir, migrated."""
    from service_helpers import make_settings

    return make_settings(tmp_path / "var")


@pytest.fixture
def client(settings: Any) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from api.main import create_app

    with TestClient(create_app(settings)) as c:
        yield c
