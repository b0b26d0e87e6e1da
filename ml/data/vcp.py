"""VCP pretext edits of the middle clip (docs/method.md §2.1), pure functions on C×T×H×W tensors.

Dims are addressed from the end (T=-3, H=-2, W=-1), so a batch B×C×T×H×W works too.

=====  ======================  ==========================================================
label  name                    edit
=====  ======================  ==========================================================
0      original                unchanged
1      rotation                ``rot90`` on (H, W), k ∈ {1, 2, 3}
2      spatial permutation     quadrants A B / C D rearranged to D C / B A
3      temporal shuffle        T split into 4 chunks (as even as possible); two distinct
                               non-empty chunks swap places
4      remote clip             replaced by a clip from far away in the same video
=====  ======================  ==========================================================
"""

from __future__ import annotations

from typing import Any

import torch

from ml.data.clip_sampling import randint

ORIGINAL, ROTATION, SPATIAL_PERMUTATION, TEMPORAL_SHUFFLE, REMOTE = range(5)
LABEL_NAMES = ("original", "rotation", "spatial_permutation", "temporal_shuffle", "remote_clip")
NUM_CHUNKS = 4


def rotate(clip: torch.Tensor, k: int) -> torch.Tensor:
    """``torch.rot90`` by k quarter turns in the (H, W) plane (counter-clockwise for k > 0)."""
    return torch.rot90(clip, k, dims=(-2, -1))


def permute_quadrants(clip: torch.Tensor) -> torch.Tensor:
    """Rearrange the quadrants [A B; C D] into [D C; B A] (each quadrant's content unchanged).

    With H, W even this swaps top-left with bottom-right and top-right with bottom-left. Odd sizes
    split at H//2, W//2 and still give an H×W result (the larger parts move to the top/left).
    """
    h, w = clip.shape[-2] // 2, clip.shape[-1] // 2
    a, b = clip[..., :h, :w], clip[..., :h, w:]
    c, d = clip[..., h:, :w], clip[..., h:, w:]
    top = torch.cat((d, c), dim=-1)
    bottom = torch.cat((b, a), dim=-1)
    return torch.cat((top, bottom), dim=-2)


def temporal_chunks(num_frames: int, num_chunks: int = NUM_CHUNKS) -> list[tuple[int, int]]:
    """[start, end) of ``num_chunks`` chunks covering ``num_frames`` as evenly as possible (larger first)."""
    base, extra = divmod(num_frames, num_chunks)
    bounds, start = [], 0
    for i in range(num_chunks):
        size = base + (1 if i < extra else 0)
        bounds.append((start, start + size))
        start += size
    return bounds


def swap_chunks(clip: torch.Tensor, i: int, j: int, num_chunks: int = NUM_CHUNKS) -> torch.Tensor:
    """Split T (dim -3) into chunks and swap chunks ``i`` and ``j`` (other chunks keep their place)."""
    chunks = temporal_chunks(clip.shape[-3], num_chunks)
    if not (0 <= i < num_chunks and 0 <= j < num_chunks) or i == j:
        raise ValueError(f"need two distinct chunk indices in [0, {num_chunks}), got {i}, {j}")
    order = list(range(num_chunks))
    order[i], order[j] = order[j], order[i]
    parts = [clip[..., chunks[k][0] : chunks[k][1], :, :] for k in order]
    return torch.cat(parts, dim=-3)


def draw_edit(label: int, num_frames: int, g: torch.Generator) -> dict[str, Any]:
    """The random part of an edit: {"k"} for rotation, {"i", "j"} for the temporal shuffle, {} otherwise."""
    if label == ROTATION:
        return {"k": randint(g, 1, 3)}
    if label == TEMPORAL_SHUFFLE:
        usable = [n for n, (s, e) in enumerate(temporal_chunks(num_frames)) if e > s]
        if len(usable) < 2:
            raise ValueError(f"a temporal shuffle needs at least 2 frames, got {num_frames}")
        i = usable[randint(g, 0, len(usable) - 1)]
        rest = [n for n in usable if n != i]
        return {"i": i, "j": rest[randint(g, 0, len(rest) - 1)]}
    return {}


def apply_edit(clip: torch.Tensor, label: int, params: dict[str, Any], remote: torch.Tensor | None = None) -> torch.Tensor:
    if label == ORIGINAL:
        return clip
    if label == ROTATION:
        return rotate(clip, params["k"])
    if label == SPATIAL_PERMUTATION:
        return permute_quadrants(clip)
    if label == TEMPORAL_SHUFFLE:
        return swap_chunks(clip, params["i"], params["j"])
    if label == REMOTE:
        if remote is None:
            raise ValueError("label 4 (remote clip) needs the remote clip")
        if remote.shape != clip.shape:
            raise ValueError(f"remote clip shape {tuple(remote.shape)} differs from {tuple(clip.shape)}")
        return remote
    raise ValueError(f"unknown VCP label {label}; expected 0..4 ({', '.join(LABEL_NAMES)})")


def vcp_edit(
    clip: torch.Tensor, label: int, *, generator: torch.Generator, remote: torch.Tensor | None = None
) -> torch.Tensor:
    """Edit ``clip`` (C×T×H×W) for pretext ``label``, drawing k / chunk pair from ``generator``."""
    return apply_edit(clip, label, draw_edit(label, clip.shape[-3], generator), remote)
