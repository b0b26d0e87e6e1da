"""POST /models/import (external teachers) and GET /models/{id}/onnx, through the real app."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from service_helpers import WorkerProcess, make_settings, render_dataset, tiny, wait_job
from tests.crafted_pickle import write_crafted_checkpoint


def torchvision_r3d18(seed: int = 0, width: float = 0.125) -> dict[str, torch.Tensor]:
    """A state dict under torchvision's ``r3d_18`` names (our r3d18 calls its ``downsample`` ``shortcut``)."""
    from ml.models import build_backbone

    torch.manual_seed(seed)
    ours = build_backbone("r3d18", width).state_dict()
    out = {k.replace(".shortcut.", ".downsample."): v for k, v in ours.items()}
    out["fc.weight"], out["fc.bias"] = torch.randn(400, 64), torch.zeros(400)
    return out


def _file(state: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def _import(c: TestClient, content: bytes, **fields: str) -> Any:
    data = {"format": "torchvision", "backbone": "r3d18", **fields}
    return c.post("/models/import", files={"file": ("r3d18_kinetics.pth", content, "application/octet-stream")}, data=data)


def test_import_lists_the_model_with_its_origin_and_exports_onnx(client: TestClient) -> None:
    state = torchvision_r3d18()
    r = _import(client, _file(state), name="kinetics teacher")
    assert r.status_code == 201, r.text
    model = r.json()
    assert model["kind"] == "import" and model["backbone"] == "r3d18" and model["width"] == 0.125
    assert model["origin"]["format"] == "torchvision" and model["origin"]["file"] == "r3d18_kinetics.pth"
    assert len(model["origin"]["sha256"]) == 64
    listed = client.get("/models").json()
    assert [(m["id"], m["kind"]) for m in listed] == [(model["id"], "import")]
    job = client.get(f"/jobs/{model['id']}").json()
    assert job["kind"] == "import" and job["status"] == "completed"

    onnx = client.get(f"/models/{model['id']}/onnx")
    assert onnx.status_code == 200 and onnx.headers["content-type"] == "application/octet-stream"
    import onnxruntime as ort

    from ml.models import build_backbone

    session = ort.InferenceSession(onnx.content, providers=["CPUExecutionProvider"])
    x = torch.randn(2, 3, 16, 112, 112) * 0.5  # the import's clip: the reference 16x112x112, rgb (no residual)
    ref = build_backbone("r3d18", 0.125).eval()
    ref.load_state_dict({k.replace(".downsample.", ".shortcut."): v for k, v in state.items() if not k.startswith("fc.")})
    with torch.no_grad():
        np.testing.assert_allclose(session.run(None, {"clips": x.numpy()})[0], ref(x).numpy(), rtol=1e-3, atol=1e-4)
    assert client.get("/models/999999/onnx").status_code == 404


def test_a_crafted_pickle_upload_is_refused_and_never_runs(client: TestClient, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = write_crafted_checkpoint(tmp_path / "evil.pth", marker)
    r = _import(client, evil.read_bytes(), format="pcl", backbone="r3d")
    assert r.status_code == 422 and "refused" in r.json()["detail"]
    assert not marker.exists()
    assert str(tmp_path) not in r.text and "/uploads" not in r.text  # no server path in the answer
    assert client.get("/models").json() == [] and client.get("/jobs").json()["count"] == 0
    assert not list((client.app.state.settings.var_dir / "uploads").iterdir())  # the upload is gone


def test_import_fields_are_checked(client: TestClient) -> None:
    content = _file(torchvision_r3d18())
    assert _import(client, content, format="keras").status_code == 422
    bad = _import(client, content, backbone="c3d")  # no torchvision layout for c3d
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "backbone"]
    wrong = _import(client, content, format="pcl", backbone="c3d")  # a layout that does not fit the file
    assert wrong.status_code == 422 and "does not match" in wrong.json()["detail"]
    assert client.get("/models").json() == []


def test_import_upload_is_size_capped(tmp_path: Path) -> None:
    from api.main import create_app

    settings = make_settings(tmp_path / "var", max_import_mb=0.05)
    with TestClient(create_app(settings)) as c:
        r = _import(c, _file(torchvision_r3d18()))
        assert r.status_code == 413 and "MAX_IMPORT_MB" in r.json()["detail"]


def test_an_imported_teacher_is_accepted_by_distill_and_finetune(client: TestClient) -> None:
    dataset = render_dataset(client, classes=2, videos_per_class=3)
    model = _import(client, _file(torchvision_r3d18())).json()
    r = client.post("/jobs", json=tiny("distill", dataset["id"], teacher_job_id=model["id"]))
    assert r.status_code == 201, r.text
    assert r.json()["parent_id"] == model["id"]
    f = client.post("/jobs", json=tiny("finetune", dataset["id"], source_job_id=model["id"]))
    assert f.status_code == 201, f.text


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_worker_distils_from_an_imported_teacher(tmp_path: Path) -> None:
    """End to end: a real worker runs a distill job whose teacher is the imported checkpoint."""
    from api.main import create_app

    settings = make_settings(tmp_path / "var")
    with WorkerProcess(settings, name="import-e2e@test", log_path=tmp_path / "worker.log").start() as worker, \
            TestClient(create_app(settings)) as c:
        worker.wait_ready()
        dataset = render_dataset(c, classes=2, videos_per_class=3)
        model = _import(c, _file(torchvision_r3d18())).json()
        job = c.post("/jobs", json=tiny("distill", dataset["id"], teacher_job_id=model["id"])).json()
        assert wait_job(c, job["id"], worker=worker)["status"] == "completed"


def _row(settings: Any, *, kind: str, parent_id: int | None = None, checkpoint: Path | None = None,
         top1: float | None = None) -> int:
    """A completed job row as a worker leaves it (checkpoint path, results)."""
    from persistence import repo
    from persistence.session import make_engine, make_sessionmaker
    from persistence.status import JobStatus

    with make_sessionmaker(make_engine(settings.database_url)).begin() as s:
        job = repo.create_job(s, kind=kind, request={"kind": kind}, config={"model": {"backbone": "r3d_small", "width": 0.125}},
                              config_hash="0" * 16, dataset_id=None, parent_id=parent_id, status=JobStatus.COMPLETED)
        job.checkpoint_path = str(checkpoint) if checkpoint else None
        job.results = {"test": {"video_top1": top1}} if top1 is not None else {}
        return int(job.id)


def _finetuned(path: Path, backbone: str, top1: float) -> Path:
    from ml.config import ClipSpec
    from ml.engine.checkpoint import FORMAT_VERSION, WEIGHTS_FORMAT, save_checkpoint
    from ml.models import build_backbone
    from ml.models.pcl_net import VideoClassifier

    model = VideoClassifier(build_backbone(backbone, 0.125), 3)
    return save_checkpoint(path, {"format": WEIGHTS_FORMAT, "format_version": FORMAT_VERSION, "state_dict": model.state_dict(),
                                  "kind": "finetune", "backbone": backbone, "width": 0.125, "modality": "res",
                                  "clip": ClipSpec.tiny().model_dump(mode="json"), "labels": ["a", "b", "c"],
                                  "results": {"test": {"video_top1": top1}}})


def test_report_card_of_a_student_keeps_its_accuracy_against_the_teachers_finetune(client: TestClient) -> None:
    settings = client.app.state.settings
    files = settings.artifacts / "models"
    teacher = _row(settings, kind="pretrain")
    _row(settings, kind="finetune", parent_id=teacher, checkpoint=_finetuned(files / "t.pt", "r3d", 0.8), top1=0.8)
    student = _row(settings, kind="distill", parent_id=teacher)
    student_ft = _row(settings, kind="finetune", parent_id=student, checkpoint=_finetuned(files / "s.pt", "r3d_small", 0.6),
                      top1=0.6)
    r = client.get(f"/models/{student_ft}/report")
    assert r.status_code == 200, r.text
    card = r.json()
    assert card["backbone"] == "r3d_small" and card["accuracy"] == 0.6 and card["teacher_accuracy"] == 0.8
    assert card["accuracy_kept"] == 0.75 and card["params"] > 0 and card["gflops_per_clip"] > 0
    [cpu] = card["latency"]
    assert cpu["device"] == "cpu" and cpu["runs"] == 3 and cpu["clip_ms"] > 0 and cpu["threads"] >= 1
    assert (settings.job_dir(student_ft) / "report.json").is_file()
    assert client.get(f"/models/{student_ft}/report").json() == card  # kept per checkpoint, not measured again
    assert client.get(f"/models/{teacher}/report").status_code == 404  # no checkpoint
