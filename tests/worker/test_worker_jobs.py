"""worker.jobs glue called directly (no Celery): the real engine for each path, plus a scripted fake engine
where a path needs precise timing (cancel at a given step, worker shutdown, transient errors)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from persistence import repo
from persistence.status import JobStatus
from service_helpers import render_dataset, tiny
from worker.jobs import execute_job
from worker.runtime import make_runtime


@pytest.fixture
def rt(settings: Any) -> Any:
    return make_runtime(settings, hostname="test@worker")


@pytest.fixture
def dataset(client: TestClient) -> dict[str, Any]:
    return render_dataset(client)


class Sent(list[tuple[int, float]]):
    def __call__(self, job_id: int, countdown: float) -> None:
        self.append((job_id, countdown))


def _job(rt: Any, job_id: int) -> Any:
    with rt.sessions() as s:
        return repo.get_job(s, job_id)


def fake_engine(*, fail: BaseException | None = None, steps: int = 6, stop_after: int | None = None,
                on_step: Any = None) -> Any:
    """Scripted stand-in for ml.engine.run, used only beside a real-engine test of the same path."""

    def run(config: Any, *, out_dir: Path, callback: Any, should_stop: Any, resume: bool) -> Any:
        callback.on_start({"device": "cpu", "total_epochs": 2, "steps_per_epoch": steps // 2, "train_videos": 4,
                           "start_epoch": 0})
        for step in range(1, steps + 1):
            callback.on_step(epoch=1 + (step - 1) // (steps // 2), step=step, metrics={"loss": 1 / step})
            if on_step:
                on_step(step)
            if should_stop():
                (out_dir / "checkpoint.pt").write_bytes(b"ckpt")
                return type("R", (), {"status": "stopped", "epochs_completed": 0, "results": {}, "checkpoint": None})
            if fail is not None and step == 2:
                raise fail
        (out_dir / "checkpoint.pt").write_bytes(b"ckpt")
        return type("R", (), {"status": "completed", "epochs_completed": 2, "results": {"ok": True},
                              "checkpoint": out_dir / "checkpoint.pt"})

    return run


# ----------------------------------------------------------------- real engine


def test_real_engine_completes_and_records_everything(client: TestClient, dataset: dict[str, Any], rt: Any) -> None:
    job = client.post("/jobs", json=tiny("pretrain", dataset["id"], epochs=2)).json()
    sent = Sent()
    outcome = execute_job(job["id"], rt=rt, enqueue=sent)
    assert outcome.status == "completed", _job(rt, job["id"]).error
    done = client.get(f"/jobs/{job['id']}").json()
    assert done["status"] == "completed" and done["progress"] == 1.0 and done["attempts"] == 1
    assert done["worker"] == "test@worker" and done["device"] == "cpu" and done["code_version"]
    assert done["total_epochs"] == 2 and done["checkpoint_available"] and done["results"]
    metrics = client.get(f"/jobs/{job['id']}/metrics").json()
    assert "loss" in metrics and len(metrics["epoch/loss"]) == 2
    assert any("completed" in line for line in client.get(f"/jobs/{job['id']}/logs").json()["lines"])
    assert len(client.get(f"/jobs/{job['id']}/checkpoint").content) > 1000
    # a redelivered message for a finished job does nothing
    assert execute_job(job["id"], rt=rt, enqueue=sent, engine_run=_never).status == "skipped"
    assert sent == []


def test_real_engine_bad_dataset_fails_without_retry(client: TestClient, dataset: dict[str, Any], rt: Any) -> None:
    job = client.post("/jobs", json=tiny("pretrain", dataset["id"])).json()
    shutil.rmtree(dataset["path"])  # the data vanished after submission
    sent = Sent()
    assert execute_job(job["id"], rt=rt, enqueue=sent).status == "failed"
    failed = client.get(f"/jobs/{job['id']}").json()
    assert failed["status"] == "failed" and "not retried" in failed["error"] and sent == []
    assert client.get(f"/jobs/{job['id']}/logs").json()["lines"]  # the log is kept


def test_real_engine_transient_error_is_retried_then_fails(client: TestClient, dataset: dict[str, Any],
                                                            rt: Any) -> None:
    job = client.post("/jobs", json=tiny("pretrain", dataset["id"], max_attempts=2)).json()
    (rt.settings.job_dir(job["id"]) / "checkpoint.pt").mkdir(parents=True)  # saving the checkpoint fails: OSError
    sent = Sent()
    first = execute_job(job["id"], rt=rt, enqueue=sent)
    assert first.status == "requeued" and sent == [(job["id"], 1.0)]
    assert _job(rt, job["id"]).status == JobStatus.QUEUED
    assert execute_job(job["id"], rt=rt, enqueue=sent).status == "failed"
    failed = client.get(f"/jobs/{job['id']}").json()
    assert failed["attempts"] == 2 and "gave up after 2 attempts" in failed["error"]


def _never(*a: Any, **k: Any) -> Any:
    raise AssertionError("the engine must not run")


# ----------------------------------------------------------------- scripted engine (timing-precise paths)


def test_cancel_flag_stops_at_the_next_poll(client: TestClient, dataset: dict[str, Any], rt: Any) -> None:
    job = client.post("/jobs", json=tiny("pretrain", dataset["id"])).json()

    def cancel_at(step: int) -> None:
        if step == 3:
            client.post(f"/jobs/{job['id']}/cancel")

    rt.settings.cancel_poll_s = 0.0
    assert execute_job(job["id"], rt=rt, enqueue=Sent(), engine_run=fake_engine(on_step=cancel_at)).status == "cancelled"
    body = client.get(f"/jobs/{job['id']}").json()
    assert body["status"] == "cancelled" and body["checkpoint_available"] and not body["cancel_requested"]
    assert len(client.get(f"/jobs/{job['id']}/metrics").json()["loss"]) == 3  # buffered rows flushed on stop


def test_worker_shutdown_requeues_without_counting_an_attempt(client: TestClient, dataset: dict[str, Any],
                                                               rt: Any) -> None:
    job = client.post("/jobs", json=tiny("pretrain", dataset["id"])).json()
    sent = Sent()
    out = execute_job(job["id"], rt=rt, enqueue=sent,
                      engine_run=fake_engine(on_step=lambda s: rt.stopping.set() if s == 2 else None))
    assert out.status == "requeued" and sent == [(job["id"], 0)]
    body = client.get(f"/jobs/{job['id']}").json()
    assert body["status"] == "queued" and body["attempts"] == 0 and "shut down" in body["error"]


def test_transient_error_retries_with_backoff(client: TestClient, dataset: dict[str, Any], rt: Any) -> None:
    job = client.post("/jobs", json=tiny("pretrain", dataset["id"], max_attempts=3)).json()
    sent = Sent()
    for _ in range(2):
        assert execute_job(job["id"], rt=rt, enqueue=sent, engine_run=fake_engine(fail=OSError("disk"))).status == "requeued"
    assert [d for _, d in sent] == [1.0, 2.0]
    assert execute_job(job["id"], rt=rt, enqueue=sent, engine_run=fake_engine()).status == "completed"
    assert client.get(f"/jobs/{job['id']}").json()["attempts"] == 3


def test_completion_releases_the_chained_successor(client: TestClient, dataset: dict[str, Any], rt: Any) -> None:
    from api.routes.demo import DemoCreate, create_demo

    with client.app.state.sessions.begin() as s:  # type: ignore[attr-defined]
        dataset_row, synth, jobs = create_demo(s, rt.settings, DemoCreate(epochs=1, classes=2, videos_per_class=4))
        synth_id, dataset_id, ids = synth.id, dataset_row.id, [j.id for j in jobs]
    assert _job(rt, synth_id).status == JobStatus.QUEUED
    assert [_job(rt, i).status for i in ids] == [JobStatus.WAITING] * 3
    assert client.get(f"/datasets/{dataset_id}").json()["status"] == "pending"
    sent = Sent()
    # the synthesize job renders and scans the set for real (the normal job path); its dataset becomes ready
    assert execute_job(synth_id, rt=rt, enqueue=sent).status == "completed"
    assert sent == [(ids[0], 0)] and _job(rt, ids[0]).status == JobStatus.QUEUED
    ready = client.get(f"/datasets/{dataset_id}").json()
    assert ready["status"] == "ready" and ready["classes"] and ready["frames"]["train"]["max"] == 48
    assert sum(v["train"] + v["test"] for v in ready["counts"].values()) == 8
    done = client.get(f"/jobs/{synth_id}").json()
    assert done["progress"] == 1.0 and done["results"]["videos"] == 8 and done["results"]["bytes"] > 0
    sent = Sent()
    assert execute_job(ids[0], rt=rt, enqueue=sent, engine_run=fake_engine()).status == "completed"
    assert sent == [(ids[1], 0)] and _job(rt, ids[1]).status == JobStatus.QUEUED


def test_failed_dependency_fails_its_waiting_jobs_with_the_reason(client: TestClient, dataset: dict[str, Any],
                                                                  rt: Any) -> None:
    teacher = client.post("/jobs", json=tiny("pretrain", dataset["id"])).json()
    student = client.post("/jobs", json=tiny("distill", dataset["id"], teacher_job_id=teacher["id"],
                                             after_job_id=teacher["id"])).json()
    tuned = client.post("/jobs", json=tiny("finetune", dataset["id"], source_job_id=student["id"],
                                           after_job_id=student["id"])).json()
    assert (student["status"], student["after_id"], tuned["status"]) == ("waiting", teacher["id"], "waiting")
    outcome = execute_job(teacher["id"], rt=rt, enqueue=Sent(), engine_run=fake_engine(fail=ValueError("bad")))
    assert outcome.status == "failed"
    s, t = client.get(f"/jobs/{student['id']}").json(), client.get(f"/jobs/{tuned['id']}").json()
    assert s["status"] == t["status"] == "failed"
    assert f"dependency job {teacher['id']} failed" in s["error"] and f"/jobs/{teacher['id']}/resume" in s["error"]
    assert f"dependency job {student['id']} failed" in t["error"]
    # a dependency that failed already cannot be chained on
    r = client.post("/jobs", json=tiny("pretrain", dataset["id"], after_job_id=teacher["id"]))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "after_job_id"]
    assert "resume it" in r.json()["detail"][0]["msg"]
    # resuming the teacher revives the chain it took down; completing it releases the student
    assert client.post(f"/jobs/{teacher['id']}/resume").status_code == 200
    s, t = client.get(f"/jobs/{student['id']}").json(), client.get(f"/jobs/{tuned['id']}").json()
    assert (s["status"], s["error"], t["status"], t["error"]) == ("waiting", None, "waiting", None)
    sent = Sent()
    assert execute_job(teacher["id"], rt=rt, enqueue=sent, engine_run=fake_engine()).status == "completed"
    assert sent == [(student["id"], 0)] and client.get(f"/jobs/{student['id']}").json()["status"] == "queued"


def test_cancelled_dependency_cancels_its_waiting_jobs(client: TestClient, dataset: dict[str, Any], rt: Any) -> None:
    first = client.post("/jobs", json=tiny("pretrain", dataset["id"])).json()
    then = client.post("/jobs", json=tiny("pretrain", dataset["id"], after_job_id=first["id"])).json()
    assert then["status"] == "waiting"
    client.post(f"/jobs/{first['id']}/cancel")
    after = client.get(f"/jobs/{then['id']}").json()
    assert after["status"] == "cancelled" and f"dependency job {first['id']} was cancelled" in after["error"]
    assert client.post(f"/jobs/{first['id']}/resume").status_code == 200
    assert client.get(f"/jobs/{then['id']}").json()["status"] == "waiting"  # the abandoned job waits again


def test_resume_restores_epoch_metrics_lost_between_checkpoint_and_report(client: TestClient, dataset: dict[str, Any],
                                                                          rt: Any) -> None:
    """A worker killed after checkpointing epoch 2 but before storing its metrics: the next attempt restores
    them from the checkpoint's history (once, without duplicating epoch 1)."""
    from worker.progress import JobCallback

    job = client.post("/jobs", json=tiny("pretrain", dataset["id"], epochs=3)).json()
    first = JobCallback(job["id"], sessions=rt.sessions, settings=rt.settings)
    first.on_start({"total_epochs": 3, "steps_per_epoch": 4, "start_epoch": 0})
    first.on_epoch(epoch=1, metrics={"loss": 0.9, "pretext_acc": 0.3})
    # killed here: epoch 2 was checkpointed, its metrics never reached the database
    second = JobCallback(job["id"], sessions=rt.sessions, settings=rt.settings)
    second.on_start({"total_epochs": 3, "steps_per_epoch": 4, "start_epoch": 2})
    second.on_resume(history=[{"epoch": 1.0, "loss": 0.9, "pretext_acc": 0.3},
                              {"epoch": 2.0, "loss": 0.7, "pretext_acc": float("nan")}])
    second.on_epoch(epoch=3, metrics={"loss": 0.5, "pretext_acc": 0.5})
    series = client.get(f"/jobs/{job['id']}/metrics").json()
    assert [(p["epoch"], p["step"], p["value"]) for p in series["epoch/loss"]] == [(1, 4, 0.9), (2, 8, 0.7), (3, 12, 0.5)]
    assert [p["epoch"] for p in series["epoch/pretext_acc"]] == [1, 3]  # a non-finite value stays unstored
