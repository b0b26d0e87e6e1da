"""Issue 9 fault tests: two REAL Celery workers on the real PostgreSQL and Redis.

(a) the database is cut off (through a TCP proxy, for the first worker only) for longer than STALE_AFTER_S,
(b) the running worker is paused (SIGSTOP) past STALE_AFTER_S and resumed: the job is reclaimed and run by the
second worker as attempt 2, the first stops without writing anything more, each epoch is written once and
the job completes once. (c) jobs whose broker message was never sent (the API died between commit and send)
or was lost (the queue flushed) still run, exactly once.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, make_url, text

from api.main import create_app
from service_helpers import WorkerProcess, make_settings, render_dataset, tiny, wait_for, wait_job
from tcp_proxy import TcpProxy

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

STALE_S = 4.0


@pytest.fixture
def cluster(tmp_path: Path, pg_url: str, redis_url: str) -> Iterator[tuple[TestClient, Any, Path]]:
    settings = make_settings(tmp_path / "var", database_url=pg_url, broker_url=redis_url, heartbeat_s=0.5,
                             stale_after_s=STALE_S, dispatch_grace_s=2.0, cancel_poll_s=0.2)
    with TestClient(create_app(settings)) as c:
        yield c, settings, tmp_path


def _dataset(c: TestClient) -> dict[str, Any]:
    return render_dataset(c, classes=3, videos_per_class=4, frames=40)  # registered before any worker runs


def _metric_rows(settings: Any, job_id: int) -> list[tuple[str, int, int, int]]:
    engine = create_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT name, step, epoch, attempt FROM metrics WHERE job_id = :j"),
                                {"j": job_id}).all()
        return [tuple(r) for r in rows]  # type: ignore[misc]
    finally:
        engine.dispose()


@pytest.mark.parametrize("fault", ["database cut", "database partitioned", "worker paused"])
def test_superseded_worker_stops_and_the_job_runs_once(cluster: tuple[TestClient, Any, Path], fault: str) -> None:
    c, settings, tmp = cluster
    proxy = TcpProxy("127.0.0.1", make_url(settings.database_url).port or 5432)
    via_proxy = make_url(settings.database_url).set(host=proxy.host, port=proxy.port)
    first_settings = settings.model_copy(update={"database_url": via_proxy.render_as_string(hide_password=False)})
    first = WorkerProcess(first_settings, name="first@fault", log_path=tmp / "w1.log").start()
    second = WorkerProcess(settings, name="second@fault", log_path=tmp / "w2.log")
    epochs = 12
    try:
        first.wait_ready()
        ds = _dataset(c)
        job = c.post("/jobs", json=tiny("pretrain", ds["id"], epochs=epochs)).json()
        second.start()  # boots while the first trains; the job is already the first's
        wait_job(c, job["id"], worker=first, predicate=lambda j: j["worker"] == "first@fault" and j["epoch"] >= 1)
        second.wait_ready()
        if fault.startswith("database"):  # refused at once, or a partition where nothing answers
            proxy.cut("reset" if fault == "database cut" else "blackhole")
        else:
            os.killpg(first.proc.pid, signal.SIGSTOP)  # type: ignore[union-attr]
        time.sleep(0.5)  # a flush in flight when the fault hit has landed or failed by now
        at_fault = c.get(f"/jobs/{job['id']}").json()
        taken = wait_job(c, job["id"], worker=second, timeout=60,
                         predicate=lambda j: j["attempts"] == 2 and j["worker"] == "second@fault")
        assert "worker lost" not in (taken["error"] or "")  # the new attempt clears the old attempt's error
        if fault.startswith("database"):
            proxy.restore()
        else:
            os.killpg(first.proc.pid, signal.SIGCONT)  # type: ignore[union-attr]
        wait_for(lambda: "was superseded" in first.log_tail(400), timeout=60, what="the first worker to stop\n{log}",
                 log=first.log_tail)
        done = wait_job(c, job["id"], worker=second, timeout=150)
        assert (done["status"], done["attempts"], done["worker"]) == ("completed", 2, "second@fault"), done
        rows = _metric_rows(settings, job["id"])
        keys = [(name, step) for name, step, _, _ in rows]
        assert len(keys) == len(set(keys)), "a (name, step) metric row was written twice"
        assert sorted(e for name, _, e, _ in rows if name == "epoch/loss") == list(range(1, epochs + 1))
        late = [r for r in rows if r[3] == 1 and r[1] > at_fault["step"]]
        assert not late, f"the superseded attempt wrote after the fault: {late[:5]}"
        log1 = first.log_tail(2000)
        after = log1[log1.index("was superseded"):]
        assert "checkpoint epoch" not in after and f"job {job['id']} completed" not in after, after[:2000]
        assert len(c.get(f"/jobs/{job['id']}/checkpoint").content) > 1000
    finally:
        if first.proc is not None and first.proc.poll() is None:
            os.killpg(first.proc.pid, signal.SIGCONT)
        proxy.close()
        first.stop()
        second.stop()


def test_jobs_whose_message_was_never_sent_or_lost_run_once(cluster: tuple[TestClient, Any, Path]) -> None:
    """(c) job A is committed by the same submission code but its message is never sent (the API died between
    commit and send); jobs B and C are sent, then the Redis queue holding their messages is flushed. A worker
    started afterwards runs all three, each exactly once."""
    import redis

    from api.schemas import parse_request
    from api.services.submission import create_job

    c, settings, tmp = cluster
    ds = _dataset(c)
    with c.app.state.sessions() as session:  # type: ignore[attr-defined]
        never_sent = create_job(session, parse_request(tiny("pretrain", ds["id"])), settings=settings)
        session.commit()
        a = never_sent.id
    b, cc = (c.post("/jobs", json=tiny("pretrain", ds["id"])).json()["id"] for _ in range(2))
    broker = redis.Redis.from_url(settings.broker_url)
    assert broker.llen(settings.queue) == 2
    broker.delete(settings.queue)  # the per-test queue only: as a Redis restarted without persistence would
    positions = [c.get(f"/jobs/{j}").json()["queue_position"] for j in (a, b, cc)]
    assert positions == [1, 2, 3]
    worker = WorkerProcess(settings, name="sweeper@fault", log_path=tmp / "w.log").start()
    try:
        worker.wait_ready()
        for job_id in (a, b, cc):
            done = wait_job(c, job_id, worker=worker, timeout=120)
            assert (done["status"], done["attempts"]) == ("completed", 1), done
        time.sleep(2 * settings.heartbeat_s)  # a duplicate message, had one been sent, would be taken by now
        assert [c.get(f"/jobs/{j}").json()["attempts"] for j in (a, b, cc)] == [1, 1, 1]
        assert "re-sent" in worker.log_tail(400)
    finally:
        worker.stop()


def test_worker_survives_a_short_database_outage(cluster: tuple[TestClient, Any, Path]) -> None:
    """Item 13, worker side: the database is cut for less than STALE_AFTER_S (but longer than the half of it the
    worker trusts its hold without asking): heartbeat, metrics flush and should_stop() keep trying, the worker
    waits, confirms the job is still its own and goes on; nothing buffered meanwhile is lost, nothing doubled."""
    c, settings, tmp = cluster
    proxy = TcpProxy("127.0.0.1", make_url(settings.database_url).port or 5432)
    via_proxy = make_url(settings.database_url).set(host=proxy.host, port=proxy.port)
    only_settings = settings.model_copy(update={"database_url": via_proxy.render_as_string(hide_password=False)})
    worker = WorkerProcess(only_settings, name="only@fault", log_path=tmp / "w.log").start()
    epochs = 30  # tiny epochs take ~0.2 s: still training when the worker stops trusting its hold
    try:
        worker.wait_ready()
        ds = _dataset(c)
        job = c.post("/jobs", json=tiny("pretrain", ds["id"], epochs=epochs)).json()
        wait_job(c, job["id"], worker=worker, predicate=lambda j: j["epoch"] >= 2)
        proxy.cut("reset")
        time.sleep(STALE_S * 0.75)
        proxy.restore()
        done = wait_job(c, job["id"], worker=worker, timeout=120)
        assert (done["status"], done["attempts"], done["worker"]) == ("completed", 1, "only@fault"), done
        log = worker.log_tail(3000)
        assert "still ours" in log and "was superseded" not in log  # it waited, then went on
        rows = _metric_rows(settings, job["id"])
        assert sorted(e for name, _, e, _ in rows if name == "epoch/loss") == list(range(1, epochs + 1))
        steps = {step for name, step, _, _ in rows if name == "loss"}  # every epoch's last step is always logged
        per_epoch = done["steps_per_epoch"]
        assert {e * per_epoch for e in range(1, epochs + 1)} <= steps, "step metrics buffered in the outage were lost"
    finally:
        proxy.close()
        worker.stop()
