"""Defence in depth in the worker: path fields of the ml config come from the dataset row and the parent job,
never from the stored request/config; a parent checkpoint replaced by a crafted pickle fails the job with a
clear reason and its payload never runs (direct calls with the real engine, and through a real Celery worker)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from fastapi.testclient import TestClient

from api.main import create_app
from crafted_pickle import write_crafted_checkpoint
from persistence import repo
from service_helpers import WorkerProcess, make_settings, render_dataset, synthesize_dataset, tiny, wait_job
from worker.jobs import execute_job
from worker.state import make_runtime


@pytest.fixture
def rt(settings: Any) -> Any:
    return make_runtime(settings, hostname="test@untrusted")


@pytest.fixture
def dataset(client: TestClient) -> dict[str, Any]:
    return render_dataset(client, classes=3, videos_per_class=4, frames=40)


def _poison(rt: Any, job_id: int, **paths: Any) -> None:
    """Rewrite path fields of a stored job config, as a tampered or legacy row would hold them."""
    with rt.sessions() as s:
        job = repo.get_job(s, job_id)
        config = dict(job.config)
        for dotted, value in paths.items():
            *path, leaf = dotted.split("__")
            node = config
            for key in path:
                node[key] = dict(node.get(key) or {})
                node = node[key]
            node[leaf] = value
        job.config = config
        s.commit()


def _sent(job_id: int, countdown: float) -> None:
    pass


def test_stored_paths_are_ignored_by_the_worker(client: TestClient, dataset: dict[str, Any], rt: Any,
                                                tmp_path: Path) -> None:
    marker = tmp_path / "payload-ran"
    evil = write_crafted_checkpoint(tmp_path / "evil.pt", marker)
    pretrain = client.post("/jobs", json=tiny("pretrain", dataset["id"], max_steps_per_epoch=1)).json()
    _poison(rt, pretrain["id"], data__root=str(tmp_path / "not-a-dataset"), data__splits_dir=str(tmp_path))
    out = execute_job(pretrain["id"], rt=rt, enqueue=_sent)
    assert out.status == "completed", out
    done = client.get(f"/jobs/{pretrain['id']}").json()
    assert done["results"]["data"]["root"] == dataset["path"]  # trained on the dataset row's folder
    evaluate = client.post("/jobs", json=tiny("evaluate", dataset["id"], test_clips=1)).json()
    _poison(rt, evaluate["id"], checkpoint=str(evil))
    out = execute_job(evaluate["id"], rt=rt, enqueue=_sent)
    assert out.status == "completed", out  # random init, as submitted: the stored path was dropped
    assert client.get(f"/jobs/{evaluate['id']}").json()["results"]["checkpoint"] == "None"
    assert not marker.exists()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_crafted_parent_checkpoint_fails_children_through_a_real_worker(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "var")
    worker = WorkerProcess(settings, name="untrusted@test", log_path=tmp_path / "worker.log").start()
    marker = tmp_path / "payload-ran"
    try:
        worker.wait_ready()
        with TestClient(create_app(settings)) as c:
            dataset = synthesize_dataset(c, worker=worker, classes=3, videos_per_class=4, frames=40)
            teacher = c.post("/jobs", json=tiny("pretrain", dataset["id"], max_steps_per_epoch=1)).json()
            assert wait_job(c, teacher["id"], worker=worker)["status"] == "completed"
            # the download is the weights-only export: plain torch loads it in safe mode
            r = c.get(f"/jobs/{teacher['id']}/checkpoint")
            assert r.status_code == 200 and "weights" in r.headers["content-disposition"]
            (tmp_path / "dl.pt").write_bytes(r.content)
            weights = torch.load(tmp_path / "dl.pt", weights_only=True)
            assert weights["format"] == "kdvideo-weights" and weights["backbone"] == "r3d" and "rng" not in weights
            # now an attacker with write access to the artifacts swaps in a code-running pickle
            ckpt = settings.job_dir(teacher["id"]) / "checkpoint.pt"
            write_crafted_checkpoint(ckpt, marker, kind="pretrain")
            children = [c.post("/jobs", json=tiny(kind, dataset["id"], source_job_id=teacher["id"],
                                                  max_steps_per_epoch=1)).json() for kind in ("evaluate", "finetune")]
            for child in children:
                done = wait_job(c, child["id"], worker=worker)
                assert done["status"] == "failed" and "CheckpointError" in done["error"], done
                assert "refused" in done["error"] and done["attempts"] == 1
            r = c.get(f"/jobs/{teacher['id']}/checkpoint")
            assert r.status_code == 409 and str(settings.var_dir) not in r.text
    finally:
        worker.stop()
    assert not marker.exists()
