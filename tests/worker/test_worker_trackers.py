"""MLflow export (issue 14 item 4) against a local MLflow file store: a job run by the real engine becomes an MLflow
run with the job's params, metrics, tags (job id, lineage) and final weights; a superseded attempt logs nothing
after it lost the job and never a final model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

pytest.importorskip("mlflow")

from mlflow import MlflowClient  # noqa: E402

from ml.engine.checkpoint import safe_load  # noqa: E402
from persistence import repo  # noqa: E402
from service_helpers import render_dataset, take_over_at, tiny  # noqa: E402
from test_worker_jobs import Sent, fake_engine  # noqa: E402
from worker.jobs import execute_job  # noqa: E402
from worker.state import make_runtime  # noqa: E402


@pytest.fixture
def store(tmp_path: Path, settings: Any, monkeypatch: pytest.MonkeyPatch) -> MlflowClient:
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps the file store behind this switch
    settings.mlflow_tracking_uri = (tmp_path / "mlruns").as_uri()
    settings.mlflow_experiment = "kd-test"
    return MlflowClient(tracking_uri=settings.mlflow_tracking_uri)


@pytest.fixture
def rt(settings: Any, store: MlflowClient) -> Any:
    return make_runtime(settings, hostname="test@worker")


def run_of(store: MlflowClient, job_id: int) -> Any:
    exp = store.get_experiment_by_name("kd-test")
    assert exp is not None
    runs = store.search_runs([exp.experiment_id], filter_string=f"tags.`kdvideo.job_id` = '{job_id}'")
    assert len(runs) == 1, runs
    return runs[0]


def test_jobs_become_mlflow_runs_with_params_metrics_lineage_and_weights(client: TestClient, rt: Any,
                                                                          store: MlflowClient) -> None:
    dataset = render_dataset(client)
    teacher = client.post("/jobs", json=tiny("pretrain", dataset["id"], epochs=2)).json()
    assert execute_job(teacher["id"], rt=rt, enqueue=Sent()).status == "completed"
    run = run_of(store, teacher["id"])
    assert run.info.status == "FINISHED" and run.info.run_name == f"job-{teacher['id']}-pretrain"
    tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
    assert tags["kdvideo.kind"] == "pretrain" and tags["kdvideo.dataset_id"] == str(dataset["id"])
    assert "kdvideo.lineage" not in tags and tags["kdvideo.attempt"] == "1"
    assert params["kind"] == "pretrain" and params["optim.epochs"] == "2"
    assert not any(v.startswith("/") for v in params.values()), params  # no server path leaves the service
    history = store.get_metric_history(run.info.run_id, "epoch/loss")
    stored = client.get(f"/jobs/{teacher['id']}/metrics").json()
    assert [(m.step, m.value) for m in history] == [(p["step"], p["value"]) for p in stored["epoch/loss"]]
    assert len(history) == 2 and "loss" in metrics and "clips_per_s" in metrics
    weights = Path(store.download_artifacts(run.info.run_id, "model/weights.pt"))
    assert "state_dict" in safe_load(weights)  # the weights-only export, loadable with weights_only=True

    student = client.post("/jobs", json=tiny("distill", dataset["id"], teacher_job_id=teacher["id"])).json()
    assert execute_job(student["id"], rt=rt, enqueue=Sent()).status == "completed"
    tags = run_of(store, student["id"]).data.tags
    assert tags["kdvideo.teacher_job_id"] == str(teacher["id"])
    assert tags["kdvideo.lineage"] == f"pretrain:{teacher['id']}"


def test_a_superseded_attempt_logs_only_what_it_stored_and_no_model(client: TestClient, rt: Any,
                                                                     store: MlflowClient) -> None:
    """Mid-run the job is reclaimed and claimed by another worker: the MLflow run holds exactly the rows the old
    attempt's fenced flushes stored, stays unfinished (the new attempt continues it) and has no model."""
    dataset = render_dataset(client)
    job = client.post("/jobs", json=tiny("pretrain", dataset["id"])).json()
    rt.settings.cancel_poll_s = 0.0
    rt.settings.metrics_flush_rows = 1

    out = execute_job(job["id"], rt=rt, enqueue=Sent(), engine_run=fake_engine(on_step=take_over_at(rt, job["id"])))
    assert out.status == "superseded"
    run = run_of(store, job["id"])
    assert [m.step for m in store.get_metric_history(run.info.run_id, "loss")] == [1, 2]
    assert run.info.status == "RUNNING" and store.list_artifacts(run.info.run_id) == []


def test_tracking_off_or_broken_never_touches_the_job(client: TestClient, settings: Any) -> None:
    """No URI: no tracker. A URI MLflow cannot use: the job still completes (the tracker turns itself off)."""
    from worker.trackers import make_tracker

    dataset = render_dataset(client)
    job = client.post("/jobs", json=tiny("pretrain", dataset["id"])).json()
    with make_runtime(settings, hostname="t@w").sessions() as s:
        row = repo.get_job(s, job["id"])
    assert make_tracker("", "x", row, [], attempt=1) is None
    assert make_tracker("nosuchscheme://nowhere", "x", row, [], attempt=1) is None
    settings.mlflow_tracking_uri = "nosuchscheme://nowhere"
    out = execute_job(job["id"], rt=make_runtime(settings, hostname="t@w"), enqueue=Sent(), engine_run=fake_engine())
    assert out.status == "completed"
