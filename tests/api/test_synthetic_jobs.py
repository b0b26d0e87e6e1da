"""POST /datasets/synthetic renders on a worker ("synthesize" job), never in the API process: request bounds, the
work bound and the disk budget are checked before anything is written; the dataset is pending until its job
completes; jobs on it wait for that job; a real Celery worker renders with progress and can be cancelled."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from service_helpers import WorkerProcess, make_settings, synthesize_dataset, tiny, wait_job


def _counts(c: TestClient) -> tuple[int, int]:
    return c.get("/datasets").json()["count"], c.get("/jobs").json()["count"]


def test_bounds_work_limit_and_disk_budget_are_checked_before_accepting(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "var", synthetic_max_megapixels=5, synthetic_disk_budget_mb=1)
    with TestClient(create_app(settings)) as c:
        r = c.post("/datasets/synthetic", json={"frames": 601})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "frames"]
        # 4 x 10 x 100 x 64 x 48 = 12.3 megapixels > 5
        r = c.post("/datasets/synthetic", json={"classes": 4, "videos_per_class": 10, "frames": 100})
        assert r.status_code == 422, r.text
        msg = r.json()["detail"][0]["msg"]
        assert "classes x videos_per_class x frames x width x height" in msg and "SYNTHETIC_MAX_MEGAPIXELS" in msg
        assert "12 megapixels" in msg
        # one request alone over the 1 MiB budget (12 videos of ~110 KiB)
        r = c.post("/datasets/synthetic", json={"classes": 3, "videos_per_class": 4, "frames": 48})
        assert r.status_code == 422 and "SYNTHETIC_DISK_BUDGET_MB" in r.json()["detail"][0]["msg"], r.text
        assert _counts(c) == (0, 0)  # nothing written for a refused request

        started = time.monotonic()
        first = c.post("/datasets/synthetic", json={"classes": 2, "videos_per_class": 2, "frames": 48})
        assert first.status_code == 202, first.text
        assert time.monotonic() - started < 2  # nothing is rendered in the API
        body = first.json()
        assert body["dataset"]["status"] == "pending" and body["dataset"]["job_id"] == body["job"]["id"]
        assert body["job"]["kind"] == "synthesize" and body["job"]["status"] == "queued"
        assert not Path(body["dataset"]["path"]).exists()
        # the first set's estimate (~440 KiB, not on disk yet) counts: another ~660 KiB is over the budget
        r = c.post("/datasets/synthetic", json={"classes": 2, "videos_per_class": 3, "frames": 48})
        assert r.status_code == 507 and "SYNTHETIC_DISK_BUDGET_MB" in r.json()["detail"], r.text
        assert _counts(c) == (1, 1)

        # a job on the pending dataset waits for its synthesize job; its clip needs are checked against the
        # frames that job renders (48): a default 16-frame PCL tuple (64) is refused now
        waiting = c.post("/jobs", json=tiny("pretrain", body["dataset"]["id"]))
        assert waiting.status_code == 201 and waiting.json()["status"] == "waiting"
        assert waiting.json()["after_id"] == body["job"]["id"]
        too_long = c.post("/jobs", json={**tiny("pretrain", body["dataset"]["id"]), "clip": "default"})
        assert too_long.status_code == 422 and "has 48" in too_long.text
        # a cancelled synthesize job: the dataset is failed and refuses new jobs with the reason
        assert c.post(f"/jobs/{body['job']['id']}/cancel").status_code == 200
        assert c.get(f"/datasets/{body['dataset']['id']}").json()["status"] == "failed"
        r = c.post("/jobs", json=tiny("pretrain", body["dataset"]["id"]))
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "dataset_id"]
        assert "cancelled" in r.json()["detail"][0]["msg"]


def test_disk_already_used_by_synthetic_sets_counts_against_the_budget(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "var", synthetic_disk_budget_mb=1)
    folder = settings.data_roots[0] / "synthetic" / "old-set"
    folder.mkdir(parents=True)
    (folder / "v.avi").write_bytes(b"\0" * 900 * 1024)
    with TestClient(create_app(settings)) as c:
        r = c.post("/datasets/synthetic", json={"classes": 2, "videos_per_class": 2, "frames": 48})
        assert r.status_code == 507 and "already take" in r.json()["detail"], r.text
        (folder / "v.avi").unlink()
        assert c.post("/datasets/synthetic", json={"classes": 2, "videos_per_class": 2, "frames": 48}).status_code == 202


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_real_worker_renders_with_progress_and_a_cancel_stops_it(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "var", synthetic_max_megapixels=5000)
    worker = WorkerProcess(settings, name="synth@test", log_path=tmp_path / "worker.log").start()
    try:
        with TestClient(create_app(settings)) as c:
            worker.wait_ready()
            ds = synthesize_dataset(c, worker=worker)
            assert ds["frames"]["train"]["max"] == 40 and ds["counts"] and not ds["problems"]
            assert sum(v["train"] + v["test"] for v in ds["counts"].values()) == 12
            assert len(list(Path(ds["path"]).rglob("*.avi"))) == 12
            # a large set: progress moves video by video, and a cancel stops it between two videos
            big = c.post("/datasets/synthetic", json={"classes": 4, "videos_per_class": 20, "frames": 200,
                                                      "width": 320, "height": 240})
            assert big.status_code == 202, big.text
            job_id = big.json()["job"]["id"]
            running = wait_job(c, job_id, worker=worker, timeout=120,
                               predicate=lambda j: j["status"] == "running" and 0 < j["progress"] < 0.5)
            assert running["total_epochs"] == 1 and running["steps_per_epoch"] == 80
            assert c.post(f"/jobs/{job_id}/cancel").status_code == 200
            done = wait_job(c, job_id, worker=worker, timeout=60)
            assert done["status"] == "cancelled" and done["progress"] < 1, done
            failed = c.get(f"/datasets/{big.json()['dataset']['id']}").json()
            assert failed["status"] == "failed" and not Path(failed["path"]).exists()  # no half-rendered set left
    finally:
        worker.stop()
