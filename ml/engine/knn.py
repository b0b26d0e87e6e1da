"""The "knn" job kind: weighted kNN classification on frozen backbone features (ml.config.KnnConfig)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ml.config import KnnConfig
from ml.engine.callbacks import Callback
from ml.engine.evaluate import extract_video_features
from ml.engine.runner import RunResult, _data_summary, _write_results, frozen_backbone, train_then_test_videos
from ml.engine.runtime import Runtime


def weighted_knn(bank: Tensor, bank_labels: Tensor, queries: Tensor, query_labels: Tensor, *, k: int,
                 temperature: float, num_classes: int) -> dict[str, float]:
    """Top-1/top-5 of weighted kNN voting: each of a query's k most cosine-similar bank entries votes for its class
    with weight exp(similarity / temperature)."""
    if len(queries) == 0 or len(bank) == 0:
        return {"top1": 0.0, "top5": 0.0, "k": float(min(k, len(bank))), "queries": float(len(queries))}
    sim = F.normalize(queries.float(), dim=1) @ F.normalize(bank.float(), dim=1).t()
    k = min(k, len(bank))
    top_sim, top_idx = sim.topk(k, dim=1)
    votes = torch.zeros(len(queries), num_classes).scatter_add_(1, bank_labels[top_idx], (top_sim / temperature).exp())
    ranked = votes.topk(min(5, num_classes), dim=1).indices
    return {"top1": float((ranked[:, 0] == query_labels).float().mean()),
            "top5": float((ranked == query_labels[:, None]).any(dim=1).float().mean()),
            "k": float(k), "queries": float(len(queries))}


def run_knn(cfg: KnnConfig, *, out_dir: Path, callback: Callback, rt: Runtime, **_: Any) -> RunResult:
    backbone, model_cfg, clip = frozen_backbone(cfg.checkpoint, clip=cfg.clip, model=cfg.model)
    index, videos = train_then_test_videos(cfg.data, clip, cfg.clips, callback=callback, rt=rt)
    started = time.perf_counter()
    feats, labels = extract_video_features(backbone.to(rt.device), videos, rt=rt, modality=model_cfg.modality)
    n = len(index.train)
    scores: dict[str, Any] = weighted_knn(feats[:n], labels[:n], feats[n:], labels[n:], k=cfg.k,
                                          temperature=cfg.temperature, num_classes=len(index.classes))
    scores["protocol"] = (f"{index.source}: {len(index.test)} test videos vote over {n} train videos, weighted kNN "
                          f"(k={cfg.k}, T={cfg.temperature:g}), pooled features averaged over {cfg.clips} clips "
                          f"of {clip.frames}x{clip.crop}^2")
    results = {"kind": "knn", "status": "completed", "knn": scores, "checkpoint": str(cfg.checkpoint),
               "seconds": time.perf_counter() - started, "data": _data_summary(index)}
    callback.on_before_checkpoint(epoch=0)
    _write_results(out_dir, results)
    return RunResult("completed", 0, results, None)
