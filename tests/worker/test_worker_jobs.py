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
from service_helpers import render_dataset, take_over_at, tiny
from worker.jobs import execute_job
from worker.state import make_runtime


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


def _claim(rt: Any, job_id: int, worker: str) -> Any:
    from worker.progress import Lease

    with rt.sessions.begin() as s:
        attempt = repo.claim_job(s, job_id, worker=worker, code_version=None)
    assert attempt is not None
    return Lease(attempt, sessions=rt.sessions, stale_after_s=rt.settings.stale_after_s)


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
    from api.schemas import DemoCreate
    from api.services.demo import create_demo

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
    first = JobCallback(_claim(rt, job["id"], "a"), settings=rt.settings)
    first.on_start({"total_epochs": 3, "steps_per_epoch": 4, "start_epoch": 0})
    first.on_epoch(epoch=1, metrics={"loss": 0.9, "pretext_acc": 0.3})
    # killed here: epoch 2 was checkpointed, its metrics never reached the database; the job is reclaimed
    with rt.sessions.begin() as s:
        assert repo.transition(s, job["id"], to=JobStatus.QUEUED, expected=[JobStatus.RUNNING])
    second = JobCallback(_claim(rt, job["id"], "b"), settings=rt.settings)
    second.on_start({"total_epochs": 3, "steps_per_epoch": 4, "start_epoch": 2})
    second.on_resume(history=[{"epoch": 1.0, "loss": 0.9, "pretext_acc": 0.3},
                              {"epoch": 2.0, "loss": 0.7, "pretext_acc": float("nan")}])
    second.on_epoch(epoch=3, metrics={"loss": 0.5, "pretext_acc": 0.5})
    series = client.get(f"/jobs/{job['id']}/metrics").json()
    assert [(p["epoch"], p["step"], p["value"]) for p in series["epoch/loss"]] == [(1, 4, 0.9), (2, 8, 0.7), (3, 12, 0.5)]
    assert [p["epoch"] for p in series["epoch/pretext_acc"]] == [1, 3]  # a non-finite value stays unstored


# ----------------------------------------------------------------- issue 9: exactly once, real reasons, clean ends


def _current_job(rt: Any) -> Any:
    from persistence.models import Worker

    with rt.sessions() as s:
        row = s.get(Worker, rt.hostname)
        return row.current_job_id if row is not None else None


@pytest.mark.parametrize("blocker", ["job dir is a file", "job.log is a folder"])
def test_failure_before_the_engine_starts_is_recorded_with_its_reason(client: TestClient, dataset: dict[str, Any],
                                                                      rt: Any, blocker: str) -> None:
    """Not "worker lost (no heartbeat)" minutes later: the job fails (or retries) now, saying why."""
    job = client.post("/jobs", json=tiny("pretrain", dataset["id"], max_attempts=2)).json()
    job_dir = rt.settings.job_dir(job["id"])
    if blocker == "job dir is a file":
        job_dir.parent.mkdir(parents=True, exist_ok=True)
        job_dir.write_text("not a folder")
        expected = "FileExistsError"
    else:
        (job_dir / "job.log").mkdir(parents=True)
        expected = "IsADirectoryError"
    sent = Sent()
    assert execute_job(job["id"], rt=rt, enqueue=sent, engine_run=_never).status == "requeued"
    body = client.get(f"/jobs/{job['id']}").json()
    assert body["status"] == "queued" and expected in body["error"] and sent == [(job["id"], 1.0)]
    assert execute_job(job["id"], rt=rt, enqueue=sent, engine_run=_never).status == "failed"
    body = client.get(f"/jobs/{job['id']}").json()
    assert body["status"] == "failed" and expected in body["error"] and "gave up after 2 attempts" in body["error"]
    assert "worker lost" not in body["error"] and _current_job(rt) is None


def test_superseded_attempt_stops_and_writes_nothing_more(client: TestClient, dataset: dict[str, Any],
                                                          rt: Any) -> None:
    """Mid-run the job is reclaimed and started by another worker (this one looked dead): the engine is stopped
    at its next should_stop(), no checkpoint, metric, progress or status of the old attempt lands afterwards."""
    job = client.post("/jobs", json=tiny("pretrain", dataset["id"])).json()
    rt.settings.cancel_poll_s = 0.0
    rt.settings.metrics_flush_rows = 1  # every step is flushed at once, so a late row would show

    out = execute_job(job["id"], rt=rt, enqueue=Sent(), engine_run=fake_engine(on_step=take_over_at(rt, job["id"])))
    assert out.status == "superseded" and "attempt 1" in out.detail and "other@worker" in out.detail
    body = client.get(f"/jobs/{job['id']}").json()
    assert (body["status"], body["attempts"], body["worker"]) == ("running", 2, "other@worker")
    assert not (rt.settings.job_dir(job["id"]) / "checkpoint.pt").exists()
    loss = client.get(f"/jobs/{job['id']}/metrics").json()["loss"]
    assert [p["step"] for p in loss] == [1, 2]  # flushed before the takeover; the run stopped right after it
    assert _current_job(rt) is None
    assert any("superseded" in line for line in client.get(f"/jobs/{job['id']}/logs").json()["lines"])


def test_data_loader_workers_end_with_the_job(client: TestClient, dataset: dict[str, Any], rt: Any) -> None:
    """Persistent DataLoader workers (~350 MB each on real data) must not outlive the job under an idle worker."""
    import os

    def children() -> set[int]:
        out = set()
        for status in Path("/proc").glob("[0-9]*/status"):
            try:
                fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
            except OSError:
                continue
            if fields.get("PPid", "").strip() == str(os.getpid()) and not fields.get("State", "").startswith("Z"):
                out.add(int(status.parent.name))
        return out

    before = children()
    job = client.post("/jobs", json=tiny("pretrain", dataset["id"], data_workers=2)).json()
    seen: set[int] = set()
    outcome = execute_job(job["id"], rt=rt, enqueue=Sent(),
                          engine_run=_watching(lambda: seen.update(children() - before)))
    assert outcome.status == "completed", _job(rt, job["id"]).error
    assert seen, "the job should have run DataLoader worker processes"
    assert children() - before == set()


def _watching(probe: Any) -> Any:
    """The real engine, with ``probe`` called from should_stop() (while the loaders' workers are up)."""
    from ml.engine import run

    def engine(config: Any, *, should_stop: Any, **kw: Any) -> Any:
        def stop() -> bool:
            probe()
            return bool(should_stop())

        return run(config, should_stop=stop, **kw)

    return engine


def test_full_disk_fails_the_job_naming_the_cause(client: TestClient, dataset: dict[str, Any], rt: Any) -> None:
    """A real full disk (a 256 KiB tmpfs as the job's directory): "no space left on device in <dir>", not torch's
    "[enforce fail at inline_container.cc] unexpected pos", and the worker no longer reports the job."""
    import subprocess

    job = client.post("/jobs", json=tiny("pretrain", dataset["id"], max_attempts=1)).json()
    job_dir = rt.settings.job_dir(job["id"])
    job_dir.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(job_dir)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        assert execute_job(job["id"], rt=rt, enqueue=Sent()).status == "failed"
        body = client.get(f"/jobs/{job['id']}").json()
        assert body["error"].startswith(f"no space left on device in {job_dir}"), body["error"]
        assert "inline_container" not in body["error"] and _current_job(rt) is None
        assert not [p for p in job_dir.iterdir() if p.name.endswith(".tmp")]  # no partial checkpoint left
    finally:
        subprocess.run(["umount", "-l", str(job_dir)], check=False)


def test_worker_start_leaves_a_beating_job_of_the_same_name_alone(client: TestClient, dataset: dict[str, Any],
                                                                   rt: Any) -> None:
    """Issue 9 item 18: a second instance named like a running one (embedded@host) starts; the job the first
    is still training keeps running. Only a stale heartbeat makes it reclaimable."""
    from worker.heartbeat import WorkerHeartbeat

    job = client.post("/jobs", json=tiny("pretrain", dataset["id"])).json()
    with rt.sessions.begin() as s:
        assert repo.claim_job(s, job["id"], worker=rt.hostname, code_version=None) is not None
    beat = WorkerHeartbeat(rt, enqueue=Sent(), device="cpu")
    beat.start()
    beat.stop()
    body = client.get(f"/jobs/{job['id']}").json()
    assert (body["status"], body["attempts"], body["error"]) == ("running", 1, None)


def test_api_startup_resends_the_message_of_a_job_it_never_sent(client: TestClient, dataset: dict[str, Any],
                                                                 rt: Any) -> None:
    """The API died between committing a job and sending its message: the next API start re-sends it (once a
    worker sits idle and the grace has passed), and only once."""
    from datetime import timedelta

    from sqlalchemy import create_engine, inspect, text, update

    from api.main import create_app
    from api.schemas import parse_request
    from api.services.submission import create_job
    from persistence.base import utcnow
    from persistence.models import Job

    settings = rt.settings
    with client.app.state.sessions() as session:  # type: ignore[attr-defined]
        job = create_job(session, parse_request(tiny("pretrain", dataset["id"])), settings=settings)
        session.commit()
        session.execute(update(Job).where(Job.id == job.id)
                        .values(dispatched_at=utcnow() - timedelta(seconds=2 * settings.dispatch_grace_s)))
        repo.upsert_worker(session, hostname="idle@test", current_job_id=None)
        session.commit()
    broker = create_engine(settings.broker_url.removeprefix("sqla+"))

    def messages() -> int:
        if "kombu_message" not in inspect(broker).get_table_names():
            return 0
        with broker.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM kombu_message")).scalar() or 0)

    before = messages()
    with TestClient(create_app(settings)):
        pass
    assert messages() == before + 1
    with TestClient(create_app(settings)):  # sent just now: not again
        pass
    assert messages() == before + 1
    broker.dispose()
