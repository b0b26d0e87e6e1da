"""Issue 9 items 1, 7, 8 through HTTP: no request field names a server path (overrides are walked from the
ml config models, path-typed fields refused by type), symlinks out of a dataset are never indexed, and
error messages tell the client what to fix without server paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ml import kinds
from ml.config import path_fields
from persistence import repo
from persistence.session import make_engine, make_sessionmaker
from service_helpers import render_dataset, tiny

CONFIG_CLASS = {kind: kinds.config_class(kind) for kind in kinds.kind_names(cli=True)}
PATH_CASES = [(kind, key) for kind in sorted(CONFIG_CLASS) for key in sorted(path_fields(CONFIG_CLASS[kind]))]


def _nested(dotted: str, value: Any) -> dict[str, Any]:
    *parents, leaf = dotted.split(".")
    out: dict[str, Any] = {leaf: value}
    for part in reversed(parents):
        out = {part: out}
    return out


@pytest.fixture
def dataset_id(settings: Any) -> int:
    """A dataset row (no videos needed: every request here is refused or only stored, never run)."""
    root = settings.data_roots[0] / "rows-only"
    root.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    try:
        with make_sessionmaker(engine)() as session:
            row = repo.create_dataset(session, name="rows-only", path=str(root), classes=["a", "b"])
            session.commit()
            return row.id
    finally:
        engine.dispose()


def _body(kind: str, dataset_id: int, **extra: Any) -> dict[str, Any]:
    body = tiny(kind, dataset_id, **extra)
    if kind == "distill":
        body["alpha"] = 0.0  # the no-KD baseline: no teacher job needed to reach the overrides
    return body


def test_the_walk_finds_every_known_path_field() -> None:
    found = {kind: path_fields(CONFIG_CLASS[kind]) for kind in CONFIG_CLASS}
    assert {"data.root", "data.splits_dir", "distill.teacher_checkpoint"} <= found["pretrain"]
    assert {"data.root", "data.splits_dir", "source_checkpoint"} <= found["finetune"]
    assert {"data.root", "data.splits_dir", "checkpoint"} <= found["retrieve"]


@pytest.mark.parametrize(("kind", "key"), PATH_CASES, ids=[f"{k}-{p}" for k, p in PATH_CASES])
def test_every_path_typed_override_is_422(client: TestClient, dataset_id: int, tmp_path: Path, kind: str,
                                          key: str) -> None:
    for body in (_body(kind, dataset_id, **_nested(key, str(tmp_path / "anywhere"))),  # the request's sections
                 _body(kind, dataset_id, overrides={key: str(tmp_path / "anywhere")})):  # deprecated overrides
        r = client.post("/jobs", json=body)
        assert r.status_code == 422, r.text
        detail = r.json()["detail"][0]
        assert detail["loc"] == ["body", *key.split(".")]
        assert key in detail["msg"] and "server path" in detail["msg"] and str(tmp_path) not in r.text
    assert client.get("/jobs").json()["count"] == 0


def test_path_fields_are_not_in_the_request_schema(client: TestClient) -> None:
    """OpenAPI documents no path-typed setting: the request models are walked from the config classes without them."""
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    for kind, model in CONFIG_CLASS.items():
        for key in path_fields(model):
            *parents, leaf = key.split(".")
            name = kind.title() + "".join(p.title() for p in parents)
            holder = schemas[f"{kind.title()}JobCreate" if not parents else name]
            assert leaf not in holder["properties"], (kind, key)


def test_unknown_and_section_override_keys_are_422(client: TestClient, dataset_id: int) -> None:
    for body in (_body("pretrain", dataset_id, overrides={"pretext.intervall": 4}),
                 _body("pretrain", dataset_id, pretext={"intervall": 4})):
        r = client.post("/jobs", json=body)
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "pretext", "intervall"]
        assert "'pretext.interval'" in r.json()["detail"][0]["msg"]  # the near miss is suggested
    r = client.post("/jobs", json=_body("pretrain", dataset_id, overrides={"data": {"root": "/etc"}}))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "data", "root"]
    assert "server path" in r.json()["detail"][0]["msg"] and "/etc" not in r.text
    r = client.post("/jobs", json=_body("retrieve", dataset_id, overrides={"kind": "pretrain"}))
    assert r.status_code == 422 and "'kind' is set by the request's kind field" in r.text


def test_allowed_overrides_still_apply(client: TestClient, dataset_id: int) -> None:
    r = client.post("/jobs", json=_body("pretrain", dataset_id, overrides={"pretext.interval": 4,
                                                                           "data.cache_mb": 16}))
    assert r.status_code == 201, r.text
    assert r.json()["config"]["pretext"]["interval"] == 4 and r.json()["config"]["data"]["cache_mb"] == 16


def test_experiments_take_no_config_dicts(client: TestClient, dataset_id: int) -> None:
    r = client.post("/experiments", json={"dataset_id": dataset_id, "overrides": {"data.root": "/etc"}})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "overrides"]


# ---------------------------------------------------------------- item 7: symlinks; item 8: no server paths

def _server_paths(settings: Any, *extra: Path) -> list[str]:
    """Strings no client-facing message may contain."""
    import site

    paths = [str(settings.var_dir), str(settings.var_dir.resolve()), str(settings.artifacts), *(str(r) for r in settings.data_roots),
             "/usr/", "site-packages", "/github/", "video_reader.cc", *site.getsitepackages(), *map(str, extra)]
    return [p for p in paths if p]


def _assert_no_server_paths(text: str, settings: Any, *extra: Path) -> None:
    leaked = [p for p in _server_paths(settings, *extra) if p in text]
    assert not leaked, f"response leaks {leaked}: {text}"


@pytest.fixture
def synthetic(client: TestClient) -> dict[str, Any]:
    return render_dataset(client, classes=2, videos_per_class=3, frames=24)


def test_registration_skips_links_out_of_the_dataset(client: TestClient, settings: Any, synthetic: dict[str, Any],
                                                     tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "shadow").write_text("root:$6$secret:19000:0:99999:7:::\n")
    videos = Path(synthetic["path"]) / "videos"
    cls = synthetic["classes"][0]
    (videos / cls / "v_shadow_g09_c01.avi").symlink_to(outside / "shadow")
    (videos / "Elsewhere").symlink_to(outside, target_is_directory=True)
    rel_path = str(Path(synthetic["path"]).relative_to(settings.data_roots[0]))
    r = client.post("/datasets", json={"path": rel_path, "name": "linked"})
    assert r.status_code == 201, r.text
    problems = {p["rel"]: p["reason"] for p in r.json()["problems"]}
    assert "outside the dataset folder" in problems[f"{cls}/v_shadow_g09_c01.avi"]
    assert "outside the dataset folder" in problems["Elsewhere/"]
    assert r.json()["counts"] == synthetic["counts"] and "Elsewhere" not in r.json()["classes"]
    assert str(outside) not in r.text and "secret" not in r.text


def test_dataset_path_errors_name_no_server_path(client: TestClient, settings: Any, tmp_path: Path) -> None:
    outside = tmp_path / "outside-set"
    outside.mkdir()
    root = settings.data_roots[0]
    (root / "innocent").symlink_to(outside, target_is_directory=True)
    r = client.post("/datasets", json={"path": "innocent"})
    assert r.status_code == 403 and "outside the allowed data roots" in r.json()["detail"]
    _assert_no_server_paths(r.text, settings, outside)
    r = client.post("/datasets", json={"path": "no/such/folder"})
    assert r.status_code == 422 and "'no/such/folder' is not a folder" in r.text
    _assert_no_server_paths(r.text, settings)
    (root / "empty").mkdir()
    r = client.post("/datasets", json={"path": "empty"})
    assert r.status_code == 422 and "empty" in r.json()["detail"][0]["msg"]  # says which folder, as the client named it
    _assert_no_server_paths(r.text, settings)


@pytest.fixture
def model_job(client: TestClient, settings: Any, synthetic: dict[str, Any]) -> Any:
    """A completed fine-tune with a real checkpoint (trained by ml directly: the /predict path is under test)."""
    from ml.config import ClipSpec, FinetuneConfig
    from ml.engine import run
    from persistence.status import JobStatus

    cfg = FinetuneConfig.model_validate(dict(
        data={"root": synthetic["path"], "workers": 0}, clip=ClipSpec.tiny(), model={"backbone": "r3d", "width": 0.125},
        val_videos=0, optim={"batch_size": 2, "epochs": 1}, runtime={"max_steps_per_epoch": 1}, eval={"test_clips": 1}))
    out = settings.job_dir(999)
    result = run(cfg, out_dir=out)
    engine = make_engine(settings.database_url)
    try:
        with make_sessionmaker(engine)() as session:
            job = repo.create_job(session, kind="finetune", request={}, config=cfg.model_dump(mode="json"),
                                  config_hash="x", dataset_id=synthetic["id"], status=JobStatus.COMPLETED)
            job.checkpoint_path, job.results = str(result.checkpoint), result.results
            session.commit()
            return job.id, Path(result.checkpoint)
    finally:
        engine.dispose()


def test_predict_errors_name_no_server_path(client: TestClient, settings: Any, model_job: Any,
                                            tmp_path: Path) -> None:
    from crafted_pickle import write_crafted_checkpoint

    model_id, checkpoint = model_job
    undecodable = [("garbage.avi", b"RIFF\x00\x00\x00\x00AVI " + b"\x00garbage" * 64),  # decord: no stream
                   ("random.mp4", b"\x00\x00\x00\x18ftypisom" + bytes(range(256)) * 12)]  # cannot be parsed
    for name, data in undecodable:
        r = client.post("/predict", params={"model": model_id}, files={"file": (name, data, "video/mp4")})
        assert r.status_code == 422 and "cannot use this video" in r.json()["detail"], r.text
        _assert_no_server_paths(r.text, settings)
        assert "upload-" not in r.text and ".cc:" not in r.text
    # a model whose checkpoint was swapped for a code-running pickle: refused, payload never runs, no path shown
    marker = tmp_path / "payload-ran"
    write_crafted_checkpoint(checkpoint, marker)
    video = next(Path(settings.data_roots[0]).rglob("*.avi"))
    r = client.post("/predict", params={"model": model_id}, files={"file": ("v.avi", video.read_bytes(), "video/avi")})
    assert r.status_code == 409 and "checkpoint cannot be loaded" in r.json()["detail"], r.text
    _assert_no_server_paths(r.text, settings)
    assert not marker.exists()


def test_retry_of_a_stored_request_with_a_path_override_is_422(client: TestClient, settings: Any,
                                                               dataset_id: int) -> None:
    """A job stored before the fix (its request names a path) cannot be re-submitted through retry."""
    from persistence.status import JobStatus

    request = _body("pretrain", dataset_id, overrides={"data.root": "/etc"})
    engine = make_engine(settings.database_url)
    try:
        with make_sessionmaker(engine)() as session:
            old = repo.create_job(session, kind="pretrain", request=request, config={}, config_hash="x",
                                  dataset_id=dataset_id, status=JobStatus.FAILED)
            session.commit()
            old_id = old.id
    finally:
        engine.dispose()
    r = client.post(f"/jobs/{old_id}/retry")
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "data", "root"], r.text
    assert "server path" in r.json()["detail"][0]["msg"] and "/etc" not in r.text
    assert client.get("/jobs").json()["count"] == 1
