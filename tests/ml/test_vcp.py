"""VCP edits on hand-made tensors: each does exactly its documented change."""

from __future__ import annotations

import pytest
import torch

from ml.data import vcp


def _clip(c: int = 2, t: int = 8, h: int = 4, w: int = 4) -> torch.Tensor:
    return torch.arange(c * t * h * w, dtype=torch.float32).reshape(c, t, h, w)


def test_original_is_unchanged() -> None:
    x = _clip()
    assert vcp.vcp_edit(x, vcp.ORIGINAL, generator=torch.Generator().manual_seed(0)) is x


@pytest.mark.parametrize("k", [1, 2, 3])
def test_rotation_by_quarter_turns(k: int) -> None:
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).expand(3, 5, 2, 2)
    expected = {1: [[2.0, 4.0], [1.0, 3.0]], 2: [[4.0, 3.0], [2.0, 1.0]], 3: [[3.0, 1.0], [4.0, 2.0]]}[k]
    out = vcp.rotate(x, k)
    assert torch.equal(out, torch.tensor(expected).expand(3, 5, 2, 2))
    assert torch.equal(vcp.apply_edit(x, vcp.ROTATION, {"k": k}), out)


def test_rotation_draws_k_in_1_to_3() -> None:
    g = torch.Generator().manual_seed(0)
    ks = {vcp.draw_edit(vcp.ROTATION, 8, g)["k"] for _ in range(100)}
    assert ks == {1, 2, 3}


def test_spatial_permutation_is_d_c_b_a() -> None:
    a, b, c, d = (torch.full((2, 3, 2, 2), float(v)) for v in (1, 2, 3, 4))
    x = torch.cat((torch.cat((a, b), -1), torch.cat((c, d), -1)), -2)  # [A B; C D], 4x4 per frame
    out = vcp.permute_quadrants(x)
    expected = torch.cat((torch.cat((d, c), -1), torch.cat((b, a), -1)), -2)
    assert torch.equal(out, expected)
    # quadrant contents move as blocks (not rotated): top-left of the output is D exactly
    y = _clip(1, 1, 4, 4)
    z = vcp.permute_quadrants(y)
    assert torch.equal(z[..., :2, :2], y[..., 2:, 2:]) and torch.equal(z[..., :2, 2:], y[..., 2:, :2])
    assert torch.equal(z[..., 2:, :2], y[..., :2, 2:]) and torch.equal(z[..., 2:, 2:], y[..., :2, :2])
    assert torch.equal(vcp.permute_quadrants(z), y)  # an involution for even sizes


def test_spatial_permutation_odd_size_keeps_shape_and_pixels() -> None:
    y = _clip(1, 2, 5, 5)
    z = vcp.permute_quadrants(y)
    assert z.shape == y.shape
    assert torch.equal(z.flatten().sort().values, y.flatten().sort().values)


def test_temporal_shuffle_swaps_two_chunks_of_four() -> None:
    x = torch.arange(16, dtype=torch.float32).view(1, 16, 1, 1).expand(3, 16, 2, 2)
    out = vcp.swap_chunks(x, 0, 2)
    order = out[0, :, 0, 0].tolist()
    assert order == [8, 9, 10, 11, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15]
    assert torch.equal(out[1:], out[:1].expand(2, 16, 2, 2))


def test_temporal_shuffle_draws_distinct_chunks_and_changes_the_clip() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.arange(16, dtype=torch.float32).view(1, 16, 1, 1)
    pairs = set()
    for _ in range(200):
        params = vcp.draw_edit(vcp.TEMPORAL_SHUFFLE, 16, g)
        assert params["i"] != params["j"]
        pairs.add(frozenset((params["i"], params["j"])))
        out = vcp.apply_edit(x, vcp.TEMPORAL_SHUFFLE, params)
        assert not torch.equal(out, x) and sorted(out.flatten().tolist()) == list(range(16))
    assert len(pairs) == 6


def test_temporal_shuffle_uneven_lengths() -> None:
    assert vcp.temporal_chunks(10) == [(0, 3), (3, 6), (6, 8), (8, 10)]
    x = torch.arange(10, dtype=torch.float32).view(1, 10, 1, 1)
    assert vcp.swap_chunks(x, 0, 3).flatten().tolist() == [8, 9, 3, 4, 5, 6, 7, 0, 1, 2]
    # fewer than 4 frames: only non-empty chunks are drawn, so the edit still changes the clip
    g = torch.Generator().manual_seed(1)
    short = torch.arange(3, dtype=torch.float32).view(1, 3, 1, 1)
    for _ in range(20):
        assert not torch.equal(vcp.vcp_edit(short, vcp.TEMPORAL_SHUFFLE, generator=g), short)


def test_remote_clip_replaces_the_clip() -> None:
    x, remote = _clip(), -_clip()
    assert vcp.vcp_edit(x, vcp.REMOTE, generator=torch.Generator(), remote=remote) is remote
    with pytest.raises(ValueError, match="remote"):
        vcp.vcp_edit(x, vcp.REMOTE, generator=torch.Generator())
    with pytest.raises(ValueError, match="unknown VCP label"):
        vcp.apply_edit(x, 7, {})


def test_edits_work_on_batches() -> None:
    x = _clip().unsqueeze(0).expand(2, -1, -1, -1, -1)
    assert torch.equal(vcp.rotate(x, 1)[1], vcp.rotate(x[1], 1))
    assert torch.equal(vcp.permute_quadrants(x)[0], vcp.permute_quadrants(x[0]))
    assert torch.equal(vcp.swap_chunks(x, 1, 3)[0], vcp.swap_chunks(x[0], 1, 3))
