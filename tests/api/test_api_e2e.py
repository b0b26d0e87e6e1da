"""End to end through HTTP with a REAL Celery worker process: synthetic data -> pretrain -> distill ->
finetune -> predict, in embedded mode (SQLite + kombu SQLAlchemy broker) and on PostgreSQL + Redis."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from service_helpers import WorkerProcess, first_video, make_settings, synthesize_dataset, tiny, wait_job

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(params=["embedded", "postgres-redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Any, WorkerProcess]]:
    extra: dict[str, Any] = {}
    if request.param == "postgres-redis":
        extra = {"database_url": request.getfixturevalue("pg_url"), "broker_url": request.getfixturevalue("redis_url")}
    settings = make_settings(tmp_path / "var", **extra)
    worker = WorkerProcess(settings, name=f"e2e-{request.param}@test", log_path=tmp_path / "worker.log").start()
    try:
        worker.wait_ready()
        yield request.param, settings, worker
    finally:
        worker.stop()


def _predict_checks(c: TestClient, dataset: dict[str, Any], model_id: int) -> None:
    models = c.get("/models").json()
    assert [m["id"] for m in models] == [model_id]
    assert models[0]["protocol"] and "video_top1" in models[0]["test"] and models[0]["labels"] == len(dataset["classes"])
    video = first_video(dataset)
    r = c.post("/predict", files={"file": (video.name, video.read_bytes(), "video/x-msvideo")}, data={"top_k": "2"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == model_id and len(body["top_k"]) == 2 and body["clips"] >= 1
    assert {t["label"] for t in body["top_k"]} <= set(dataset["classes"]) and body["latency_ms"] > 0
    assert body["thumbnails"] == []  # opt-in
    with_thumbs = c.post("/predict", files={"file": (video.name, video.read_bytes(), "video/x-msvideo")},
                         data={"thumbnails": "true"})
    assert with_thumbs.status_code == 200, with_thumbs.text
    thumbs = with_thumbs.json()["thumbnails"]
    assert len(thumbs) == len(body["frames_sampled"]) and all(t.startswith("data:image/png;base64,") for t in thumbs)
    again = c.post("/predict", params={"model": model_id},
                   files={"file": ("x.bin", video.read_bytes(), "application/octet-stream")})
    assert again.status_code == 200  # the client's name and type are ignored; the bytes decide
    truncated = c.post("/predict", files={"file": ("cut.avi", video.read_bytes()[:3000], "video/x-msvideo")})
    assert truncated.status_code == 422 and "cannot use this video" in truncated.json()["detail"]


def test_pipeline_to_prediction(backend: tuple[str, Any, WorkerProcess]) -> None:
    name, settings, worker = backend
    with TestClient(create_app(settings)) as c:
        health = c.get("/health").json()
        assert health["status"] == "ok" and health["workers"][0]["hostname"] == worker.name
        assert health["workers"][0]["device"] == "cpu"
        if name == "embedded":  # the first-run demo: one call, chained by the worker
            r = c.post("/demo", json={"epochs": 1, "classes": 3, "videos_per_class": 4, "max_steps_per_epoch": 2})
            assert r.status_code == 201, r.text
            dataset, synth, (teacher, student, tuned) = r.json()["dataset"], r.json()["synthesize"], r.json()["jobs"]
            assert dataset["status"] == "pending" and synth["kind"] == "synthesize" and synth["status"] == "queued"
            assert [j["status"] for j in (teacher, student, tuned)] == ["waiting", "waiting", "waiting"]
            assert teacher["after_id"] == synth["id"]  # the teacher waits for the worker to render the set
            for job in (synth, teacher, student, tuned):
                done = wait_job(c, job["id"], worker=worker)
                assert done["status"] == "completed", done
            dataset = c.get(f"/datasets/{dataset['id']}").json()
            assert dataset["status"] == "ready" and dataset["frames"]["train"]["max"] == 48
        else:
            dataset = synthesize_dataset(c, worker=worker)
            teacher = c.post("/jobs", json=tiny("pretrain", dataset["id"], retrieval=True)).json()
            assert wait_job(c, teacher["id"], worker=worker)["status"] == "completed"
            student = c.post("/jobs", json=tiny("distill", dataset["id"], teacher_job_id=teacher["id"],
                                                distill_target="both")).json()
            assert student["status"] == "queued", student
            assert wait_job(c, student["id"], worker=worker)["status"] == "completed"
            tuned = c.post("/jobs", json=tiny("finetune", dataset["id"], source_job_id=student["id"])).json()
            assert tuned["config"]["model"]["width"] == 0.125  # inherited from the source
            assert wait_job(c, tuned["id"], worker=worker)["status"] == "completed"
        student_view = c.get(f"/jobs/{student['id']}").json()
        assert student_view["lineage"]["teacher"]["id"] == teacher["id"]
        assert student_view["config"]["distill"]["teacher_checkpoint"].endswith("checkpoint.pt")
        assert [ch["id"] for ch in student_view["lineage"]["children"]] == [tuned["id"]]
        tuned_view = c.get(f"/jobs/{tuned['id']}").json()
        assert tuned_view["results"]["test"]["protocol"] and tuned_view["worker"] == worker.name
        assert tuned_view["attempts"] == 1 and tuned_view["code_version"]
        assert c.get(f"/jobs/{teacher['id']}/metrics").json()  # metrics landed
        with c.stream("GET", f"/jobs/{tuned['id']}/events", params={"poll_s": 0.1}) as r:
            text = "".join(r.iter_text())
        assert "event: metrics" in text and '"status": "completed"' in text and text.rstrip().endswith("}")
        _predict_checks(c, dataset, tuned["id"])
