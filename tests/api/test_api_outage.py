"""Issue 9 item 13: the database goes away under the API (the real PostgreSQL behind a TCP proxy the test cuts):
every route answers 503 JSON with Retry-After, /health answers 503 (a probe reading only status codes sees it),
and both recover once the link is back. No worker; the broker is the embedded SQLite one."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from api.main import create_app
from service_helpers import make_settings, render_dataset
from tcp_proxy import TcpProxy


def _via(url: str, proxy: TcpProxy) -> str:
    return make_url(url).set(host=proxy.host, port=proxy.port).render_as_string(hide_password=False)


def test_database_cut_is_503_json_then_recovers(pg_url: str, tmp_path: Path) -> None:
    u = make_url(pg_url)
    with TcpProxy(u.host or "127.0.0.1", u.port or 5432) as proxy:
        settings = make_settings(tmp_path / "var", database_url=_via(pg_url, proxy), db_connect_timeout_s=2)
        with TestClient(create_app(settings), raise_server_exceptions=False) as c:
            assert c.get("/jobs").status_code == 200
            assert c.get("/health").status_code == 200  # no workers: degraded, but up
            proxy.cut("reset")
            for path in ("/jobs", "/jobs/1", "/datasets", "/experiments", "/models"):
                t0 = time.monotonic()
                r = c.get(path)
                assert time.monotonic() - t0 < 10, f"{path} hung for {time.monotonic() - t0:.1f}s"
                assert r.status_code == 503, (path, r.status_code, r.text)
                assert r.headers["content-type"] == "application/json" and r.headers["retry-after"] == "5"
                detail = r.json()["detail"]
                assert "database is unreachable" in detail and str(proxy.port) not in detail  # cause: in the log
            r = c.post("/jobs", json={"kind": "pretrain", "dataset_id": 1})
            assert r.status_code == 503 and r.headers["retry-after"] == "5"
            h = c.get("/health")
            assert h.status_code == 503 and h.headers["retry-after"] == "5"
            assert h.json()["status"] == "unavailable" and "database unreachable" in h.json()["problems"]
            proxy.restore()
            assert c.get("/jobs").status_code == 200
            h = c.get("/health")
            assert h.status_code == 200 and h.json()["status"] == "degraded"
            assert h.json()["problems"] == ["no live workers: jobs stay queued until one starts"]


def test_broker_down_is_503_on_health_and_enqueue(tmp_path: Path) -> None:
    """A Redis broker nobody listens on: /health 503; a job that cannot be sent is 503 with Retry-After."""
    import socket

    with socket.socket() as s:  # a port with nothing behind it
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = make_settings(tmp_path / "var", broker_url=f"redis://127.0.0.1:{port}/0")
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        h = c.get("/health")
        assert h.status_code == 503 and h.json()["status"] == "unavailable"
        assert h.json()["problems"][0] == "broker unreachable" and h.headers["retry-after"] == "5"
        ds = render_dataset(c, classes=2, videos_per_class=2, frames=40)  # registering needs no broker
        r = c.post("/jobs", json={"kind": "pretrain", "dataset_id": ds["id"], "clip": "tiny"})
        assert r.status_code == 503 and r.headers["retry-after"] == "5", r.text


@pytest.mark.parametrize("mode", ["blackhole"])
def test_database_partition_fails_fast(pg_url: str, tmp_path: Path, mode: str) -> None:
    """A partition (packets vanish) on a new connection: the connect timeout bounds the wait."""
    u = make_url(pg_url)
    with TcpProxy(u.host or "127.0.0.1", u.port or 5432) as proxy:
        settings = make_settings(tmp_path / "var", database_url=_via(pg_url, proxy), db_connect_timeout_s=2)
        app = create_app(settings)
        with TestClient(app, raise_server_exceptions=False) as c:
            assert c.get("/jobs").status_code == 200
            proxy.cut(mode)
            app.state.sessions.kw["bind"].dispose()  # pooled connections would wait on the dead link forever
            t0 = time.monotonic()
            r = c.get("/jobs")
            assert r.status_code == 503 and time.monotonic() - t0 < 8
            proxy.restore()
            assert c.get("/jobs").status_code == 200
