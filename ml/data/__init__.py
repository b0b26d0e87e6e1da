"""Video data: split files, scanning, clip sampling, transforms, VCP edits, datasets and loaders.

Names are re-exported lazily so that ``import ml.data.splits`` (no torch, no decord) stays cheap.
decord is imported only by :mod:`ml.data.decord_reader`.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "VideoItem": "splits",
    "DatasetIndex": "splits",
    "Problem": "splits",
    "index_dataset": "splits",
    "parse_split_files": "splits",
    "class_balanced_subset": "splits",
    "scan_index": "scan",
    "VideoFile": "decord_reader",
    "VideoMeta": "decord_reader",
    "open_video": "decord_reader",
    "read_frames": "decord_reader",
    "probe": "decord_reader",
    "ClipInfo": "clip_sampling",
    "make_clip_sampler": "clip_sampling",
    "generator_for": "clip_sampling",
    "build_clip_transform": "transforms",
    "residual": "functional",
    "vcp_edit": "vcp",
    "PCLTupleDataset": "datasets",
    "ClipDataset": "datasets",
    "MultiClipDataset": "datasets",
    "make_loader": "loader",
    "VideoLoader": "loader",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ml.data' has no attribute {name!r}")
    return getattr(importlib.import_module(f"ml.data.{module}"), name)
