"""Job lifecycle with a REAL worker process (embedded mode): cancel, resume, retry, and kill -9 recovery."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from service_helpers import WorkerProcess, make_settings, render_dataset, tiny, wait_job

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[tuple[TestClient, Any, Path]]:
    settings = make_settings(tmp_path / "var")
    with TestClient(create_app(settings)) as c:
        yield c, settings, tmp_path


def _dataset(c: TestClient) -> dict[str, Any]:
    return render_dataset(c)


def test_cancel_resume_retry(svc: tuple[TestClient, Any, Path]) -> None:
    c, settings, tmp = svc
    worker = WorkerProcess(settings, name="life@test", log_path=tmp / "worker.log").start()
    try:
        worker.wait_ready()
        ds = _dataset(c)
        # Long enough that the cancel lands mid-run even when a tiny epoch takes a fraction of a second.
        epochs = 15
        job = c.post("/jobs", json=tiny("pretrain", ds["id"], epochs=epochs)).json()
        wait_job(c, job["id"], worker=worker, predicate=lambda j: j["epoch"] >= 1)
        r = c.post(f"/jobs/{job['id']}/cancel")
        assert r.status_code == 200 and r.json()["cancel_requested"]
        cancelled = wait_job(c, job["id"], worker=worker)
        assert cancelled["status"] == "cancelled" and cancelled["checkpoint_available"], cancelled
        stopped_at = cancelled["epoch"]
        assert stopped_at < epochs
        resumed = c.post(f"/jobs/{job['id']}/resume").json()
        assert resumed["status"] == "queued" and resumed["id"] == job["id"]
        done = wait_job(c, job["id"], worker=worker)
        assert done["status"] == "completed" and done["attempts"] == 2 and done["epoch"] == epochs
        logs = "\n".join(c.get(f"/jobs/{job['id']}/logs", params={"tail": 1000}).json()["lines"])
        assert f"'start_epoch': {stopped_at}" in logs  # resumed from the checkpoint, not from scratch
        retried = c.post(f"/jobs/{job['id']}/retry").json()
        assert retried["id"] != job["id"] and retried["retry_of"] == job["id"] and retried["status"] == "queued"
        assert retried["config_hash"] == done["config_hash"]
        again = wait_job(c, retried["id"], worker=worker)
        assert again["status"] == "completed" and again["attempts"] == 1
        assert "'start_epoch': 0" in "\n".join(c.get(f"/jobs/{retried['id']}/logs").json()["lines"])
    finally:
        worker.stop()


def test_kill9_worker_mid_job_then_recovery(svc: tuple[TestClient, Any, Path]) -> None:
    c, settings, tmp = svc
    first = WorkerProcess(settings, name="doomed@test", log_path=tmp / "w1.log").start()
    second = WorkerProcess(settings, name="rescuer@test", log_path=tmp / "w2.log")
    try:
        first.wait_ready()
        ds = _dataset(c)
        epochs = 12  # enough that the kill lands mid-run on a fast machine
        job = c.post("/jobs", json=tiny("pretrain", ds["id"], epochs=epochs)).json()
        running = wait_job(c, job["id"], worker=first, predicate=lambda j: j["epoch"] >= 2)
        first.kill9()
        before = c.get(f"/jobs/{job['id']}/metrics", params={"max_points": 20000}).json()
        assert before["epoch/loss"] and running["worker"] == "doomed@test"
        second.start().wait_ready()
        done = wait_job(c, job["id"], worker=second, timeout=300)
        assert done["status"] == "completed", done
        assert done["attempts"] == 2 and done["worker"] == "rescuer@test"
        after = c.get(f"/jobs/{job['id']}/metrics", params={"max_points": 20000}).json()
        for name, points in before.items():  # nothing logged before the kill is lost
            steps_after = {p["step"] for p in after[name]}
            assert {p["step"] for p in points} <= steps_after, name
        assert [p["epoch"] for p in after["epoch/loss"]] == list(range(1, epochs + 1))
        logs = "\n".join(c.get(f"/jobs/{job['id']}/logs", params={"tail": 1000}).json()["lines"])
        assert "'start_epoch': 0" in logs and "attempt 2/" in logs
        assert any(f"'start_epoch': {e}" in logs for e in range(2, epochs))
    finally:
        first.stop()
        second.stop()
