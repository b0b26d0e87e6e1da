"""The fault-test proxy against the real PostgreSQL: forwards, cuts (reset and blackhole), restores."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from service_helpers import PG_URL
from tcp_proxy import TcpProxy


def _via(proxy: TcpProxy) -> str:
    from sqlalchemy.engine import make_url

    return make_url(PG_URL).set(host=proxy.host, port=proxy.port).render_as_string(hide_password=False)


@pytest.mark.parametrize("mode", ["reset", "blackhole"])
def test_proxy_cuts_and_restores_postgres(mode: str) -> None:
    try:
        create_engine(PG_URL).connect().close()
    except OperationalError as exc:
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    with TcpProxy("127.0.0.1", 5432) as proxy:
        engine = create_engine(_via(proxy), pool_pre_ping=True,
                               connect_args={"connect_timeout": 2, "options": "-c statement_timeout=2000"})
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1
        proxy.cut(mode)
        if mode == "blackhole":  # a pooled connection would wait forever on a partition: only new ones time out
            engine.dispose()
        t0 = time.monotonic()
        with pytest.raises(OperationalError):
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        assert time.monotonic() - t0 < 10
        proxy.restore()
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 2")).scalar() == 2
        engine.dispose()
