"""The compression report card of a model: size, compute, measured latency, accuracy kept vs its teacher.

* parameters: the whole deployable network (classifier or backbone) and its backbone;
* GMACs / GFLOPs per clip at the checkpoint's own clip size, counted by ``torch.utils.flop_counter`` on
  the meta device (no compute; a MAC is two FLOPs; the residual input's subtraction is not counted);
* latency: median wall time of ``runs`` forward passes after ``warmup`` ones, for one clip and for one
  video of ``clips_per_video`` clips (one batch, as prediction runs it), on the CPU with the stated thread
  count, and on the GPU when one is present;
* accuracy: the run's video-level top-1 (``results.test.video_top1`` of a fine-tuned checkpoint) and, given
  the teacher's, the fraction kept;
* size on disk: the checkpoint file, the weights alone (as ``torch.save`` writes them), the ONNX file if given.
"""

from __future__ import annotations

import copy
import io
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from ml.export import LoadedModel, load_deployable


@dataclass
class Latency:
    device: str
    threads: int | None  # CPU intra-op threads (None on a GPU)
    runs: int
    warmup: int
    clip_ms: float  # median, batch of 1 clip
    video_ms: float  # median, one batch of clips_per_video clips
    clips_per_video: int


@dataclass
class ReportCard:
    backbone: str
    width: float
    kind: str
    output: str
    clip: str  # T×H×W the figures are for
    params: int
    backbone_params: int
    gmacs_per_clip: float
    gflops_per_clip: float
    latency: list[Latency] = field(default_factory=list)
    accuracy: float | None = None  # video-level top-1 on the test list
    teacher_accuracy: float | None = None
    accuracy_kept: float | None = None  # accuracy / teacher_accuracy
    teacher: dict[str, Any] = field(default_factory=dict)
    size_bytes: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def count_macs(loaded: LoadedModel) -> float:
    """Multiply-accumulates for one clip, on a meta-device copy (nothing is computed or allocated)."""
    meta = copy.deepcopy(loaded.model).to("meta")
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        meta(torch.empty(loaded.input_shape(1), device="meta"))
    return counter.get_total_flops() / 2


def measure_latency(loaded: LoadedModel, *, device: str = "cpu", threads: int | None = 1, runs: int = 5, warmup: int = 2,
                    clips_per_video: int = 10) -> Latency:
    dev = torch.device(device)
    model = copy.deepcopy(loaded.model).to(dev).eval()
    previous = torch.get_num_threads()
    changed = dev.type == "cpu" and bool(threads) and threads != previous
    if changed:
        torch.set_num_threads(int(threads or previous))
    try:
        def median_ms(batch: int) -> float:
            x = torch.randn(loaded.input_shape(batch), device=dev)
            times = []
            with torch.no_grad():
                for i in range(warmup + runs):
                    if dev.type == "cuda":
                        torch.cuda.synchronize(dev)
                    started = time.perf_counter()
                    model(x)
                    if dev.type == "cuda":
                        torch.cuda.synchronize(dev)
                    if i >= warmup:
                        times.append((time.perf_counter() - started) * 1000)
            return statistics.median(times)

        return Latency(device=str(dev), threads=torch.get_num_threads() if dev.type == "cpu" else None, runs=runs,
                       warmup=warmup, clip_ms=median_ms(1), video_ms=median_ms(clips_per_video), clips_per_video=clips_per_video)
    finally:
        if changed:
            torch.set_num_threads(previous)


def _video_top1(state: dict[str, Any]) -> float | None:
    test = (state.get("results") or {}).get("test") or {}
    value = test.get("video_top1")
    return float(value) if isinstance(value, (int, float)) else None


def weights_bytes(loaded: LoadedModel) -> int:
    buffer = io.BytesIO()
    torch.save(loaded.model.net.state_dict(), buffer)
    return buffer.tell()


def report_card(checkpoint: Path | str, *, teacher_checkpoint: Path | str | None = None,
                teacher_accuracy: float | None = None, onnx: Path | None = None, threads: int | None = 1, runs: int = 5,
                warmup: int = 2, clips_per_video: int = 10, gpu: bool | None = None) -> ReportCard:
    """The card of ``checkpoint``; the teacher's fine-tuned classifier (``teacher_checkpoint``), or its accuracy,
    gives the accuracy kept.

    ``threads``: CPU threads for the timing (None: leave the process's setting, as a server must); ``gpu``: also
    time on CUDA (None: when available).
    """
    loaded = load_deployable(checkpoint)
    macs = count_macs(loaded)
    backbone = loaded.model.net.backbone if hasattr(loaded.model.net, "backbone") else loaded.model.net
    card = ReportCard(
        backbone=loaded.backbone, width=loaded.width, kind=loaded.kind, output=loaded.output,
        clip=f"{loaded.clip.frames}x{loaded.clip.crop}x{loaded.clip.crop}",
        params=sum(p.numel() for p in loaded.model.parameters()),
        backbone_params=sum(p.numel() for p in backbone.parameters()),
        gmacs_per_clip=round(macs / 1e9, 6), gflops_per_clip=round(2 * macs / 1e9, 6),
        accuracy=_video_top1(loaded.state),
        size_bytes={"checkpoint": Path(checkpoint).stat().st_size, "weights": weights_bytes(loaded)},
    )
    if onnx is not None and Path(onnx).is_file():
        card.size_bytes["onnx"] = Path(onnx).stat().st_size
    timing = dict(runs=runs, warmup=warmup, clips_per_video=clips_per_video)
    card.latency.append(measure_latency(loaded, device="cpu", threads=threads, **timing))
    if gpu or (gpu is None and torch.cuda.is_available()):
        card.latency.append(measure_latency(loaded, device="cuda", threads=None, **timing))
    teacher = {k.removeprefix("teacher_"): loaded.state[k] for k in ("teacher_backbone", "teacher_width") if k in loaded.state}
    if teacher_checkpoint is not None:
        tstate = load_deployable(teacher_checkpoint)
        teacher = {"backbone": tstate.backbone, "width": tstate.width, **teacher}
        card.teacher_accuracy = _video_top1(tstate.state)
        teacher_params = sum(p.numel() for p in tstate.model.parameters())
        teacher["params"] = teacher_params
        teacher["gmacs_per_clip"] = round(count_macs(tstate) / 1e9, 6)
    if teacher_accuracy is not None:
        card.teacher_accuracy = teacher_accuracy
    card.teacher = teacher
    if card.accuracy is not None and card.teacher_accuracy:
        card.accuracy_kept = round(card.accuracy / card.teacher_accuracy, 4)
    return card


MARKDOWN_HEADER = ("| model | backbone | params | GFLOPs/clip | CPU ms clip / 10-clip video | GPU ms clip / video "
                   "| video top-1 | kept vs teacher | weights |\n|---|---|---|---|---|---|---|---|---|")


def markdown_row(name: str, card: ReportCard) -> str:
    """One line of BENCHMARKS.md's report-card table (under :data:`MARKDOWN_HEADER`)."""
    def pct(v: float | None) -> str:
        return "-" if v is None else f"{100 * v:.1f}%"

    def timing(device: str) -> str:
        t = next((t for t in card.latency if t.device.startswith(device)), None)
        if t is None:
            return "-"
        return f"{t.clip_ms:.1f} / {t.video_ms:.1f}" + (f" ({t.threads} thr)" if t.threads else "")

    cells = [name, f"{card.backbone} x{card.width:g}", f"{card.params:,}", f"{card.gflops_per_clip:.3f}", timing("cpu"),
             timing("cuda"), pct(card.accuracy), pct(card.accuracy_kept), f"{card.size_bytes.get('weights', 0) / 1024:.0f} KiB"]
    return "| " + " | ".join(cells) + " |"


# ----------------------------------------------------------------------------- the command line


def add_arguments(p: Any) -> None:
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--teacher", type=Path, help="the teacher's fine-tuned checkpoint (for accuracy kept)")
    p.add_argument("--onnx", type=Path, help="an exported ONNX file, to report its size")
    p.add_argument("--threads", type=int, default=1, help="CPU threads for the latency figures")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--clips-per-video", type=int, default=10)


def run_from_args(args: Any) -> dict[str, Any]:
    return report_card(args.checkpoint, teacher_checkpoint=args.teacher, onnx=args.onnx, threads=args.threads,
                       runs=args.runs, warmup=args.warmup, clips_per_video=args.clips_per_video).to_dict()
