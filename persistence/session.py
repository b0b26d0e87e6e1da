"""Engines and sessions; nothing is created at import time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

# libpq client-side limits so a network partition fails a PostgreSQL call instead of hanging a worker forever:
# connecting gives up after 10 s; a dead peer is detected by TCP keepalives (idle 10 s, then 3 probes 5 s apart)
# or, for unacknowledged writes, after 30 s (tcp_user_timeout, ms). Callers retry.
PG_CLIENT_TIMEOUTS: dict[str, Any] = {"connect_timeout": 10, "keepalives": 1, "keepalives_idle": 10,
                                      "keepalives_interval": 5, "keepalives_count": 3, "tcp_user_timeout": 30000}


def make_engine(url: str, *, connect_timeout_s: float | None = None, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and foreign keys so api and worker can share it.

    Elsewhere (PostgreSQL) pooled connections are pinged before use and, with ``connect_timeout_s``, a new one
    gives up after that long: during an outage a request fails fast (the API answers 503) instead of hanging."""
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"timeout": 30, "check_same_thread": False})
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() in ("psycopg2", "psycopg"):
        connect_args = {**PG_CLIENT_TIMEOUTS, **kwargs.get("connect_args", {})}
        if connect_timeout_s is not None:  # libpq takes whole seconds
            connect_args["connect_timeout"] = max(1, round(connect_timeout_s))
        kwargs["connect_args"] = connect_args
    return create_engine(url, **kwargs)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work is committed on success and rolled back on error."""
    with factory() as session:
        with session.begin():
            yield session
