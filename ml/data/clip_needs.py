"""How many frames a video must have to give one sample of a config (torch-free, so the API can ask).

The clip sampler (:mod:`ml.data.clip_sampling`) draws a PCL tuple from ``tuple_total_frames`` frames and a
plain clip from ``clip.frames``; the engine's scan drops shorter videos (``prepare_index(min_frames=...)``)
and a run whose training list ends up empty fails. The API checks the same number against a dataset's
scanned frame counts before it accepts a job.
"""

from __future__ import annotations

from typing import Any

from ml.config import ClipSpec, PretextConfig


def tuple_total_frames(clip_frames: int, pretext: PretextConfig) -> int:
    """Frames a tuple reserves: clip·n + interval·(n-1) (16·3+8·2 = 64), the reference's ``tuple_total_frames``.

    The reference draws ``tuple_start ~ U[0, L - 64]`` and keeps videos with at least 64 frames for
    both spacings (with "pcl" spacing the clips actually cover only ``tuple_span`` = 38 of them).
    """
    return clip_frames * pretext.tuple_len + pretext.interval * (pretext.tuple_len - 1)


def frames_needed(clip: ClipSpec, pretext: PretextConfig | None = None) -> int:
    """Shortest usable video: a whole PCL tuple when ``pretext`` is given (pretrain/distill), else one clip."""
    return tuple_total_frames(clip.frames, pretext) if pretext is not None else clip.frames


def config_frames_needed(config: Any) -> int | None:
    """``frames_needed`` of an ml config (PretrainConfig, FinetuneConfig, RetrieveConfig); None when the clip
    is not known before the run (an evaluation that takes its clip from the checkpoint)."""
    clip = getattr(config, "clip", None)
    if not isinstance(clip, ClipSpec):
        return None
    pretext = getattr(config, "pretext", None)
    return frames_needed(clip, pretext if isinstance(pretext, PretextConfig) else None)
