"""Evaluation protocols of PCL (docs/method.md §4): nearest-neighbour retrieval and video-level classification."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from ml.data.functional import residual
from ml.data.loader import VideoLoader, make_loader
from ml.engine.runtime import Runtime


def prepare_input(clips: Tensor, *, modality: str, time_dim: int) -> Tensor:
    """Residual frames (PCL default) or raw frames; applied on the device, batch-wise."""
    return residual(clips, time_dim) if modality == "res" else clips


@torch.no_grad()
def mean_loss_and_accuracy(
    logits_of: Callable[[Tensor], Tensor], batches: Iterable[dict[str, Any]], *, rt: Runtime, input_key: str
) -> tuple[float, float]:
    """Sample-weighted mean cross-entropy and top-1 accuracy of ``logits_of(batch[input_key])`` over ``batches``."""
    total = correct = 0
    loss_sum = 0.0
    for batch in batches:
        x = rt.to_device(batch[input_key])
        labels = rt.to_device(batch["label"])
        with rt.autocast():
            logits = logits_of(x).float()
        loss_sum += float(F.cross_entropy(logits, labels, reduction="sum"))
        correct += int((logits.argmax(1) == labels).sum())
        total += int(labels.shape[0])
    return loss_sum / max(total, 1), correct / max(total, 1)


EVAL_BATCH = 4  # videos per evaluation batch (each holds N clips)


def eval_loader(dataset: Dataset[Any], *, workers: int, rt: Runtime) -> VideoLoader:
    """An in-order loader, built once per run: its workers persist across the per-epoch evaluations."""
    return make_loader(dataset, batch_size=EVAL_BATCH, shuffle=False, workers=workers, seed=0, drop_last=False,
                       pin_memory=rt.pin_memory)


def pooled_map_feature(feature_map: Tensor) -> Tensor:
    """The reference R3D retrieval feature: conv5 map -> MaxPool(1,2,2) -> flatten (9,216-d at full size)."""
    _, _, _, h, w = feature_map.shape
    pooled = F.max_pool3d(feature_map, kernel_size=(1, min(2, h), min(2, w)), ceil_mode=True)
    return pooled.flatten(1)


@torch.no_grad()
def extract_video_features(
    backbone: nn.Module, batches: Iterable[dict[str, Any]], *, rt: Runtime, modality: str, feature: str = "pooled"
) -> tuple[Tensor, Tensor]:
    """Mean over each video's clips of the backbone feature; returns (N×D features, N labels)."""
    was_training = backbone.training
    backbone.eval()
    feats, labels = [], []
    for batch in batches:
        clips = rt.to_device(batch["clips"])  # B×N×C×T×H×W
        b, n = clips.shape[:2]
        x = prepare_input(clips.flatten(0, 1), modality=modality, time_dim=2)
        with rt.autocast():
            if feature == "map":
                f = pooled_map_feature(backbone.forward_features(x))
            else:
                f = backbone(x)
        feats.append(f.float().view(b, n, -1).mean(1).cpu())
        labels.append(batch["label"].cpu())
    backbone.train(was_training)
    return torch.cat(feats), torch.cat(labels)


def retrieval_topk(
    query: Tensor, query_labels: Tensor, gallery: Tensor, gallery_labels: Tensor, *, ks: Sequence[int]
) -> dict[str, float]:
    """Top-k hit rate: a query counts if any of its k nearest gallery videos (cosine) shares its class."""
    q = F.normalize(query.float(), dim=1)
    g = F.normalize(gallery.float(), dim=1)
    sim = q @ g.t()
    kmax = min(max(ks), g.shape[0])
    nearest = sim.topk(kmax, dim=1).indices
    hits = gallery_labels[nearest] == query_labels[:, None]
    out = {}
    for k in ks:
        out[f"top{k}"] = float(hits[:, : min(k, kmax)].any(dim=1).float().mean()) if len(q) else 0.0
    return out


def retrieval_eval(
    backbone: nn.Module,
    videos: Iterable[dict[str, Any]],
    *,
    gallery_size: int,
    rt: Runtime,
    modality: str,
    ks: Sequence[int],
    feature: str = "pooled",
) -> dict[str, float]:
    """PCL retrieve_clips.py: ``videos`` yields the train videos (the gallery, first ``gallery_size``) then the
    test videos (the queries), so one loader and one pass serve both."""
    feats, labels = extract_video_features(backbone, videos, rt=rt, modality=modality, feature=feature)
    return retrieval_topk(feats[gallery_size:], labels[gallery_size:], feats[:gallery_size], labels[:gallery_size], ks=ks)


@torch.no_grad()
def classify_videos(model: nn.Module, batches: Iterable[dict[str, Any]], *, rt: Runtime, modality: str) -> dict[str, float]:
    """Clip-level and video-level (logits averaged over the clips) top-1/top-5 accuracy."""
    was_training = model.training
    model.eval()
    clip_hits1 = clip_hits5 = clip_total = 0
    video_hits1 = video_hits5 = video_total = 0
    for batch in batches:
        clips = rt.to_device(batch["clips"])
        labels = batch["label"].to(rt.device)
        b, n = clips.shape[:2]
        with rt.autocast():
            logits = model(prepare_input(clips.flatten(0, 1), modality=modality, time_dim=2)).float().view(b, n, -1)
        k = min(5, logits.shape[-1])
        clip_top = logits.topk(k, dim=-1).indices  # B×N×k
        clip_hits1 += int((clip_top[..., 0] == labels[:, None]).sum())
        clip_hits5 += int((clip_top == labels[:, None, None]).any(-1).sum())
        clip_total += b * n
        video_top = logits.mean(1).topk(k, dim=-1).indices
        video_hits1 += int((video_top[:, 0] == labels).sum())
        video_hits5 += int((video_top == labels[:, None]).any(-1).sum())
        video_total += b
    model.train(was_training)
    return {
        "clip_top1": clip_hits1 / max(clip_total, 1),
        "clip_top5": clip_hits5 / max(clip_total, 1),
        "video_top1": video_hits1 / max(video_total, 1),
        "video_top5": video_hits5 / max(video_total, 1),
        "videos": float(video_total),
    }
