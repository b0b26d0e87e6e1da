"""ONNX export checked by onnxruntime on decoded clips, and the compression report card of a tiny student."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import torch

from ml.catalog import CATALOG
from ml.cli import main
from ml.config import ClipSpec
from ml.engine.checkpoint import FORMAT_VERSION, WEIGHTS_FORMAT, save_checkpoint
from ml.engine.evaluate import prepare_input
from ml.errors import CheckpointError
from ml.export import check_clips, export_onnx, load_deployable
from ml.inference import Predictor
from ml.models import build_backbone, build_pcl_net
from ml.models.pcl_net import VideoClassifier
from ml.report import count_macs, markdown_row, report_card
from tests.crafted_pickle import write_crafted_checkpoint

LABELS = ["a", "b", "c", "d"]


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def _classifier(path: Path, backbone: str, *, width: float = 0.125, top1: float | None = None, seed: int = 0,
                clip: ClipSpec | None = None, modality: str = "res", **meta: Any) -> Path:
    """A fine-tuned classifier in the download format (what export_weights writes), random weights."""
    torch.manual_seed(seed)
    model = VideoClassifier(build_backbone(backbone, width), len(LABELS))
    for m in model.modules():  # non-trivial BatchNorm statistics, so eval-mode BN matters
        if isinstance(m, torch.nn.BatchNorm3d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    results = {"test": {"video_top1": top1}} if top1 is not None else {}
    return save_checkpoint(path, {"format": WEIGHTS_FORMAT, "format_version": FORMAT_VERSION, "state_dict": model.state_dict(),
                                  "kind": "finetune", "backbone": backbone, "width": width, "modality": modality,
                                  "clip": (clip or ClipSpec.tiny()).model_dump(mode="json"), "labels": LABELS,
                                  "results": results, **meta})


def _videos(root: Path) -> list[Path]:
    return sorted((root / "videos").rglob("*.avi"))[:3]


def test_onnx_export_matches_pytorch_on_decoded_clips(tiny_dataset: Path, tmp_path: Path) -> None:
    ckpt = _classifier(tmp_path / "student.pt", "r3d_small")
    videos = _videos(tiny_dataset)
    assert videos
    check = export_onnx(ckpt, tmp_path / "model.onnx", videos=videos, clips_per_video=2)
    assert check.top1_agreement == 1.0 and check.clips_checked == 6 and check.output == "logits"
    assert check.max_abs_diff < 1e-4
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "model.onnx")).metadata_props}
    assert json.loads(meta["kdvideo.labels"]) == LABELS and meta["kdvideo.modality"] == "res"
    assert ClipSpec.model_validate_json(meta["kdvideo.clip"]) == ClipSpec.tiny()
    # The ONNX file takes the clips prediction cuts (the residual input is inside it), any batch size:
    predictor = Predictor.load(ckpt)
    loaded = load_deployable(ckpt)
    clips = check_clips(loaded, videos[:1], clips_per_video=5)
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    onnx_logits = session.run(None, {"clips": clips.numpy()})[0]
    with torch.no_grad():
        torch_logits = predictor.model(prepare_input(clips, modality="res", time_dim=2)).numpy()
    assert onnx_logits.shape == (5, len(LABELS))
    np.testing.assert_allclose(onnx_logits, torch_logits, rtol=1e-4, atol=1e-5)
    assert np.abs(torch_logits - predictor.model(clips).detach().numpy()).max() > 1e-3  # the residual does matter


def test_onnx_export_of_a_pretrained_backbone_gives_features(tmp_path: Path) -> None:
    net = build_pcl_net("c3d", 0.125)
    ckpt = save_checkpoint(tmp_path / "teacher.pt", {"kind": "pretrain", "backbone": "c3d", "width": 0.125, "modality": "rgb",
                                                     "clip": ClipSpec.tiny().model_dump(mode="json"),
                                                     "task": {"net": net.state_dict()}})
    check = export_onnx(ckpt, tmp_path / "features.onnx")
    assert check.output == "features" and check.max_abs_diff < 1e-4
    session = ort.InferenceSession(str(tmp_path / "features.onnx"), providers=["CPUExecutionProvider"])
    x = torch.randn(3, 3, 8, 32, 32)
    with torch.no_grad():
        np.testing.assert_allclose(session.run(None, {"clips": x.numpy()})[0], net.backbone.eval()(x).numpy(), rtol=1e-4, atol=1e-5)


def test_export_refuses_a_crafted_pickle(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    with pytest.raises(CheckpointError, match="refused"):
        export_onnx(write_crafted_checkpoint(tmp_path / "evil.pt", marker), tmp_path / "m.onnx")
    assert not marker.exists() and not (tmp_path / "m.onnx").exists()


def test_report_card_of_a_tiny_student(tmp_path: Path) -> None:
    teacher = _classifier(tmp_path / "teacher.pt", "r3d", top1=0.75, seed=1)
    student = _classifier(tmp_path / "student.pt", "r3d_small", top1=0.5, teacher_backbone="r3d", teacher_width=0.125)
    card = report_card(student, teacher_checkpoint=teacher, runs=3, warmup=1, clips_per_video=10, gpu=False)
    expected = VideoClassifier(build_backbone("r3d_small", 0.125), len(LABELS))
    assert card.params == sum(p.numel() for p in expected.parameters())
    assert card.backbone_params == sum(p.numel() for p in expected.backbone.parameters())
    assert card.teacher["params"] > card.params and card.teacher["gmacs_per_clip"] > card.gmacs_per_clip > 0
    assert card.gflops_per_clip == pytest.approx(2 * card.gmacs_per_clip, rel=1e-3)
    assert card.clip == "8x32x32" and card.kind == "finetune" and card.output == "logits"
    assert card.accuracy == 0.5 and card.teacher_accuracy == 0.75 and card.accuracy_kept == pytest.approx(0.6667, abs=1e-4)
    assert card.teacher["backbone"] == "r3d"
    [cpu] = card.latency
    assert cpu.device == "cpu" and cpu.threads == 1 and cpu.runs == 3 and cpu.clips_per_video == 10
    assert 0 < cpu.clip_ms and 0 < cpu.video_ms
    assert card.size_bytes["checkpoint"] == student.stat().st_size
    assert card.size_bytes["weights"] > 4 * card.params
    assert markdown_row("tiny student", card).startswith("| tiny student | r3d_small x0.125 |")


def test_report_gmacs_at_width_one_agree_with_the_catalogue(tmp_path: Path) -> None:
    """At the reference clip the card's count is the catalogue's backbone figure plus the head (meta device: no compute)."""
    ckpt = _classifier(tmp_path / "full.pt", "r3d_small", width=1.0, clip=ClipSpec())
    macs = count_macs(load_deployable(ckpt))
    head = CATALOG["r3d_small"].feature_dim * len(LABELS)
    assert round((macs - head) / 1e9, 1) == CATALOG["r3d_small"].gmacs


def test_cli_export_report_import(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = _classifier(tmp_path / "student.pt", "r3d_small", top1=0.5)
    assert main(["export", "--checkpoint", str(ckpt), "--format", "onnx", "--out", str(tmp_path / "m.onnx")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["format"] == "onnx" and out["top1_agreement"] == 1.0 and (tmp_path / "m.onnx").is_file()
    assert main(["report", "--checkpoint", str(ckpt), "--onnx", str(tmp_path / "m.onnx"), "--runs", "2", "--warmup", "1"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["size_bytes"]["onnx"] == (tmp_path / "m.onnx").stat().st_size and card["latency"][0]["threads"] == 1
    tv = {k: v for k, v in build_backbone("r3d18", 0.125).state_dict().items()}
    torch.save({k.replace(".shortcut.", ".downsample."): v for k, v in tv.items()}, tmp_path / "tv.pth")
    assert main(["import", str(tmp_path / "tv.pth"), "--format", "torchvision", "--backbone", "r3d18",
                 "--out", str(tmp_path / "t.pt")]) == 0
    imported = json.loads(capsys.readouterr().out)
    assert imported["width"] == 0.125 and imported["origin"]["format"] == "torchvision"
    assert main(["import", str(tmp_path / "tv.pth"), "--format", "pcl", "--backbone", "r3d",
                 "--out", str(tmp_path / "x.pt")]) == 2
    assert "does not match" in capsys.readouterr().err


def test_torchscript_export_gives_the_same_logits(tmp_path: Path) -> None:
    from ml.export import export_torchscript

    ckpt = _classifier(tmp_path / "student.pt", "r3d_small")
    path = export_torchscript(ckpt, tmp_path / "model.pt")
    scripted = torch.jit.load(str(path))
    x = torch.randn(3, 3, 8, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), load_deployable(ckpt).model(x), rtol=1e-4, atol=1e-5)
