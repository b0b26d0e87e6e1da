"""torch Datasets over a list of videos; each ``__getitem__`` returns a dict.

Frames are decoded at ClipSpec.resize_w × resize_h and only at the indices a sample needs.
Randomness comes from generators seeded by (seed, epoch, index, stream) (see
:func:`ml.data.clip_sampling.generator_for`), so a sample does not depend on worker count or order.
Call ``set_epoch(epoch)`` before iterating an epoch; the epoch lives in shared memory, so persistent
DataLoader workers see the change (``ml.data.loader.VideoLoader.set_epoch`` does both for you).

``frame_counts`` is either a mapping rel -> frames (``DatasetIndex.frames`` after
:func:`ml.data.scan.scan_index`) or a sequence aligned with ``items``.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ml.config import AugmentConfig, ClipSpec, PretextConfig
from ml.data.clip_needs import frames_needed
from ml.data.clip_sampling import (
    ClipInfo,
    generator_for,
    make_clip_sampler,
    sample_tuple,
)
from ml.data.decord_reader import open_video
from ml.data.frame_cache import DecodedVideoCache
from ml.data.splits import VideoItem
from ml.data.transforms import build_clip_transform
from ml.data.vcp import vcp_edit
from ml.errors import DatasetError

# generator streams of one sample
_STREAM_LAYOUT = 0  # clip positions, pretext label, VCP edit parameters
_STREAM_CLIP = 1  # + clip slot: each clip's augmentation
_STREAM_REMOTE = 1000  # the remote clip's augmentation


def _aligned_counts(items: Sequence[VideoItem], frame_counts: Mapping[str, int] | Sequence[int]) -> list[int]:
    if isinstance(frame_counts, Mapping):
        missing = [it.rel for it in items if it.rel not in frame_counts]
        if missing:
            raise DatasetError(
                f"no frame count for {len(missing)} videos (e.g. {missing[0]}): scan the index first (ml.data.scan.scan_index)"
            )
        return [int(frame_counts[it.rel]) for it in items]
    counts = [int(n) for n in frame_counts]
    if len(counts) != len(items):
        raise DatasetError(f"{len(counts)} frame counts for {len(items)} videos")
    return counts


class VideoDataset(Dataset[dict[str, Any]]):
    """Shared plumbing: items, frame counts, decoding, and a shared-memory epoch counter."""

    def __init__(self, items: Sequence[VideoItem], frame_counts: Mapping[str, int] | Sequence[int], clip: ClipSpec,
                 seed: int = 0, cache: DecodedVideoCache | None = None) -> None:
        self.items = list(items)
        self.frame_counts = _aligned_counts(self.items, frame_counts)
        self.clip = clip
        self.seed = int(seed)
        self.cache = cache
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    def __len__(self) -> int:
        return len(self.items)

    @property
    def epoch(self) -> int:
        return int(self._epoch.item())

    def set_epoch(self, epoch: int) -> None:
        self._epoch.fill_(int(epoch))

    @property
    def labels(self) -> list[int]:
        return [it.label for it in self.items]

    def _decode(self, index: int, clips: Sequence[ClipInfo]) -> list[np.ndarray]:
        """uint8 T×H×W×3 per clip, decoding each distinct frame of the video once."""
        item = self.items[index]
        size = {"width": self.clip.resize_w, "height": self.clip.resize_h}
        if self.cache is not None and self.cache.may_hold(str(item.path), **size):
            video = self.cache.frames(str(item.path), **size)
            last = len(video) - 1
            return [video[[min(i, last) for i in c.indices]] for c in clips]
        wanted = [i for c in clips for i in c.indices]
        with open_video(item.path, **size) as video:
            last = video.num_frames - 1
            frames = video.read([min(i, last) for i in wanted])
        out, pos = [], 0
        for c in clips:
            out.append(frames[pos : pos + len(c.indices)])
            pos += len(c.indices)
        return out


class PCLTupleDataset(VideoDataset):
    """PCL-VCP tuples (docs/method.md §2.1): ``{"clips": n×C×T×H×W, "label": int, "index": int}``.

    Per video and epoch: tuple start ~ U[0, L - total] (total = clip·n + interval·(n-1) = 64 by
    default, as the reference, for both spacings); clip i starts at +i·step with step
    tuple_len+interval ("pcl") or clip+interval ("vcop"); y ~ U{0..num_classes-1}. For y=4 a remote
    clip lies ≥ remote_distance frames before or after the frames the tuple covers; without room, y
    is redrawn from U{0..3}. Every clip (and the remote one) has its own augmentation draw; the middle
    clip (index n//2) is then edited per y (:mod:`ml.data.vcp`, on the finished, normalised clip;
    crops are square, so rot90 keeps the shape). The residual is left to the model/engine.
    """

    def __init__(
        self,
        items: Sequence[VideoItem],
        frame_counts: Mapping[str, int] | Sequence[int],
        clip: ClipSpec,
        augment: AugmentConfig,
        pretext: PretextConfig,
        seed: int = 0,
        cache: DecodedVideoCache | None = None,
    ) -> None:
        super().__init__(items, frame_counts, clip, seed, cache)
        self.augment = augment
        self.pretext = pretext
        self.transform = build_clip_transform(clip, augment, train=True)

    @staticmethod
    def min_frames(clip: ClipSpec, pretext: PretextConfig) -> int:
        """Shortest video scan should keep: clip·n + interval·(n-1) (64 for PCL defaults, the reference's list rule)."""
        return frames_needed(clip, pretext)

    def __getitem__(self, index: int) -> dict[str, Any]:
        epoch = self.epoch
        n_frames = self.frame_counts[index]
        g = generator_for(self.seed, epoch, index, _STREAM_LAYOUT)
        info = sample_tuple(n_frames, self.clip.frames, self.pretext, g)
        clip_infos = list(info.clips) + ([info.remote] if info.remote is not None else [])
        decoded = self._decode(index, clip_infos)
        clips = []
        for slot, frames in enumerate(decoded[: len(info.clips)]):
            gen = generator_for(self.seed, epoch, index, _STREAM_CLIP + slot)
            clips.append(self.transform({"frames": frames, "generator": gen})["clip"])
        remote = None
        if info.remote is not None:
            gen = generator_for(self.seed, epoch, index, _STREAM_REMOTE)
            remote = self.transform({"frames": decoded[-1], "generator": gen})["clip"]
        middle = len(clips) // 2
        clips[middle] = vcp_edit(clips[middle], info.label, generator=g, remote=remote)
        return {"clips": torch.stack(clips), "label": info.label, "index": index}


class ClipDataset(VideoDataset):
    """One clip per video: random start + augmentation (train) or the centre clip, centre crop (eval).

    Returns ``{"clip": C×T×H×W, "label": int, "index": int}``.
    """

    def __init__(
        self,
        items: Sequence[VideoItem],
        frame_counts: Mapping[str, int] | Sequence[int],
        clip: ClipSpec,
        augment: AugmentConfig | None,
        seed: int = 0,
        train: bool = True,
        cache: DecodedVideoCache | None = None,
    ) -> None:
        super().__init__(items, frame_counts, clip, seed, cache)
        self.train = train
        self.augment = augment
        self.sampler = make_clip_sampler("random" if train else "center", clip.frames)
        self.transform = build_clip_transform(clip, augment, train=train)

    def __getitem__(self, index: int) -> dict[str, Any]:
        g = generator_for(self.seed, self.epoch, index, _STREAM_LAYOUT) if self.train else None
        (info,) = self.sampler(self.frame_counts[index], g)
        (frames,) = self._decode(index, [info])
        gen = generator_for(self.seed, self.epoch, index, _STREAM_CLIP) if self.train else None
        clip = self.transform({"frames": frames, "generator": gen})["clip"]
        return {"clip": clip, "label": self.items[index].label, "index": index}


class MultiClipDataset(VideoDataset):
    """``num_clips`` clips at linspace centres, centre crop, no augmentation (test / retrieval, docs/method.md §4).

    Returns ``{"clips": N×C×T×H×W, "label": int, "index": int, "frames": LongTensor N×T}``.
    """

    def __init__(self, items: Sequence[VideoItem], frame_counts: Mapping[str, int] | Sequence[int], clip: ClipSpec,
                 num_clips: int = 10, cache: DecodedVideoCache | None = None) -> None:
        super().__init__(items, frame_counts, clip, 0, cache)
        if num_clips < 1:
            raise ValueError(f"num_clips must be >= 1, got {num_clips}")
        self.num_clips = num_clips
        self.sampler = make_clip_sampler("uniform", clip.frames, num_clips)
        self.transform = build_clip_transform(clip, None, train=False)

    def __getitem__(self, index: int) -> dict[str, Any]:
        infos = self.sampler(self.frame_counts[index], None)
        decoded = self._decode(index, infos)
        clips = [self.transform({"frames": f})["clip"] for f in decoded]
        return {
            "clips": torch.stack(clips),
            "label": self.items[index].label,
            "index": index,
            "frames": torch.tensor([c.indices for c in infos], dtype=torch.long),
        }
