"""Issue 9 items 1, 7, 8 through HTTP: no request field names a server path (overrides are walked from the
ml config models, path-typed fields refused by type), symlinks out of a dataset are never indexed, and
error messages tell the client what to fix without server paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.jobspec import CONFIG_CLASS
from ml.config import path_fields
from persistence import repo
from persistence.session import make_engine, make_sessionmaker
from service_helpers import tiny

PATH_CASES = [(kind, key) for kind in sorted(CONFIG_CLASS) for key in sorted(path_fields(CONFIG_CLASS[kind]))]


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
    assert {"data.root", "data.splits_dir", "checkpoint"} <= found["evaluate"]


@pytest.mark.parametrize(("kind", "key"), PATH_CASES, ids=[f"{k}-{p}" for k, p in PATH_CASES])
def test_every_path_typed_override_is_422(client: TestClient, dataset_id: int, tmp_path: Path, kind: str,
                                          key: str) -> None:
    r = client.post("/jobs", json=_body(kind, dataset_id, overrides={key: str(tmp_path / "anywhere")}))
    assert r.status_code == 422, r.text
    detail = r.json()["detail"][0]
    assert detail["loc"] == ["body", "overrides", key]
    assert key in detail["msg"] and "server path" in detail["msg"] and str(tmp_path) not in r.text
    assert client.get("/jobs").json()["count"] == 0


def test_unknown_and_section_override_keys_are_422(client: TestClient, dataset_id: int) -> None:
    r = client.post("/jobs", json=_body("pretrain", dataset_id, overrides={"pretext.intervall": 4}))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "overrides", "pretext.intervall"]
    assert "'pretext.interval'" in r.json()["detail"][0]["msg"]  # the near miss is suggested
    r = client.post("/jobs", json=_body("pretrain", dataset_id, overrides={"data": {"root": "/etc"}}))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "overrides", "data"]
    assert "section" in r.json()["detail"][0]["msg"]
    r = client.post("/jobs", json=_body("evaluate", dataset_id, overrides={"kind": "pretrain"}))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "overrides", "kind"]


def test_allowed_overrides_still_apply(client: TestClient, dataset_id: int) -> None:
    r = client.post("/jobs", json=_body("pretrain", dataset_id, overrides={"pretext.interval": 4,
                                                                           "data.cache_mb": 16}))
    assert r.status_code == 201, r.text
    assert r.json()["config"]["pretext"]["interval"] == 4 and r.json()["config"]["data"]["cache_mb"] == 16


def test_experiments_take_no_config_dicts(client: TestClient, dataset_id: int) -> None:
    r = client.post("/experiments", json={"dataset_id": dataset_id, "overrides": {"data.root": "/etc"}})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "overrides"]
