"""API validation through HTTP, no worker needed: bad jobs, paths, tokens, uploads, static files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from api.main import create_app
from persistence import repo
from persistence.base import utcnow
from persistence.models import Job
from persistence.session import make_engine, make_sessionmaker
from service_helpers import first_video, make_settings, render_dataset, tiny


@pytest.fixture
def dataset(client: TestClient) -> dict[str, Any]:
    return render_dataset(client)


def _loc(r: Any) -> list[Any]:
    return r.json()["detail"][0]["loc"]


def test_health_reports_database_broker_and_no_workers(client: TestClient) -> None:
    body = client.get("/health").json()
    assert body["database"]["ok"] and body["broker"]["ok"]
    assert body["workers"] == [] and body["status"] == "degraded" and body["auth_required"] is False


def test_register_dataset_counts_and_problems(client: TestClient, dataset: dict[str, Any], settings: Any) -> None:
    assert dataset["classes"] and all(v["train"] > 0 for v in dataset["counts"].values())
    # the same folder again (absolute or relative to the first data root): the dataset it already is, 200
    r = client.post("/datasets", json={"path": dataset["path"], "name": "again"})
    assert r.status_code == 200 and r.json()["id"] == dataset["id"], r.text
    rel = os.path.relpath(dataset["path"], settings.data_roots[0])
    r = client.post("/datasets", json={"path": rel, "scan": False})
    assert r.status_code == 200 and r.json()["id"] == dataset["id"]
    assert client.get("/datasets").json()["count"] == 1
    # other contents (a listed video gone): another dataset, with the problem named
    listed = sorted(Path(dataset["path"]).rglob("*.avi"))[0]
    listed.unlink()
    r = client.post("/datasets", json={"path": dataset["path"], "name": "again"})
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "again" and r.json()["id"] != dataset["id"]
    assert any(listed.name in str(p) for p in r.json()["problems"])
    assert client.get("/datasets").json()["count"] == 2


@pytest.mark.parametrize("how", ["absolute", "dotdot", "symlink"])
def test_dataset_path_outside_data_roots_is_403(client: TestClient, settings: Any, tmp_path: Path, how: str) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    root = settings.data_roots[0]
    path = {"absolute": str(outside), "dotdot": str(root / ".." / ".." / "elsewhere")}.get(how)
    if how == "symlink":
        (root / "link").symlink_to(outside, target_is_directory=True)
        path = str(root / "link")
    r = client.post("/datasets", json={"path": path})
    assert r.status_code == 403 and "outside the allowed data roots" in r.json()["detail"]


def test_job_validation_names_the_field(client: TestClient, dataset: dict[str, Any]) -> None:
    ds = dataset["id"]
    for body in (tiny("pretrain", ds, lr=-0.1), tiny("pretrain", ds, optim={"lr": -0.1})):  # flat (deprecated), nested
        r = client.post("/jobs", json=body)
        assert r.status_code == 422 and _loc(r) == ["body", "optim", "lr"]
    r = client.post("/jobs", json=tiny("pretrain", ds, model={"backbone": "resnet9000"}))
    assert r.status_code == 422 and _loc(r) == ["body", "model", "backbone"] and "r3d" in r.json()["detail"][0]["msg"]
    r = client.post("/jobs", json=tiny("pretrain", 999))
    assert r.status_code == 422 and _loc(r) == ["body", "dataset_id"]
    r = client.post("/jobs", json=tiny("pretrain", ds, teacher_job_id=1))
    assert r.status_code == 422 and _loc(r) == ["body", "teacher_job_id"] and "not a pretrain setting" in r.text
    r = client.post("/jobs", json=tiny("finetune", ds, mode="half"))
    assert r.status_code == 422 and _loc(r) == ["body", "mode"]
    for body in (tiny("pretrain", ds, overrides={"pretext.tuple_len": 1}), tiny("pretrain", ds, pretext={"tuple_len": 1})):
        r = client.post("/jobs", json=body)
        assert r.status_code == 422 and _loc(r) == ["body", "pretext", "tuple_len"]
    r = client.post("/jobs", json=tiny("distill", ds))
    assert r.status_code == 422 and _loc(r) == ["body", "teacher_job_id"]


def test_distill_with_unfinished_teacher_is_422(client: TestClient, dataset: dict[str, Any]) -> None:
    teacher = client.post("/jobs", json=tiny("pretrain", dataset["id"])).json()
    assert teacher["status"] == "queued" and teacher["queue_position"] == 1
    r = client.post("/jobs", json=tiny("distill", dataset["id"], teacher_job_id=teacher["id"]))
    assert r.status_code == 422 and _loc(r) == ["body", "teacher_job_id"] and "queued, not completed" in r.text
    r = client.post("/jobs", json=tiny("finetune", dataset["id"], source_job_id=teacher["id"]))
    assert r.status_code == 422 and _loc(r) == ["body", "source_job_id"]


def test_idempotency_key_returns_the_first_job(client: TestClient, dataset: dict[str, Any]) -> None:
    body = tiny("pretrain", dataset["id"])
    first = client.post("/jobs", json=body, headers={"Idempotency-Key": "abc"})
    again = client.post("/jobs", json=body, headers={"Idempotency-Key": "abc"})
    other = client.post("/jobs", json=body, headers={"Idempotency-Key": "def"})
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"] != other.json()["id"]
    assert client.get("/jobs").json()["count"] == 2


def test_idempotency_key_reused_with_a_different_body_is_422(client: TestClient, dataset: dict[str, Any]) -> None:
    """IETF Idempotency-Key draft: the same key with another payload is refused (422 naming the fields that
    differ); the same payload, even with its keys in another order, is still a replay (200, the same job)."""
    body = tiny("pretrain", dataset["id"])
    first = client.post("/jobs", json=body, headers={"Idempotency-Key": "k1"})
    assert first.status_code == 201, first.text
    changed = client.post("/jobs", json={**body, "epochs": 5}, headers={"Idempotency-Key": "k1"})
    assert changed.status_code == 422, changed.text
    err = changed.json()["detail"][0]
    assert err["loc"] == ["header", "idempotency-key"] and "differs in: optim.epochs" in err["msg"]
    assert f"job {first.json()['id']}" in err["msg"]
    other_kind = client.post("/jobs", json=tiny("distill", dataset["id"], alpha=0.0), headers={"Idempotency-Key": "k1"})
    assert other_kind.status_code == 422 and "kind" in other_kind.json()["detail"][0]["msg"]
    replay = client.post("/jobs", json=dict(reversed(list(body.items()))), headers={"Idempotency-Key": "k1"})
    assert replay.status_code == 200 and replay.json()["id"] == first.json()["id"]
    assert client.get("/jobs").json()["count"] == 1


def test_clip_needs_are_checked_against_the_datasets_frames(client: TestClient, dataset: dict[str, Any]) -> None:
    """A 40-frame set: a job whose samples need more frames than its longest training video is refused at
    submission (422 naming the field, the need and what the data has) instead of failing on the worker; the
    same for POST /experiments (nothing written), its plan, and a demo whose own jobs could not run."""
    assert dataset["frames"]["train"]["max"] == 40 and dataset["frames"]["train"]["videos"] > 0
    ds = dataset["id"]
    r = client.post("/jobs", json={**tiny("pretrain", ds), "clip": "default"})  # 16x3 + 8x2 = 64 frames
    assert r.status_code == 422, r.text
    assert _loc(r) == ["body", "clip"] and "needs 64 frames per video" in r.text and "has 40" in r.text
    r = client.post("/jobs", json=tiny("pretrain", ds, frames=12))  # 12x3 + 8x2 = 52
    assert r.status_code == 422 and _loc(r) == ["body", "clip"] and "needs 52 frames" in r.text
    r = client.post("/jobs", json=tiny("pretrain", ds, pretext={"interval": 20}))  # 8x3 + 20x2 = 64
    assert r.status_code == 422 and _loc(r) == ["body", "pretext"] and "needs 64" in r.text
    assert client.get("/jobs").json()["count"] == 0
    assert client.post("/jobs", json=tiny("pretrain", ds)).status_code == 201  # 8x3 + 8x2 = 40 fits
    grid = {"dataset_id": ds, "grid": "pair", "clip": "tiny", "frames": 16, "epochs": 1, "seeds": [0]}
    plan = client.post("/experiments/plan", json=grid)
    assert plan.status_code == 422 and _loc(plan) == ["body", "frames"] and "needs 64 frames" in plan.text
    exp = client.post("/experiments", json=grid)
    assert exp.status_code == 422 and _loc(exp) == ["body", "frames"]
    assert client.get("/experiments").json()["count"] == 0 and client.get("/jobs").json()["count"] == 1
    assert client.post("/experiments/plan", json={**grid, "frames": 8}).status_code == 200
    datasets = client.get("/datasets").json()["count"]
    demo = client.post("/demo", json={"frames": 32})
    assert demo.status_code == 422 and _loc(demo) == ["body", "frames"] and "frames >= 40" in demo.text
    assert client.get("/datasets").json()["count"] == datasets  # refused before anything was rendered


def test_job_is_stored_with_its_ml_config(client: TestClient, dataset: dict[str, Any]) -> None:
    job = client.post("/jobs", json=tiny("pretrain", dataset["id"], lr=0.05, name="t")).json()
    assert job["config"]["optim"]["lr"] == 0.05 and job["config"]["model"]["width"] == 0.125
    assert job["config"]["clip"]["crop"] == 32 and job["config_hash"] and job["request"]["optim"]["lr"] == 0.05
    listed = client.get("/jobs", params={"kind": "pretrain", "status": "queued", "limit": 1}).json()
    assert listed["count"] == 1 and listed["data"][0]["id"] == job["id"]
    assert client.get("/jobs", params={"kind": "finetune"}).json()["count"] == 0
    assert client.get("/jobs/999").status_code == 404


def test_cancel_queued_job_is_immediate_and_resume_requeues(client: TestClient, dataset: dict[str, Any]) -> None:
    job = client.post("/jobs", json=tiny("pretrain", dataset["id"])).json()
    r = client.post(f"/jobs/{job['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert client.post(f"/jobs/{job['id']}/cancel").status_code == 409
    assert client.post(f"/jobs/{job['id']}/resume").json()["status"] == "queued"
    assert client.post(f"/jobs/{job['id']}/retry").status_code == 409  # not final


def test_metrics_json_csv_logs_checkpoint(client: TestClient, dataset: dict[str, Any], settings: Any) -> None:
    job = client.post("/jobs", json=tiny("pretrain", dataset["id"])).json()
    sessions = make_sessionmaker(make_engine(settings.database_url))
    with sessions.begin() as s:
        repo.add_metrics(s, job["id"], [{"name": "loss", "step": i, "epoch": 1, "value": 1 / i, "time": utcnow()}
                                        for i in range(1, 301)])
    data = client.get(f"/jobs/{job['id']}/metrics", params={"max_points": 50}).json()
    assert len(data["loss"]) == 50 and data["loss"][-1]["step"] == 300
    csv = client.get(f"/jobs/{job['id']}/metrics", params={"names": "loss", "since_step": 291},
                     headers={"Accept": "text/csv"})
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[0] == "name,step,epoch,value,time" and len(csv.text.splitlines()) == 11
    assert client.get(f"/jobs/{job['id']}/logs").json()["lines"] == []
    assert client.get(f"/jobs/{job['id']}/checkpoint").status_code == 404


def test_events_stream_ends_with_the_job(client: TestClient, dataset: dict[str, Any]) -> None:
    job = client.post("/jobs", json=tiny("pretrain", dataset["id"])).json()
    client.post(f"/jobs/{job['id']}/cancel")
    with client.stream("GET", f"/jobs/{job['id']}/events", params={"poll_s": 0.1}) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        text = "".join(r.iter_text())
    assert "event: status" in text and '"status": "cancelled"' in text and "event: end" in text


def test_events_carry_job_fields_and_resume_after_the_history(client: TestClient, dataset: dict[str, Any],
                                                               settings: Any) -> None:
    import json

    job = client.post("/jobs", json=tiny("pretrain", dataset["id"])).json()
    sessions = make_sessionmaker(make_engine(settings.database_url))
    with sessions.begin() as s:
        repo.add_metrics(s, job["id"], [{"name": "loss", "step": i, "epoch": 1, "value": 1 / i, "time": utcnow()}
                                        for i in range(1, 6)])
    history = client.get(f"/jobs/{job['id']}/metrics")
    last_id = int(history.headers["X-Last-Metric-Id"])
    with sessions.begin() as s:
        repo.add_metrics(s, job["id"], [{"name": "loss", "step": 6, "epoch": 1, "value": 0.1, "time": utcnow()}])
        s.execute(update(Job).where(Job.id == job["id"]).values(total_epochs=3, steps_per_epoch=4))  # test setup
    client.post(f"/jobs/{job['id']}/cancel")

    def stream(**kw: Any) -> tuple[list[Any], dict[str, Any]]:
        with client.stream("GET", f"/jobs/{job['id']}/events", params={"poll_s": 0.1, **kw.pop("params", {})},
                           **kw) as r:
            text = "".join(r.iter_text())
        def data(block: str) -> Any:  # the block's data line (FastAPI writes event, data, id in that order)
            return json.loads(next(line[len("data: "):] for line in block.splitlines() if line.startswith("data: ")))

        rows = [row for block in text.split("\n\n") if "event: metrics" in block for row in data(block)]
        status = data(next(b for b in text.split("\n\n") if "event: status" in b))
        return rows, status

    rows, status = stream(params={"after_id": last_id})
    assert [r["step"] for r in rows] == [6]  # only what /metrics did not already return
    for key in ("steps_per_epoch", "total_epochs", "progress", "eta_s", "queue_position", "started_at",
                "finished_at"):
        assert key in status, key
    assert status["steps_per_epoch"] == 4 and status["total_epochs"] == 3 and status["finished_at"]
    assert [r["step"] for r in stream()[0]] == [1, 2, 3, 4, 5, 6]
    assert [r["step"] for r in stream(headers={"Last-Event-ID": str(last_id + 1)})[0]] == []


@pytest.mark.parametrize("kind", ["pretrain", "distill", "finetune", "retrieve", "evaluate"])
def test_job_defaults_come_from_the_ml_config(client: TestClient, kind: str) -> None:
    from api.schemas.job_request import legacy_names
    from ml import kinds
    from ml.config import ClipSpec, FinetuneConfig, OptimConfig, path_fields

    d = client.get("/jobs/defaults", params={"kind": kind}).json()
    kind = "retrieve" if kind == "evaluate" else kind  # the deprecated alias answers for retrieve
    assert d["kind"] == kind
    config = d["config"]
    for dotted in path_fields(kinds.config_class(kind)):  # no server path in the defaults either
        *parents, leaf = dotted.split(".")
        node = config
        for p in parents:
            node = node.get(p) or {}
        assert leaf not in node, dotted
    assert set(d["values"]) >= set(legacy_names(kind))  # the deprecated flat view
    assert d["clips"]["default"] == {"frames": ClipSpec().frames, "crop": ClipSpec().crop}
    if kind in ("pretrain", "distill"):
        assert config["optim"]["epochs"] == OptimConfig().epochs == d["values"]["epochs"]
        assert config["eval"]["retrieval"] is True and d["inherited"] == []
    if kind == "finetune":
        assert config["optim"]["lr"] == FinetuneConfig.model_fields["optim"].default.lr == d["values"]["lr"]
        assert "model.backbone" in d["inherited"] and config["mode"] == "full"
    if kind == "distill":
        assert config["distill"]["alpha"] == 1.0  # what POST /jobs makes of an unset alpha (ml.kinds defaults)
    tiny = client.get("/jobs/defaults", params={"kind": kind, "recipe": "tiny"}).json()
    assert tiny["recipe"] == "tiny" and "tiny" in d["recipes"]
    if kind != "retrieve":
        assert tiny["config"]["clip"]["crop"] == 32 and tiny["config"]["model"]["width"] == 0.125


def test_tokens_required_when_auth_on(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "var", auth="on")
    sessions = make_sessionmaker(make_engine(settings.database_url))
    with sessions.begin() as s:
        _, token = repo.create_token(s, name="test")
    with TestClient(create_app(settings)) as c:
        r = c.post("/datasets/synthetic", json={"classes": 2, "videos_per_class": 2})
        assert r.status_code == 401 and "Bearer" in r.json()["detail"]
        assert c.post("/predict", files={"file": ("a.avi", b"x")}).status_code == 401
        assert c.post("/jobs", json=tiny("pretrain", 1), headers={"Authorization": "Bearer nope"}).status_code == 401
        ok = c.post("/datasets/synthetic", json={"classes": 2, "videos_per_class": 2},
                    headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 202
        assert c.get("/jobs").status_code == 401  # reads need a token too (issue 9 item 4)
        assert c.get("/jobs", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert c.get("/health").json()["auth_required"] is True


def test_auth_defaults_on_beyond_loopback(tmp_path: Path) -> None:
    from persistence.settings import Settings

    assert Settings(var_dir=tmp_path, host="0.0.0.0").auth_required
    assert not Settings(var_dir=tmp_path, host="127.0.0.1").auth_required
    assert Settings(var_dir=tmp_path, host="127.0.0.1", auth="on").auth_required


def test_upload_checks_before_any_model(tmp_path: Path, dataset: dict[str, Any]) -> None:
    video = first_video(dataset).read_bytes()
    settings = make_settings(tmp_path / "small", max_upload_mb=len(video) * 2 / 1024 / 1024)
    with TestClient(create_app(settings)) as c:
        r = c.post("/predict", files={"file": ("big.avi", video * 3, "video/avi")})
        assert r.status_code == 413 and "limit" in r.json()["detail"]
        r = c.post("/predict", files={"file": ("fake.avi", b"hello, this is text, not video" * 10, "video/avi")})
        assert r.status_code == 415 and "AVI" in r.json()["detail"]
        r = c.post("/predict", files={"file": ("empty.avi", b"", "video/avi")})
        assert r.status_code == 422 and "empty" in r.json()["detail"]
        r = c.post("/predict", data={"model": "1"})
        assert r.status_code == 422
        r = c.post("/predict", files={"file": ("ok.avi", video, "application/octet-stream")})
        assert r.status_code == 404 and "no fine-tuned model" in r.json()["detail"]
        r = c.post("/predict", files={"file": ("ok.avi", video)}, data={"model": "42"})
        assert r.status_code == 404 and "GET /models" in r.json()["detail"]
        assert c.get("/models").json() == []
        assert not list((settings.var_dir / "uploads").iterdir())  # temp files removed


class _StuckModel:
    """A stand-in model cache whose predictions block until ``release`` is set (the real decode path is covered
    end to end), recording each video it was asked to classify."""

    def __init__(self, release: Any) -> None:
        self.release, self.calls = release, []

    def get(self, checkpoint: Path) -> "_StuckModel":
        return self

    def predict(self, video: Path, **kwargs: Any) -> Any:
        self.calls.append(video)
        self.release.wait(timeout=15)
        raise AssertionError("the request should have timed out first")


def _install_stuck_model(c: TestClient, tmp_path: Path, release: Any) -> tuple[int, _StuckModel]:
    """A completed fine-tune job row (the model /predict picks) served by a :class:`_StuckModel`."""
    from persistence.status import JobStatus

    checkpoint = tmp_path / "model.pt"
    checkpoint.write_bytes(b"not read")
    with c.app.state.sessions.begin() as s:  # type: ignore[attr-defined]
        job = repo.create_job(s, kind="finetune", request={}, config={}, config_hash="h", dataset_id=None)
        repo.claim_job(s, job.id, worker="test", code_version=None)
        repo.transition(s, job.id, to=JobStatus.COMPLETED, expected=[JobStatus.RUNNING],
                        checkpoint_path=str(checkpoint), results={"test": {"video_top1": 0.5}})
    model = _StuckModel(release)
    c.app.state.predictors = model  # type: ignore[attr-defined]
    return job.id, model


def test_predict_over_the_time_limit_is_504_and_a_full_pool_503(tmp_path: Path, dataset: dict[str, Any]) -> None:
    """A prediction slower than PREDICT_TIMEOUT_S answers 504 naming the setting, and its stuck thread keeps its
    slot, so a full pool refuses at once (503); the slow work is a stand-in predictor (the real decode path is
    covered end to end) so the test takes a fraction of a second."""
    import threading
    import time

    release = threading.Event()
    settings = make_settings(tmp_path / "var", predict_timeout_s=0.2, predict_concurrency=1, predict_queue=0)
    with TestClient(create_app(settings)) as c:
        job_id, _ = _install_stuck_model(c, tmp_path, release)
        try:
            r = c.post("/predict", files={"file": ("ok.avi", first_video(dataset).read_bytes())},
                       data={"model": str(job_id)})
            assert r.status_code == 504, r.text
            assert "0.2s" in r.json()["detail"] and "PREDICT_TIMEOUT_S" in r.json()["detail"]
            # the timed-out work still holds the only slot: the next request is refused at once, not queued behind it
            pool = c.app.state.predict_pool  # type: ignore[attr-defined]
            assert (pool.in_flight, pool.overdue) == (1, 1)
            busy = c.post("/predict", files={"file": ("ok.avi", first_video(dataset).read_bytes())},
                          data={"model": str(job_id)})
            assert busy.status_code == 503 and busy.headers["retry-after"] == "5"
            assert "1 of them still finishing after a timeout" in busy.json()["detail"]
        finally:
            release.set()
        deadline = time.monotonic() + 10
        while pool.in_flight and time.monotonic() < deadline:  # the stuck thread ends: its slot comes back
            time.sleep(0.02)
        assert (pool.in_flight, pool.overdue) == (0, 0)
        assert not list((settings.var_dir / "uploads").iterdir())  # the uploads are removed all the same


def test_predict_that_times_out_waiting_for_a_slot_is_503_not_504(tmp_path: Path, dataset: dict[str, Any]) -> None:
    """One slot, one queue place: a request whose PREDICT_TIMEOUT_S runs out while another clip holds the only
    thread answers 503 + Retry-After saying it waited for a slot (its queued work is withdrawn, the slot count
    comes back), while the clip that really ran too long answers 504."""
    import threading
    import time

    release = threading.Event()
    settings = make_settings(tmp_path / "var", predict_timeout_s=1.0, predict_concurrency=1, predict_queue=1)
    video = first_video(dataset).read_bytes()
    with TestClient(create_app(settings)) as c:
        job_id, model = _install_stuck_model(c, tmp_path, release)
        calls = model.calls
        pool = c.app.state.predict_pool  # type: ignore[attr-defined]
        first: dict[str, Any] = {}

        def slow() -> None:
            first["r"] = c.post("/predict", files={"file": ("a.avi", video)}, data={"model": str(job_id)})

        runner = threading.Thread(target=slow)
        try:
            runner.start()
            deadline = time.monotonic() + 10
            while not calls and time.monotonic() < deadline:  # the first clip holds the only thread
                time.sleep(0.01)
            assert calls
            queued = c.post("/predict", files={"file": ("b.avi", video)}, data={"model": str(job_id)})
            assert queued.status_code == 503, queued.text
            assert queued.headers["retry-after"] == "5"
            detail = queued.json()["detail"]
            assert "waited 1s" in detail and "free prediction slot" in detail and "decoding" not in detail
            assert len(calls) == 1  # the queued clip was never decoded
            runner.join(timeout=10)
            assert first["r"].status_code == 504 and "decoding and classifying took over" in first["r"].json()["detail"]
            assert (pool.in_flight, pool.overdue) == (1, 1)  # only the stuck clip holds a slot; the withdrawn one not
        finally:
            release.set()
            runner.join(timeout=10)
        deadline = time.monotonic() + 10
        while pool.in_flight and time.monotonic() < deadline:
            time.sleep(0.02)
        assert (pool.in_flight, pool.overdue) == (0, 0) and len(calls) == 1
        assert not list((settings.var_dir / "uploads").iterdir())


def test_sniff_containers() -> None:
    from api.services.upload import sniff_container

    assert sniff_container(b"RIFF\x10\x00\x00\x00AVI LIST") == ".avi"
    assert sniff_container(b"\x00\x00\x00\x18ftypmp42\x00\x00") == ".mp4"
    assert sniff_container(b"\x00\x00\x00\x14ftypqt  \x00\x00") == ".mov"
    assert sniff_container(b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01webm") == ".webm"
    assert sniff_container(bytes([0x47] + [0] * 187 + [0x47] + [0] * 187 + [0x47] + [0] * 20)) == ".ts"
    assert sniff_container(b"FLV\x01\x05") == ".flv"
    assert sniff_container(b"\x89PNG\r\n\x1a\n") is None
    assert sniff_container(b"") is None


def test_static_frontend_and_vendored_plotly(tmp_path: Path) -> None:
    front = tmp_path / "frontend"
    front.mkdir()
    (front / "index.html").write_text("<h1>dashboard</h1>")
    settings = make_settings(tmp_path / "var", frontend_dir=front)
    with TestClient(create_app(settings)) as c:
        assert "dashboard" in c.get("/").text
        js = c.get("/vendor/plotly.min.js")
        assert js.status_code == 200 and "javascript" in js.headers["content-type"] and len(js.content) > 1_000_000
        assert c.get("/health").status_code == 200
        spec = c.get("/openapi.json").json()
        ops = {op["operationId"] for path in spec["paths"].values() for op in path.values()}
        assert {"jobs-create", "predict-create", "jobs-events", "models-list", "demo-create"} <= ops
        assert c.get("/docs").status_code == 200


def test_api_process_does_not_import_torch(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = ("import sys; from api.main import create_app; from persistence.settings import Settings; "
            f"create_app(Settings(var_dir={str(tmp_path)!r})); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[2], check=True)
    assert out.stdout.strip() == "False"
