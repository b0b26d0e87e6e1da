"""Issue 10 through HTTP: the request is the config (nested sections walked from the ml config classes, a recipe
under them), one registry of kinds (GET /jobs?kind=, the evaluate -> retrieve rename with its alias and
migration), GET /recipes, and a kind added only in ml (knn) submitted and run on a real worker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ml import kinds, recipes
from ml.config import config_hash
from service_helpers import WorkerProcess, make_settings, render_dataset, tiny, wait_job


@pytest.fixture
def dataset(client: TestClient) -> dict[str, Any]:
    return render_dataset(client, classes=2, videos_per_class=4, frames=40)


def test_a_nested_request_on_a_recipe_resolves_as_the_cli_does(client: TestClient, dataset: dict[str, Any]) -> None:
    body = {"kind": "pretrain", "dataset_id": dataset["id"], "recipe": "tiny", "name": "nested",
            "tags": ["issue10"], "optim": {"epochs": 1}, "contrast": {"negatives": 16}, "data": {"workers": 0}}
    r = client.post("/jobs", json=body)
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["request"] == body  # what was sent, nothing filled in
    config = job["config"]
    assert config["optim"]["epochs"] == 1 and config["optim"]["lr"] == 0.05  # the request over the recipe
    assert config["clip"]["crop"] == 32 and config["model"]["width"] == 0.125  # the recipe over the defaults
    overrides = {k: v for k, v in body.items() if k in ("optim", "contrast", "data")}
    cli = recipes.resolve("tiny", "pretrain", overrides, paths={"data.root": dataset["path"]})
    assert job["config_hash"] == config_hash(cli)  # the same recipe and settings hash alike in ml and the API
    r = client.post("/jobs", json={**body, "recipe": "no-such-recipe"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "recipe"]


def test_the_deprecated_flat_request_becomes_the_nested_one(client: TestClient, dataset: dict[str, Any]) -> None:
    flat = client.post("/jobs", json={"kind": "pretrain", "dataset_id": dataset["id"], "clip": "tiny", "epochs": 1,
                                      "lr": 0.02, "nce_negatives": 16, "data_workers": 0}).json()
    assert flat["request"]["optim"] == {"epochs": 1, "lr": 0.02} and flat["request"]["contrast"] == {"negatives": 16}
    nested = client.post("/jobs", json={"kind": "pretrain", "dataset_id": dataset["id"], **{
        k: flat["request"][k] for k in ("clip", "optim", "contrast", "data")}}).json()
    assert nested["config_hash"] == flat["config_hash"]


def test_openapi_documents_each_setting_with_its_kinds_default_and_range(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert schemas["PretrainOptim"]["properties"]["lr"]["default"] == 0.01
    assert schemas["FinetuneOptim"]["properties"]["lr"]["default"] == 0.001  # finetune's own default
    assert schemas["PretrainOptim"]["properties"]["lr"]["exclusiveMinimum"] == 0
    assert schemas["DistillDistill"]["properties"]["alpha"]["default"] == 1.0  # ml.kinds' distill default
    assert schemas["PretrainDistill"]["properties"]["alpha"]["default"] == 0.0
    assert set(schemas["FinetuneJobCreate"]["properties"]) >= {"mode", "dropout", "val_videos", "source_job_id"}
    assert "teacher_job_id" in schemas["DistillJobCreate"]["properties"]
    submittable = {n for n in kinds.kind_names(cli=True)}
    assert {f"{n.title()}JobCreate" for n in submittable} <= set(schemas)
    assert "SynthesizeJobCreate" not in schemas  # worker-only: POST /datasets/synthetic makes those


def test_one_name_per_kind_with_the_old_one_accepted(client: TestClient, dataset: dict[str, Any]) -> None:
    synth = client.post("/datasets/synthetic", json={"classes": 2, "videos_per_class": 4, "frames": 40})
    assert synth.status_code == 202, synth.text
    listed = client.get("/jobs", params={"kind": "synthesize"})
    assert listed.status_code == 200 and [j["kind"] for j in listed.json()["data"]] == ["synthesize"]
    assert client.get("/jobs", params={"kind": "evaluate"}).status_code == 200  # the deprecated name still filters
    assert client.get("/jobs", params={"kind": "bogus"}).status_code == 422
    assert client.get("/jobs/defaults", params={"kind": "evaluate"}).json()["kind"] == "retrieve"
    r = client.post("/jobs", json=tiny("evaluate", dataset["id"], test_clips=1))  # no source: a random backbone
    assert r.status_code == 201, r.text
    assert r.json()["kind"] == "retrieve" and r.json()["request"]["kind"] == "retrieve"
    assert [j["id"] for j in client.get("/jobs", params={"kind": "evaluate"}).json()["data"]] == [r.json()["id"]]
    r = client.post("/jobs", json={"kind": "retrieve", "dataset_id": dataset["id"], "teacher_job_id": 1})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "teacher_job_id"]


def test_recipes_are_listed_with_their_resolved_defaults(client: TestClient) -> None:
    listed = {r["name"]: r for r in client.get("/recipes").json()}
    assert set(listed) == set(recipes.recipe_names())
    tiny_recipe = listed["tiny"]
    assert "pretrain" in tiny_recipe["kinds"] and not tiny_recipe["grid"] and listed["grid/tiny"]["grid"]
    assert tiny_recipe["defaults"]["pretrain"]["clip"]["crop"] == 32
    assert tiny_recipe["defaults"]["finetune"]["clip"]["normalize"] is False
    assert "root" not in tiny_recipe["defaults"]["pretrain"]["data"]  # no server path


def test_an_experiment_on_a_grid_recipe_gives_each_role_its_budget(client: TestClient,
                                                                    dataset: dict[str, Any]) -> None:
    r = client.post("/experiments", json={"dataset_id": dataset["id"], "grid": "pair", "recipe": "grid/tiny",
                                          "seeds": [0]})
    assert r.status_code == 201, r.text
    facts = recipes.load("grid/tiny")
    assert r.json()["runs"], r.json()
    configs = {job["name"].split(": ", 1)[1].split(" ")[0]: job["config"]
               for job in client.get("/jobs", params={"limit": 20}).json()["data"]
               if job["kind"] in ("pretrain", "distill")}
    assert configs["teacher"]["optim"]["epochs"] == facts["grid"]["roles"]["teacher"]["optim"]["epochs"]
    assert configs["student"]["optim"]["epochs"] == facts["kinds"]["pretrain"]["optim"]["epochs"]
    assert configs["student"]["distill"]["terms"] == {"pretext": 1.0, "contrastive": 1.0}
    tuned = client.get("/jobs", params={"kind": "finetune"}).json()["data"]
    assert tuned and all(j["config"]["optim"]["epochs"] == facts["kinds"]["finetune"]["optim"]["epochs"] for j in tuned)


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_migration_renames_evaluate_jobs(db: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    from sqlalchemy import text

    from persistence.migrate import upgrade
    from persistence.session import make_engine

    url = f"sqlite:///{tmp_path / 'old.db'}" if db == "sqlite" else request.getfixturevalue("pg_url")
    upgrade(url, "0008")
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            for job_id, kind in ((1, "evaluate"), (2, "pretrain")):
                conn.execute(text(
                    "INSERT INTO jobs (id, kind, status, request, config, config_hash, attempts, max_attempts, "
                    "cancel_requested, progress, epoch, step, created_at, updated_at, queued_at) VALUES "
                    f"({job_id}, '{kind}', 'queued', '{{\"kind\": \"{kind}\", \"test_clips\": 1}}', '{{}}', 'h', 0, "
                    "3, false, 0, 0, 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
        upgrade(url)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT kind, request FROM jobs ORDER BY id")).all()
        kinds_now = [r[0] for r in rows]
        assert kinds_now == ["retrieve", "pretrain"]
        assert '"retrieve"' in str(rows[0][1]).replace("'", '"') and '"pretrain"' in str(rows[1][1]).replace("'", '"')
    finally:
        engine.dispose()


@pytest.mark.slow
def test_a_kind_added_in_ml_only_is_submitted_and_run_by_a_real_worker(tmp_path: Path) -> None:
    """knn (ml/config.py, ml/kinds.py, ml/engine/knn.py): no API or worker edit, yet POST /jobs takes it and a
    Celery worker subprocess runs it on a teacher's checkpoint."""
    from api.main import create_app

    settings = make_settings(tmp_path / "var")
    worker = WorkerProcess(settings, name="knn@test", log_path=tmp_path / "worker.log").start()
    try:
        worker.wait_ready()
        with TestClient(create_app(settings)) as c:
            ds = render_dataset(c, classes=2, videos_per_class=4, frames=40)
            teacher = c.post("/jobs", json={"kind": "pretrain", "dataset_id": ds["id"], "recipe": "tiny",
                                            "optim": {"epochs": 1, "batch_size": 4}, "contrast": {"negatives": 8},
                                            "data": {"workers": 0}, "eval": {"retrieval": False},
                                            "runtime": {"max_steps_per_epoch": 1}})
            assert teacher.status_code == 201, teacher.text
            knn = c.post("/jobs", json={"kind": "knn", "dataset_id": ds["id"], "source_job_id": teacher.json()["id"],
                                        "after_job_id": teacher.json()["id"], "data": {"workers": 0}})
            assert knn.status_code == 201, knn.text
            assert knn.json()["config"]["model"]["width"] == 0.125  # the teacher's network, not the default
            done = wait_job(c, knn.json()["id"], timeout=300)
            assert done["status"] == "completed", (done.get("error"), worker.log_tail())
            assert done["results"], done
    finally:
        worker.stop()
