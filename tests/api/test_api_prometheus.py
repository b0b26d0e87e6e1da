"""GET /metrics (issue 14 item 3): Prometheus text that prometheus-client's own parser reads, requests labelled by
route template, a scrape that stays bounded and answers while the database is down or partitioned."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.main import create_app
from persistence.session import make_engine, make_sessionmaker
from service_helpers import WorkerProcess, make_settings, render_dataset, tiny, wait_for, wait_job
from tcp_proxy import TcpProxy

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: TestClient) -> Samples:
    r = client.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=")
    out: Samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def named(samples: Samples, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {labels: v for (n, labels), v in samples.items() if n == name}


def test_metrics_parse_and_label_requests_by_route_template(client: TestClient) -> None:
    for job_id in (123456, 654321):
        assert client.get(f"/jobs/{job_id}").status_code == 404
    assert client.get("/no/such/path/42").status_code == 404
    samples = scrape(client)
    assert value(samples, "kdvideo_http_requests_total", method="GET", route="/jobs/{job_id}", status="404") == 2
    assert value(samples, "kdvideo_http_requests_total", method="GET", route="(unmatched)", status="404") == 1
    routes = {dict(labels)["route"] for labels in named(samples, "kdvideo_http_requests_total")}
    assert not any(any(ch.isdigit() for ch in r) for r in routes), routes  # templates only, never raw ids
    assert value(samples, "kdvideo_http_request_duration_seconds_count", method="GET", route="/jobs/{job_id}") == 2
    assert value(samples, "kdvideo_database_up") == 1
    assert value(samples, "kdvideo_queue_depth") == 0
    assert value(samples, "kdvideo_predict_slots") == client.app.state.settings.predict_concurrency
    assert value(samples, "kdvideo_predict_in_flight") == 0
    assert value(samples, "kdvideo_predict_rejected_total", reason="full") == 0
    assert value(samples, "kdvideo_uploads_limit") == client.app.state.settings.max_concurrent_uploads
    again = scrape(client)  # the first scrape itself is counted under its template
    assert value(again, "kdvideo_http_requests_total", method="GET", route="/metrics", status="200") == 1


def test_the_grafana_dashboard_queries_only_exposed_metrics(client: TestClient) -> None:
    """docs/grafana/kdvideo-dashboard.json: its datasource is a variable, and every kdvideo_* series its panels
    query is one /metrics exposes (a renamed metric fails here, not silently on a dashboard)."""
    import json
    import re

    path = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "kdvideo-dashboard.json"
    dash = json.loads(path.read_text())
    assert any(v["type"] == "datasource" and v["name"] == "datasource" for v in dash["templating"]["list"])
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert all(t["datasource"]["uid"] == "${datasource}" for p in dash["panels"] for t in p["targets"])
    r = client.get("/metrics")
    exposed = {s.name for f in text_string_to_metric_families(r.text) for s in f.samples} | {
        f.name for f in text_string_to_metric_families(r.text)}  # families without samples yet (no running job)
    exposed |= {f"{n}_total" for n in exposed} | {f"{n}_bucket" for n in exposed}
    queried = {m for e in exprs for m in re.findall(r"kdvideo_[a-z_]+", e)}
    assert len(queried) >= 15 and queried <= exposed, queried - exposed


def test_metrics_need_a_read_token_when_auth_is_on(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "var", auth="on")
    with TestClient(create_app(settings)) as c:
        assert c.get("/metrics").status_code == 401
        from persistence import repo
        from persistence.session import transaction

        with transaction(c.app.state.sessions) as session:
            _, raw = repo.create_token(session, name="prometheus", scope="read")
        r = c.get("/metrics", headers={"Authorization": f"Bearer {raw}"})
        assert r.status_code == 200 and "kdvideo_database_up 1.0" in r.text


def _scrape_timed(c: TestClient) -> tuple[Samples, float]:
    start = time.monotonic()
    samples = scrape(c)
    return samples, time.monotonic() - start


def test_metrics_answer_what_is_known_when_the_database_is_partitioned(tmp_path: Path, pg_url: str) -> None:
    """A blackholed database (connections hang) costs a scrape METRICS_DB_TIMEOUT_S at most, and a refused one
    answers at once: 200 with kdvideo_database_up 0 and the in-process figures, never a hang or a 500."""
    settings = make_settings(tmp_path / "var", database_url=pg_url, metrics_db_timeout_s=0.5)
    url = urlsplit(pg_url)
    with TcpProxy(url.hostname or "127.0.0.1", url.port or 5432) as proxy, TestClient(create_app(settings)) as c:
        proxied = pg_url.replace(f"{url.hostname}:{url.port}", f"127.0.0.1:{proxy.port}")
        engine = make_engine(proxied, connect_timeout_s=settings.db_connect_timeout_s)
        c.app.state.sessions = make_sessionmaker(engine)
        samples, _ = _scrape_timed(c)
        assert value(samples, "kdvideo_database_up") == 1 and value(samples, "kdvideo_queue_depth") == 0
        proxy.cut("blackhole")
        for _ in range(2):  # the second finds the first read still stuck and does not queue behind it
            samples, took = _scrape_timed(c)
            assert took < 3.0, took
            assert value(samples, "kdvideo_database_up") == 0
            assert value(samples, "kdvideo_queue_depth") is None  # not known: left out, not reported as 0
            assert value(samples, "kdvideo_predict_slots") == settings.predict_concurrency
        proxy.cut("reset")
        time.sleep(settings.db_connect_timeout_s + 0.5)  # the stuck read ends with the connect timeout
        samples, took = _scrape_timed(c)
        assert value(samples, "kdvideo_database_up") == 0 and took < 3.0
        proxy.restore()  # the next scrapes read the database again (the dead pooled connection is dropped)
        wait_for(lambda: value(scrape(c), "kdvideo_database_up") == 1, timeout=20, what="database_up 1 again")
        engine.dispose()


def test_predict_pool_and_upload_gate_count_refusals() -> None:
    from api.services.prediction_pool import PoolBusy, PredictPool
    from api.services.upload import UploadError, UploadGate

    pool = PredictPool(concurrency=1, queue=0)
    try:
        import threading

        release = threading.Event()
        first = pool.submit(release.wait)
        with pytest.raises(PoolBusy):
            pool.submit(lambda: None)
        assert (pool.rejected, pool.withdrawn) == (1, 0)
        release.set()
        first.future.result(timeout=5)
    finally:
        pool.shutdown()
    gate = UploadGate(1)
    with gate.slot():
        with pytest.raises(UploadError):
            with gate.slot():
                pass
    assert gate.refused == 1 and gate.active == 0



@pytest.mark.slow
@pytest.mark.timeout(300)
def test_metrics_move_when_a_job_runs_on_a_real_worker(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "var")
    worker = WorkerProcess(settings, name="prom@test", log_path=tmp_path / "worker.log").start()
    try:
        worker.wait_ready()
        with TestClient(create_app(settings)) as c:
            dataset = render_dataset(c)
            before = scrape(c)
            assert value(before, "kdvideo_worker_current_job", worker="prom@test") == 0
            assert value(before, "kdvideo_workers_live") == 1
            job = c.post("/jobs", json=tiny("pretrain", dataset["id"], epochs=3)).json()
            labels = {"job": str(job["id"]), "kind": "pretrain", "worker": "prom@test"}

            def training() -> Samples | None:
                s = scrape(c)
                return s if (value(s, "kdvideo_job_clips_per_second", **labels) or 0) > 0 else None

            running = wait_for(training, timeout=180, what="a running job with throughput", log=worker.log_tail)
            assert value(running, "kdvideo_jobs", kind="pretrain", status="running") == 1
            assert value(running, "kdvideo_worker_current_job", worker="prom@test") == job["id"]
            assert 0 <= (value(running, "kdvideo_worker_heartbeat_age_seconds", worker="prom@test") or -1) < 30
            assert wait_job(c, job["id"], worker=worker)["status"] == "completed"
            after = scrape(c)
            assert value(after, "kdvideo_jobs", kind="pretrain", status="completed") == 1
            assert value(after, "kdvideo_jobs", kind="pretrain", status="running") == 0
            assert value(after, "kdvideo_job_clips_per_second", **labels) is None  # only running jobs are listed
            posted = value(after, "kdvideo_http_requests_total", method="POST", route="/jobs", status="201")
            assert posted == 1
    finally:
        worker.stop()
