"""Deployable models: any checkpoint as one network on preprocessed clips, exported to ONNX and checked.

:func:`load_deployable` turns a fine-tuned checkpoint into ``clips -> logits`` and a pretrain/distill (or
imported) checkpoint into ``clips -> features``; the residual-frame input (modality ``res``) is part of the
network, so a runtime feeds the same ``N×3×T×H×W`` clips :class:`ml.inference.Predictor` cuts (frames in [0, 1],
mean/std-normalised when the checkpoint's clip spec says so; the spec and the labels travel as ONNX metadata).
:func:`export_onnx` writes it with a dynamic batch and checks it with onnxruntime on the given clips:
same top-1 as PyTorch, max abs output difference reported.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ml.config import ClipSpec
from ml.data.functional import residual
from ml.engine.checkpoint import WEIGHTS_FORMAT, load_checkpoint
from ml.errors import CheckpointError
from ml.models import build_backbone
from ml.models.pcl_net import VideoClassifier

ONNX_OPSET = 17
INPUT_NAME = "clips"


class Deployable(nn.Module):
    """``N×3×T×H×W`` clips as ``ml.data`` cuts them -> logits (classifier) or pooled features (backbone)."""

    def __init__(self, net: nn.Module, *, modality: str) -> None:
        super().__init__()
        self.net, self.modality = net, modality

    def forward(self, clips: Tensor) -> Tensor:
        x = residual(clips, 2) if self.modality == "res" else clips
        out: Tensor = self.net(x)
        return out


@dataclass
class LoadedModel:
    model: Deployable
    kind: str
    backbone: str
    width: float
    clip: ClipSpec
    labels: list[str]
    state: dict[str, Any] = field(repr=False)

    @property
    def output(self) -> str:
        return "logits" if self.labels else "features"

    def input_shape(self, batch: int = 1) -> tuple[int, int, int, int, int]:
        return (batch, 3, self.clip.frames, self.clip.crop, self.clip.crop)


def _weights(state: dict[str, Any]) -> dict[str, Tensor]:
    if state.get("format") == WEIGHTS_FORMAT:
        weights: dict[str, Tensor] = state["state_dict"]
        return weights
    task = state.get("task")
    if not isinstance(task, dict):
        raise CheckpointError("the checkpoint holds no model weights")
    return task.get("model", task.get("net")) or {}


def load_deployable(path: Path | str) -> LoadedModel:
    """A checkpoint (training checkpoint or weights export) as an eval-mode :class:`Deployable` on the CPU."""
    state = load_checkpoint(Path(path))  # weights_only: a crafted pickle is refused, never run
    kind = str(state.get("kind"))
    if "backbone" not in state or "width" not in state:
        raise CheckpointError(f"{Path(path).name} names no backbone; it is not a model checkpoint of this tool")
    backbone = build_backbone(state["backbone"], width=float(state["width"]))
    weights = _weights(state)
    labels: list[str] = []
    net: nn.Module
    if kind == "finetune":
        labels = list(state.get("labels") or [])
        net = VideoClassifier(backbone, len(labels))
        net.load_state_dict(weights)
    else:
        backbone.load_state_dict({k.removeprefix("backbone."): v for k, v in weights.items() if k.startswith("backbone.")})
        net = backbone
    model = Deployable(net, modality=str(state.get("modality", "res"))).eval()
    return LoadedModel(model=model, kind=kind, backbone=str(state["backbone"]), width=float(state["width"]),
                       clip=ClipSpec.model_validate(state.get("clip") or {}), labels=labels, state=state)


@dataclass
class OnnxCheck:
    path: str
    bytes: int
    opset: int
    output: str
    clips_checked: int
    top1_agreement: float  # fraction of clips whose arg-max agrees (1.0 required)
    max_abs_diff: float
    onnxruntime: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def write_onnx(loaded: LoadedModel, dest: Path) -> Path:
    """Export with a dynamic batch dimension (legacy TorchScript exporter: no onnxscript needed); atomic."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the exporter's deprecation notice for dynamo=False
            torch.onnx.export(loaded.model, (torch.zeros(loaded.input_shape(2)),), name, dynamo=False,
                              input_names=[INPUT_NAME], output_names=[loaded.output], opset_version=ONNX_OPSET,
                              dynamic_axes={INPUT_NAME: {0: "batch"}, loaded.output: {0: "batch"}})
        _add_metadata(name, loaded)
        os.chmod(name, 0o644)
        os.replace(name, dest)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return dest


def _add_metadata(path: str, loaded: LoadedModel) -> None:
    """What a runtime needs beside the graph, as ONNX metadata: labels, clip spec, input modality, backbone."""
    import onnx

    model = onnx.load(path)
    meta = {"kdvideo.kind": loaded.kind, "kdvideo.backbone": loaded.backbone, "kdvideo.width": str(loaded.width),
            "kdvideo.modality": loaded.model.modality, "kdvideo.clip": json.dumps(loaded.clip.model_dump(mode="json")),
            "kdvideo.labels": json.dumps(loaded.labels)}
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, path)


def check_onnx(loaded: LoadedModel, onnx_path: Path, clips: Tensor) -> OnnxCheck:
    """Run ``clips`` through PyTorch and onnxruntime (CPU); the outputs' max abs difference and top-1 agreement."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        ref = loaded.model(clips).float()
    got = torch.from_numpy(session.run(None, {INPUT_NAME: clips.float().numpy()})[0])
    agree = float((got.argmax(1) == ref.argmax(1)).float().mean()) if got.numel() else 1.0
    return OnnxCheck(path=str(onnx_path), bytes=Path(onnx_path).stat().st_size, opset=ONNX_OPSET, output=loaded.output,
                     clips_checked=int(clips.shape[0]), top1_agreement=agree,
                     max_abs_diff=float((got - ref).abs().max()) if got.numel() else 0.0, onnxruntime=ort.__version__)


def check_clips(loaded: LoadedModel, videos: Sequence[Path] = (), *, clips_per_video: int = 2, seed: int = 0) -> Tensor:
    """Clips cut from ``videos`` as prediction cuts them (uniform, centre crop); random clips when none are given."""
    if not videos:
        return torch.randn(loaded.input_shape(4), generator=torch.Generator().manual_seed(seed))
    from ml.data import MultiClipDataset, VideoItem
    from ml.data.decord_reader import count_frames

    items = [VideoItem(path=Path(v), rel=Path(v).name, label=0) for v in videos]
    data = MultiClipDataset(items, [count_frames(Path(v)) for v in videos], loaded.clip, clips_per_video)
    return torch.cat([data[i]["clips"] for i in range(len(items))])


def export_onnx(checkpoint: Path, dest: Path, *, videos: Sequence[Path] = (), clips_per_video: int = 2) -> OnnxCheck:
    """Export ``checkpoint`` to ``dest`` and check it; a disagreeing top-1 is an error (the file is removed)."""
    loaded = load_deployable(checkpoint)
    write_onnx(loaded, dest)
    check = check_onnx(loaded, dest, check_clips(loaded, videos, clips_per_video=clips_per_video))
    if check.top1_agreement < 1.0:
        Path(dest).unlink(missing_ok=True)
        raise CheckpointError(f"the ONNX export disagrees with PyTorch on {1 - check.top1_agreement:.0%} of the clips "
                              f"(max abs difference {check.max_abs_diff:.3g})")
    return check


def export_torchscript(checkpoint: Path, dest: Path) -> Path:
    """A traced TorchScript file (optional format; fixed clip size, any batch)."""
    loaded = load_deployable(checkpoint)
    with torch.no_grad():
        traced = torch.jit.trace(loaded.model, torch.zeros(loaded.input_shape(2)))
    dest.parent.mkdir(parents=True, exist_ok=True)
    traced.save(str(dest))  # type: ignore[no-untyped-call]
    return dest


# ----------------------------------------------------------------------------- the command line


def add_arguments(p: Any) -> None:
    p.add_argument("--checkpoint", type=Path, required=True, help="a checkpoint.pt / weights.pt of any kind")
    p.add_argument("--format", dest="fmt", choices=["onnx", "torchscript"], default="onnx")
    p.add_argument("--out", type=Path, required=True, help="the file to write (model.onnx)")
    p.add_argument("--video", type=Path, action="append", default=[],
                   help="check on clips of this video (repeatable; default: random clips of the model's size)")


def run_from_args(args: Any) -> dict[str, Any]:
    if args.fmt == "torchscript":
        path = export_torchscript(args.checkpoint, args.out)
        return {"format": "torchscript", "path": str(path), "bytes": path.stat().st_size}
    return {"format": "onnx", **export_onnx(args.checkpoint, args.out, videos=args.video).to_dict()}
