"""Where clips start in a video, and the seeded randomness behind every draw.

Every random choice for a sample comes from a ``torch.Generator`` seeded by
``(seed, epoch, index, stream)`` (:func:`generator_for`), so a sample is the same whichever
DataLoader worker builds it and however many workers there are. Streams separate independent
draws of one sample (tuple layout, each clip's augmentation, ...).

Frame indices past the end of a short video are clamped to its last frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal

import numpy as np
import torch

from ml.config import PretextConfig
from ml.data.clip_needs import tuple_total_frames  # noqa: F401 (re-exported: tests and callers use it here)

REMOTE = 4  # VCP label of the remote-clip edit (see ml.data.vcp)


def seed_for(seed: int, epoch: int, index: int, stream: int = 0) -> int:
    """A well-mixed 63-bit seed for one (run seed, epoch, sample index, stream)."""
    entropy = []
    for value in (seed, epoch, index, stream):  # each as two 32-bit words (64-bit two's complement)
        v = int(value) & 0xFFFFFFFFFFFFFFFF
        entropy += [v & 0xFFFFFFFF, v >> 32]
    state = np.random.SeedSequence(entropy).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def generator_for(seed: int, epoch: int, index: int, stream: int = 0) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed_for(seed, epoch, index, stream))
    return g


def randint(g: torch.Generator, low: int, high: int) -> int:
    """Uniform integer in [low, high] (both inclusive)."""
    if high < low:
        raise ValueError(f"empty range [{low}, {high}]")
    return int(torch.randint(low, high + 1, (1,), generator=g).item())


def uniform(g: torch.Generator, low: float, high: float) -> float:
    return float(low + (high - low) * torch.rand((), generator=g).item())


def frame_indices(start: int, length: int, num_frames: int) -> list[int]:
    """``length`` consecutive frames from ``start``, clamped into [0, num_frames - 1]."""
    last = max(num_frames - 1, 0)
    return [min(max(start + i, 0), last) for i in range(length)]


@dataclass(frozen=True)
class ClipInfo:
    """One clip of a video: its first frame, frame indices (clamped) and position among the clips."""

    start: int
    indices: list[int]
    clip_index: int = 0
    num_clips: int = 1

    @property
    def is_last(self) -> bool:
        return self.clip_index == self.num_clips - 1


def random_start(num_frames: int, clip_frames: int, g: torch.Generator) -> int:
    """Uniform start in [0, L - clip]; 0 when the video is shorter than a clip."""
    return randint(g, 0, max(num_frames - clip_frames, 0))


def center_start(num_frames: int, clip_frames: int) -> int:
    return max((num_frames - clip_frames) // 2, 0)


def linspace_starts(num_frames: int, clip_frames: int, num_clips: int) -> list[int]:
    """Starts of ``num_clips`` clips centred at linspace(clip/2, L - clip/2, N) (docs/method.md §4; int() as the reference).

    One clip is the centre clip (numpy's linspace would put it at the start).
    """
    if num_clips == 1:
        return [center_start(num_frames, clip_frames)]
    centres = np.linspace(clip_frames / 2.0, num_frames - clip_frames / 2.0, num_clips)
    return [max(int(c - clip_frames / 2.0), 0) for c in centres]


ClipSampler = Callable[[int, "torch.Generator | None"], list[ClipInfo]]


def make_clip_sampler(
    name: Literal["random", "center", "uniform"], clip_frames: int, num_clips: int = 1
) -> ClipSampler:
    """A sampler ``(num_frames, generator) -> [ClipInfo]`` by name.

    random: one clip at a uniform start (needs the generator); center: the middle clip;
    uniform: ``num_clips`` clips at linspace centres (evaluation, retrieval).
    """

    def random_sampler(num_frames: int, g: torch.Generator | None) -> list[ClipInfo]:
        if g is None:
            raise ValueError("the random clip sampler needs a generator")
        s = random_start(num_frames, clip_frames, g)
        return [ClipInfo(s, frame_indices(s, clip_frames, num_frames))]

    def center_sampler(num_frames: int, g: torch.Generator | None = None) -> list[ClipInfo]:
        s = center_start(num_frames, clip_frames)
        return [ClipInfo(s, frame_indices(s, clip_frames, num_frames))]

    def uniform_sampler(num_frames: int, g: torch.Generator | None = None) -> list[ClipInfo]:
        starts = linspace_starts(num_frames, clip_frames, num_clips)
        return [ClipInfo(s, frame_indices(s, clip_frames, num_frames), i, num_clips) for i, s in enumerate(starts)]

    samplers = {"random": random_sampler, "center": center_sampler, "uniform": uniform_sampler}
    if name not in samplers:
        raise ValueError(f"unknown clip sampler {name!r}; choose one of {sorted(samplers)}")
    return samplers[name]


# ---------------------------------------------------------------------------------------------
# PCL tuples (docs/method.md §2.1)


def tuple_step(clip_frames: int, pretext: PretextConfig) -> int:
    """Distance between consecutive clip starts: tuple_len+interval ("pcl" quirk) or clip+interval ("vcop")."""
    if pretext.spacing == "pcl":
        return pretext.tuple_len + pretext.interval
    return clip_frames + pretext.interval


def tuple_span(clip_frames: int, pretext: PretextConfig) -> int:
    """Frames the tuple's clips actually cover: step·(n-1) + clip."""
    return tuple_step(clip_frames, pretext) * (pretext.tuple_len - 1) + clip_frames


@dataclass(frozen=True)
class TupleInfo:
    start: int
    clips: list[ClipInfo]
    label: int
    remote: ClipInfo | None = None
    label_redrawn: bool = field(default=False)
    """True when y=4 was drawn but the video had no room for a remote clip (y redrawn from U{0..3})."""


def remote_starts(num_frames: int, clip_frames: int, tuple_start: int, tuple_end: int, distance: int) -> list[int]:
    """Starts of clips that end >= ``distance`` frames before the tuple or begin >= ``distance`` after it."""
    before = range(0, tuple_start - distance - clip_frames + 1)
    after = range(tuple_end + distance, num_frames - clip_frames + 1)
    return [*before, *after]


def sample_tuple(num_frames: int, clip_frames: int, pretext: PretextConfig, g: torch.Generator) -> TupleInfo:
    """Tuple start ~ U[0, L - total], label ~ U{0..num_classes-1}, and a remote clip when the label is 4.

    The remote clip is drawn uniformly among starts that keep it ``remote_distance`` frames away from
    the frames the tuple's clips cover (``tuple_span``); with no such start, y is redrawn from U{0..3}.
    """
    total = tuple_total_frames(clip_frames, pretext)
    start = randint(g, 0, max(num_frames - total, 0))
    step = tuple_step(clip_frames, pretext)
    n = pretext.tuple_len
    clips = [
        ClipInfo(start + i * step, frame_indices(start + i * step, clip_frames, num_frames), i, n) for i in range(n)
    ]
    label = randint(g, 0, pretext.num_classes - 1)
    remote: ClipInfo | None = None
    redrawn = False
    if label == REMOTE:
        end = start + tuple_span(clip_frames, pretext)
        candidates = remote_starts(num_frames, clip_frames, start, end, pretext.remote_distance)
        if candidates:
            s = candidates[randint(g, 0, len(candidates) - 1)]
            remote = ClipInfo(s, frame_indices(s, clip_frames, num_frames))
        else:
            label = randint(g, 0, REMOTE - 1)
            redrawn = True
    return TupleInfo(start, clips, label, remote, redrawn)
