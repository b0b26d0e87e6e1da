"""Classify a video file with a fine-tuned checkpoint: N uniform clips, averaged class scores, top-k.

The checkpoint carries everything needed to repeat training's preprocessing (labels, backbone,
width, modality, clip spec), so a prediction sees clips cut exactly like the test protocol's.
"""

from __future__ import annotations

import base64
import struct
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ml.config import ClipSpec
from ml.data import MultiClipDataset, VideoItem
from ml.data.decord_reader import count_frames, read_frames
from ml.engine.checkpoint import WEIGHTS_FORMAT, load_checkpoint
from ml.engine.evaluate import prepare_input
from ml.errors import CheckpointError, VideoTooShortError
from ml.models import build_backbone
from ml.models.pcl_net import VideoClassifier


@dataclass
class Prediction:
    top_k: list[dict[str, Any]]
    clips: int
    frames_sampled: list[list[int]]
    num_frames: int
    latency_ms: float
    thumbnails: list[str] = field(default_factory=list)
    """One PNG data URI per clip (its middle frame), when asked for."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Predictor:
    """A loaded classifier; thread-compatible for inference (no state changes after load)."""

    def __init__(self, model: VideoClassifier, *, labels: list[str], clip: ClipSpec, modality: str, backbone: str,
                 width: float, device: torch.device, source: Path | None = None, results: dict[str, Any] | None = None) -> None:
        self.model, self.labels, self.clip, self.modality = model.eval(), labels, clip, modality
        self.backbone, self.width, self.device, self.source = backbone, width, device, source
        self.results = results or {}

    @classmethod
    def load(cls, path: Path | str, *, device: str = "cpu") -> "Predictor":
        state = load_checkpoint(Path(path))  # weights_only: a crafted pickle is refused, never run
        if state.get("kind") != "finetune" or "labels" not in state:
            raise CheckpointError(
                f"{path} is a {state.get('kind')!r} checkpoint; prediction needs a fine-tuned classifier (run finetune first)"
            )
        labels = list(state["labels"])
        backbone = build_backbone(state["backbone"], width=state["width"])
        model = VideoClassifier(backbone, len(labels))
        # a training checkpoint, or its weights-only export (GET /jobs/{id}/checkpoint)
        model.load_state_dict(state["state_dict"] if state.get("format") == WEIGHTS_FORMAT else state["task"]["model"])
        dev = torch.device(device)
        return cls(model.to(dev), labels=labels, clip=ClipSpec.model_validate(state["clip"]),
                   modality=state.get("modality", "res"), backbone=state["backbone"], width=float(state["width"]),
                   device=dev, source=Path(path), results=state.get("results"))

    @torch.no_grad()
    def predict(self, video: Path | str, *, top_k: int = 5, clips: int = 10, thumbnails: bool = False,
                thumbnail_height: int = 72) -> Prediction:
        """Raises ml.errors.VideoError subclasses for files that are not usable videos."""
        started = time.perf_counter()
        path = Path(video)
        frames = count_frames(path)
        if frames < self.clip.frames:
            raise VideoTooShortError(str(path), f"{frames} decodable frames; this model needs at least {self.clip.frames}")
        sample = MultiClipDataset([VideoItem(path=path, rel=path.name, label=0)], [frames], self.clip, clips)[0]
        x = sample["clips"].to(self.device)  # N×C×T×H×W
        logits = self.model(prepare_input(x, modality=self.modality, time_dim=2))
        # Logits are averaged over clips before the softmax, as in the video-level test protocol.
        scores = torch.softmax(logits.float().mean(0), dim=0)
        k = max(1, min(top_k, len(self.labels)))
        best = scores.topk(k)
        ranked = [{"label": self.labels[int(i)], "score": float(s)} for s, i in zip(best.values, best.indices)]
        sampled = sample["frames"].tolist()
        thumbs = clip_thumbnails(path, sampled, height=thumbnail_height, aspect=self.clip.resize_w / self.clip.resize_h) if thumbnails else []
        return Prediction(top_k=ranked, clips=int(x.shape[0]), frames_sampled=sampled, num_frames=frames,
                          latency_ms=(time.perf_counter() - started) * 1000, thumbnails=thumbs)


def clip_thumbnails(path: Path, frames_sampled: list[list[int]], *, height: int, aspect: float) -> list[str]:
    """The middle frame of each clip, decoded small, as PNG data URIs (what the user sees of the sampled frames)."""
    width = max(2, int(round(height * aspect / 2)) * 2)
    middles = [clip[len(clip) // 2] for clip in frames_sampled]
    images = read_frames(path, middles, width=width, height=height)
    return ["data:image/png;base64," + base64.b64encode(encode_png(img)).decode() for img in images]


def encode_png(rgb: np.ndarray) -> bytes:
    """Minimal PNG writer for an H×W×3 uint8 array (no imaging library needed)."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[row].tobytes() for row in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")
