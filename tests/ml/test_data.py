"""Decoding, scanning, clip sampling, transforms, datasets and loaders on tiny synthetic videos."""

from __future__ import annotations

import colorsys
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from ml.config import AugmentConfig, ClipSpec, DataConfig, PretextConfig
from ml.data import functional as Fn
from ml.data.clip_sampling import (
    frame_indices,
    generator_for,
    linspace_starts,
    make_clip_sampler,
    sample_tuple,
    tuple_span,
    tuple_total_frames,
)
from ml.data.datasets import ClipDataset, MultiClipDataset, PCLTupleDataset
from ml.data.decord_reader import VideoFile, open_video, probe, read_frames
from ml.data.frame_cache import DecodedVideoCache
from ml.data.loader import make_loader
from ml.data.scan import scan_index
from ml.data.splits import DatasetIndex, VideoItem, index_dataset
from ml.data.transforms import build_clip_transform
from ml.errors import CorruptVideoError, EmptyVideoError, NotAVideoError, VideoError
from ml.synthetic import render_video, write_video

FULL_AUG = AugmentConfig(color_jitter_p=1.0, grayscale_p=0.0, blur_p=1.0, hflip_p=0.5)


def _scanned(root: Path, min_frames: int = 8) -> DatasetIndex:
    return scan_index(index_dataset(DataConfig(root=root)), min_frames=min_frames, workers=2)


def _special_video(path: Path, frames: np.ndarray) -> VideoItem:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_video(path, frames, container="avi")
    return VideoItem(path, f"{path.parent.name}/{path.name}", 0, None)


# ---------------------------------------------------------------------------------------------
# decoding


def test_decode_at_reduced_size(tiny_dataset: Path, tiny_clip: ClipSpec) -> None:
    path = next((tiny_dataset / "videos").rglob("*.avi"))
    with open_video(path, width=tiny_clip.resize_w, height=tiny_clip.resize_h) as video:
        assert len(video) == 40
        frames = video.read([5, 0, 5, 39])
    assert frames.shape == (4, tiny_clip.resize_h, tiny_clip.resize_w, 3) and frames.dtype == np.uint8
    assert np.array_equal(frames[0], frames[2])
    meta = probe(path)
    assert (meta.frames, meta.width, meta.height, meta.fps) == (40, 64, 48, 25.0)
    with pytest.raises(IndexError):
        read_frames(path, [40], width=32, height=24)


def test_native_size_fallback_for_unaligned_widths(tmp_path: Path) -> None:
    """decord 0.6 cannot copy native-size frames 48 px wide; the PyAV fallback returns the right frames."""
    levels = np.arange(6, dtype=np.uint8) * 40
    frames = np.broadcast_to(levels[:, None, None, None], (6, 32, 48, 3)).copy()
    path = tmp_path / "w48.avi"
    write_video(path, frames)
    out = read_frames(path, [4, 1, 1])
    assert out.shape == (3, 32, 48, 3)
    assert np.abs(out.reshape(3, -1).mean(1) - levels[[4, 1, 1]]).max() < 4


def test_decode_errors_are_typed(tmp_path: Path) -> None:
    empty = tmp_path / "empty.avi"
    empty.write_bytes(b"")
    with pytest.raises(EmptyVideoError, match="0 bytes"):
        VideoFile(empty)
    junk = tmp_path / "junk.avi"
    junk.write_bytes(np.random.default_rng(0).bytes(4000))
    with pytest.raises(NotAVideoError) as info:
        VideoFile(junk)
    assert info.value.path == str(junk)
    with pytest.raises(VideoError, match="not found"):
        VideoFile(tmp_path / "nope.avi")


def test_frames_that_fail_to_decode_raise_corrupt_video_error(tmp_path: Path) -> None:
    """The container still opens (frame count known) but the frame data is garbage."""
    path = tmp_path / "c.avi"
    write_video(path, render_video("MoveUp", frames=40, width=64, height=48, rng=np.random.default_rng(0)))
    data = bytearray(path.read_bytes())
    quarter = len(data) // 4
    data[quarter:-quarter] = np.random.default_rng(1).bytes(len(data) - 2 * quarter)
    path.write_bytes(bytes(data))
    video = VideoFile(path, width=32, height=24)
    assert 0 < len(video) < 40
    with pytest.raises(CorruptVideoError, match="fail to decode"):
        video.read([0])
    index = DatasetIndex(tmp_path, ["A"], [VideoItem(path, "A/c.avi", 0)], [])
    scanned = scan_index(index, min_frames=1)
    assert not scanned.train and "fail to decode" in scanned.problems[0].reason


# ---------------------------------------------------------------------------------------------
# scanning


def test_scan_reports_bad_videos_and_goes_on(tiny_dataset: Path, tmp_path: Path) -> None:
    root = tmp_path / "data"
    shutil.copytree(tiny_dataset, root)
    index = index_dataset(DataConfig(root=root))
    train = index.train
    corrupt, empty, short, missing = train[0], train[1], train[5], train[9]
    corrupt.path.write_bytes(np.random.default_rng(1).bytes(5000))
    empty.path.write_bytes(b"")
    write_video(short.path, np.zeros((5, 48, 64, 3), np.uint8))
    missing.path.unlink()
    index = index_dataset(DataConfig(root=root))  # the deleted file is now a listed-but-missing problem
    assert [p.rel for p in index.problems] == [missing.rel]

    cache = tmp_path / "scan.json"
    scanned = scan_index(index, min_frames=8, workers=2, cache=cache)
    reasons = {p.rel: p.reason for p in scanned.problems}
    assert set(reasons) == {corrupt.rel, empty.rel, short.rel, missing.rel}
    assert "not a video" in reasons[corrupt.rel]
    assert "empty" in reasons[empty.rel]
    assert reasons[short.rel] == "too short: 5 frames, needs at least 8"
    assert reasons[missing.rel].startswith("missing")
    bad = set(reasons)
    assert len(scanned.train) == 16 - 4 and not bad & {i.rel for i in scanned.train + scanned.test}
    assert len(scanned.test) == 8
    assert set(scanned.frames) == {i.rel for i in scanned.train + scanned.test}
    assert set(scanned.frames.values()) == {40}

    # a rescan of unchanged files comes from the cache (no decoding)
    import ml.data.scan as scan_mod

    def boom(*args: object, **kwargs: object) -> int:
        raise AssertionError("decoded although cached")

    original = scan_mod.count_frames
    scan_mod.count_frames = boom  # type: ignore[assignment]
    try:
        again = scan_index(
            DatasetIndex(root, index.classes, scanned.train, scanned.test), min_frames=8, workers=1, cache=cache
        )
    finally:
        scan_mod.count_frames = original
    assert again.frames == scanned.frames and not again.problems


def test_scan_min_frames_for_pcl(tiny_dataset: Path, tiny_clip: ClipSpec) -> None:
    need = PCLTupleDataset.min_frames(tiny_clip, PretextConfig())
    assert need == 8 * 3 + 8 * 2 == 40
    assert PCLTupleDataset.min_frames(ClipSpec(), PretextConfig()) == 64
    assert PCLTupleDataset.min_frames(ClipSpec(), PretextConfig(spacing="vcop")) == 64
    index = _scanned(tiny_dataset, min_frames=41)
    assert not index.train and not index.test and len(index.problems) == 24


# ---------------------------------------------------------------------------------------------
# clip sampling


def test_linspace_clip_starts_follow_the_reference() -> None:
    # centres at linspace(8, L-8, 10), start = int(centre - 8)
    assert linspace_starts(100, 16, 10) == [int(c - 8) for c in np.linspace(8, 92, 10)]
    assert linspace_starts(100, 16, 10)[0] == 0 and linspace_starts(100, 16, 10)[-1] == 84
    assert linspace_starts(10, 16, 3) == [0, 0, 0]
    assert frame_indices(8, 4, 10) == [8, 9, 9, 9]
    infos = make_clip_sampler("uniform", 8, 3)(40, None)
    assert [c.start for c in infos] == [0, 16, 32] and infos[-1].is_last


def test_tuple_spacing_pcl_quirk_and_vcop() -> None:
    g = torch.Generator().manual_seed(0)
    pcl = sample_tuple(200, 16, PretextConfig(num_classes=4), g)
    assert [c.start - pcl.start for c in pcl.clips] == [0, 11, 22]
    assert pcl.clips[1].indices == list(range(pcl.start + 11, pcl.start + 27))
    vcop = sample_tuple(200, 16, PretextConfig(spacing="vcop", num_classes=4), g)
    assert [c.start - vcop.start for c in vcop.clips] == [0, 24, 48]
    assert tuple_total_frames(16, PretextConfig()) == 64 and tuple_span(16, PretextConfig()) == 38
    starts = {sample_tuple(70, 16, PretextConfig(), generator_for(0, 0, i)).start for i in range(300)}
    assert starts == set(range(0, 7))  # U[0, L-64]


def test_remote_clip_distance_and_redraw() -> None:
    pretext = PretextConfig()
    labels = set()
    for i in range(400):
        info = sample_tuple(150, 16, pretext, generator_for(1, 0, i))
        labels.add(info.label)
        if info.label == 4:
            assert info.remote is not None
            end = info.start + tuple_span(16, pretext)
            r = info.remote.start
            assert r + 16 + 16 <= info.start or r >= end + 16
            assert 0 <= r <= 150 - 16
    assert labels == {0, 1, 2, 3, 4}
    # a 64-frame video has no room for a remote clip: y=4 is redrawn from 0..3
    infos = [sample_tuple(64, 16, pretext, generator_for(1, 0, i)) for i in range(300)]
    assert {i.label for i in infos} == {0, 1, 2, 3} and any(i.label_redrawn for i in infos)


# ---------------------------------------------------------------------------------------------
# functional ops and transforms


def test_residual_on_hand_made_tensor() -> None:
    x = torch.tensor([1.0, 4.0, 9.0, 16.0]).view(1, 4, 1, 1)  # C×T×H×W
    assert Fn.residual(x, time_dim=1).flatten().tolist() == [15.0, -3.0, -5.0, -7.0]
    batch = torch.stack([x, 2 * x])  # B×C×T×H×W
    assert torch.equal(Fn.residual(batch, time_dim=2)[1], 2 * Fn.residual(x, time_dim=1))


def test_hsv_roundtrip_and_hue_matches_colorsys() -> None:
    x = torch.rand(2, 3, 5, 7, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(Fn.hsv_to_rgb(Fn.rgb_to_hsv(x)), x, atol=1e-5)
    r, g, b = x[0, :, 1, 2].tolist()
    h, s, v = colorsys.rgb_to_hsv(r, g, b)
    assert Fn.rgb_to_hsv(x)[0, :, 1, 2].tolist() == pytest.approx([h, s, v], abs=1e-5)
    shifted = Fn.adjust_hue(x, 0.25)[0, :, 1, 2].tolist()
    assert shifted == pytest.approx(list(colorsys.hsv_to_rgb((h + 0.25) % 1, s, v)), abs=1e-5)
    assert torch.equal(Fn.adjust_hue(x, 0.0), x)


def test_colour_ops_basic_properties() -> None:
    x = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    gray = Fn.rgb_to_grayscale(x)
    assert torch.equal(gray[:, 0], gray[:, 1]) and torch.equal(gray[:, 1], gray[:, 2])
    assert torch.allclose(Fn.adjust_saturation(x, 0.0), gray)
    assert torch.equal(Fn.adjust_brightness(x, 1.0), x)
    flat = torch.full((2, 3, 9, 9), 0.3)
    assert torch.allclose(Fn.gaussian_blur(flat, 1.5), flat)
    assert torch.allclose(Fn.normalize(torch.ones(2, 3, 1, 1), (0.5, 0.5, 0.5), (0.5, 0.25, 1.0)).flatten()[:3], torch.tensor([1.0, 2.0, 0.5]))


def test_gaussian_blur_matches_a_separable_convolution() -> None:
    x = torch.rand(2, 3, 20, 24, generator=torch.Generator().manual_seed(5))
    k = Fn.gaussian_kernel1d(1.3, 9)
    assert k.sum().item() == pytest.approx(1.0) and torch.equal(k, k.flip(0))
    padded = torch.nn.functional.pad(x.reshape(-1, 1, 20, 24), (4, 4, 4, 4), mode="reflect")
    ref = torch.nn.functional.conv2d(torch.nn.functional.conv2d(padded, k.view(1, 1, 1, 9)), k.view(1, 1, 9, 1))
    assert torch.allclose(Fn.gaussian_blur(x, 1.3), ref.reshape(x.shape), atol=1e-6)
    assert torch.equal(Fn.hflip(Fn.gaussian_blur(x, 1.3)), Fn.gaussian_blur(Fn.hflip(x), 1.3)) or torch.allclose(
        Fn.hflip(Fn.gaussian_blur(x, 1.3)), Fn.gaussian_blur(Fn.hflip(x), 1.3), atol=1e-6
    )


def _static_frames(t: int = 8) -> torch.Tensor:
    frame = torch.randint(0, 256, (37, 49, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    return frame.expand(t, 37, 49, 3).contiguous()


def test_augmentation_is_constant_within_a_clip(tiny_clip: ClipSpec) -> None:
    transform = build_clip_transform(tiny_clip, FULL_AUG, train=True)
    frames = _static_frames()
    for seed in range(5):
        clip = transform({"frames": frames, "generator": torch.Generator().manual_seed(seed)})["clip"]
        assert clip.shape == (3, 8, 32, 32) and clip.dtype == torch.float32
        assert torch.equal(clip, clip[:, :1].expand_as(clip))
    out = transform({"frames": frames, "generator": torch.Generator().manual_seed(0)})
    assert len(out["aug_params"]) == 1


def test_per_frame_params_reproduce_the_reference_bug(tiny_clip: ClipSpec) -> None:
    transform = build_clip_transform(tiny_clip, FULL_AUG.model_copy(update={"per_frame_params": True}), train=True)
    out = transform({"frames": _static_frames(), "generator": torch.Generator().manual_seed(0)})
    clip = out["clip"]
    assert len(out["aug_params"]) == 8
    assert len({(p.top, p.left, p.flip) for p in out["aug_params"]}) > 1
    assert not torch.equal(clip[:, 0], clip[:, 1]) or not torch.equal(clip[:, 1], clip[:, 2])


def test_eval_transform_is_centre_crop_without_aug(tiny_clip: ClipSpec) -> None:
    spec = tiny_clip.model_copy(update={"normalize": False})
    frames = _static_frames(2)
    clip = build_clip_transform(spec, FULL_AUG, train=False)({"frames": frames})["clip"]
    top, left = Fn.center_crop_offsets(37, 49, 32)
    expected = frames[:, top : top + 32, left : left + 32].permute(3, 0, 1, 2).float() / 255
    assert torch.allclose(clip, expected)
    normed = build_clip_transform(tiny_clip, None, train=False)({"frames": frames})["clip"]
    mean = torch.tensor(tiny_clip.mean).view(3, 1, 1, 1)
    std = torch.tensor(tiny_clip.std).view(3, 1, 1, 1)
    assert torch.allclose(normed, (expected - mean) / std, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# datasets and loaders


def test_clip_dataset_keeps_a_static_video_static(tmp_path: Path, tiny_clip: ClipSpec) -> None:
    rng = np.random.default_rng(3)
    frame = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    item = _special_video(tmp_path / "Static" / "static.avi", np.repeat(frame[None], 20, axis=0))
    decoded = read_frames(item.path, range(20), width=tiny_clip.resize_w, height=tiny_clip.resize_h)
    assert (decoded == decoded[:1]).all()  # the codec keeps it static
    ds = ClipDataset([item], [20], tiny_clip, FULL_AUG, seed=0, train=True)
    for epoch in range(3):
        ds.set_epoch(epoch)
        clip = ds[0]["clip"]
        assert torch.equal(clip, clip[:, :1].expand_as(clip))
    buggy = ClipDataset([item], [20], tiny_clip, FULL_AUG.model_copy(update={"per_frame_params": True}), seed=0)
    clip = buggy[0]["clip"]
    assert not torch.equal(clip, clip[:, :1].expand_as(clip))


def test_pcl_tuple_dataset_samples(tiny_dataset: Path, tiny_clip: ClipSpec) -> None:
    index = _scanned(tiny_dataset)
    pretext = PretextConfig(interval=2)  # 40-frame videos leave room for remote clips
    ds = PCLTupleDataset(index.train, index.frames, tiny_clip, AugmentConfig(), pretext, seed=0)
    labels = []
    for i in range(len(ds)):
        sample = ds[i]
        assert sample["clips"].shape == (3, 3, 8, 32, 32) and sample["index"] == i
        labels.append(sample["label"])
    assert set(labels) <= set(range(5)) and len(set(labels)) >= 3
    again = ds[3]
    assert torch.equal(again["clips"], ds[3]["clips"]) and again["label"] == ds[3]["label"]
    ds.set_epoch(1)
    assert not torch.equal(ds[3]["clips"], again["clips"])
    # the default pretext on 40-frame videos: no room for a remote clip, so labels stay in 0..3
    plain = PCLTupleDataset(index.train, index.frames, tiny_clip, AugmentConfig(), PretextConfig(), seed=0)
    assert {plain[i]["label"] for i in range(len(plain))} <= {0, 1, 2, 3}


def test_pcl_tuple_from_a_video_shorter_than_a_tuple(tmp_path: Path, tiny_clip: ClipSpec) -> None:
    frames = np.random.default_rng(6).integers(0, 256, (12, 48, 64, 3), dtype=np.uint8)
    item = _special_video(tmp_path / "Short" / "short.avi", frames)
    ds = PCLTupleDataset([item], [12], tiny_clip, AugmentConfig(), PretextConfig(), seed=0)
    for epoch in range(4):
        ds.set_epoch(epoch)
        sample = ds[0]
        assert sample["clips"].shape == (3, 3, 8, 32, 32) and sample["label"] in range(4)
    # a frame count larger than what decodes is clamped to the last frame, not an error
    assert ClipDataset([item], [30], tiny_clip, None, train=True)[0]["clip"].shape == (3, 8, 32, 32)


def test_pcl_middle_clip_edit_matches_label(tmp_path: Path, tiny_clip: ClipSpec) -> None:
    """On a static video with aug off, clips 0 and 2 are equal and clip 1 shows the edit."""
    frame = np.random.default_rng(4).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    item = _special_video(tmp_path / "Static" / "s.avi", np.repeat(frame[None], 40, axis=0))
    ds = PCLTupleDataset([item], [40], tiny_clip, AugmentConfig.none(), PretextConfig(num_classes=4), seed=0)
    seen = set()
    for epoch in range(12):
        ds.set_epoch(epoch)
        s = ds[0]
        c0, c1, c2 = s["clips"]
        assert torch.equal(c0, c2)
        seen.add(s["label"])
        if s["label"] in (0, 3):  # a temporal swap of a static clip changes nothing
            assert torch.equal(c1, c0)
        elif s["label"] == 2:
            assert torch.equal(c1[..., :16, :16], c0[..., 16:, 16:])
        else:
            assert any(torch.equal(c1, torch.rot90(c0, k, (-2, -1))) for k in (1, 2, 3))
    assert len(seen) >= 3


def test_multi_clip_dataset_decodes_the_listed_frames(tiny_dataset: Path, tiny_clip: ClipSpec) -> None:
    index = _scanned(tiny_dataset)
    spec = tiny_clip.model_copy(update={"normalize": False})
    ds = MultiClipDataset(index.test, index.frames, spec, num_clips=3)
    s = ds[1]
    assert s["clips"].shape == (3, 3, 8, 32, 32) and s["frames"].shape == (3, 8)
    assert s["frames"][:, 0].tolist() == [0, 16, 32] and s["label"] == index.test[1].label
    raw = read_frames(index.test[1].path, s["frames"][1].tolist(), width=spec.resize_w, height=spec.resize_h)
    top, left = Fn.center_crop_offsets(spec.resize_h, spec.resize_w, spec.crop)
    expected = torch.from_numpy(raw[:, top : top + 32, left : left + 32]).permute(3, 0, 1, 2).float() / 255
    assert torch.allclose(s["clips"][1], expected)


def test_clip_dataset_eval_is_the_centre_clip(tiny_dataset: Path, tiny_clip: ClipSpec) -> None:
    index = _scanned(tiny_dataset)
    ds = ClipDataset(index.test, index.frames, tiny_clip, AugmentConfig(), seed=0, train=False)
    a = ds[0]
    ds.set_epoch(5)
    assert torch.equal(ds[0]["clip"], a["clip"]) and a["clip"].shape == (3, 8, 32, 32)
    centre = MultiClipDataset(index.test, index.frames, tiny_clip, num_clips=1)[0]["clips"][0]
    assert torch.equal(centre, a["clip"])


def _epochs(loader, epochs: int = 2) -> list[list[tuple[int, int, float]]]:  # type: ignore[no-untyped-def]
    out = []
    for epoch in range(epochs):
        loader.set_epoch(epoch)
        out.append(
            [
                (int(i), int(y), float(c.double().sum()))
                for batch in loader
                for i, y, c in zip(batch["index"], batch["label"], batch["clips"])
            ]
        )
    return out


def test_samples_do_not_depend_on_worker_count(tiny_dataset: Path, tiny_clip: ClipSpec) -> None:
    index = _scanned(tiny_dataset)
    items = index.train[:6]
    ds = PCLTupleDataset(items, index.frames, tiny_clip, AugmentConfig(), PretextConfig(interval=2), seed=7)
    kwargs = dict(batch_size=4, shuffle=True, seed=3, drop_last=False)
    serial = _epochs(make_loader(ds, workers=0, **kwargs))
    ds2 = PCLTupleDataset(items, index.frames, tiny_clip, AugmentConfig(), PretextConfig(interval=2), seed=7)
    parallel_loader = make_loader(ds2, workers=2, **kwargs)
    assert parallel_loader.persistent_workers
    parallel = _epochs(parallel_loader)
    # same order, labels and pixels (sums compared with a float tolerance: thread counts differ per process)
    assert [[(i, y) for i, y, _ in e] for e in serial] == [[(i, y) for i, y, _ in e] for e in parallel]
    assert [s for e in serial for _, _, s in e] == pytest.approx([s for e in parallel for _, _, s in e], rel=1e-9)
    assert serial[0] != serial[1]  # a new epoch: new order and new samples
    assert sorted(i for i, _, _ in serial[0]) == list(range(6))
    # the same (seed, epoch, index) gives the same sample, whatever the order
    ds.set_epoch(1)
    by_index = {i: s for i, _, s in serial[1]}
    assert float(ds[4]["clips"].double().sum()) == by_index[4]


def test_decoded_video_cache_gives_identical_samples_and_decodes_each_video_once(tiny_dataset: Path, tiny_clip: ClipSpec) -> None:
    index = _scanned(tiny_dataset)
    pretext = PretextConfig(interval=2)
    plain = PCLTupleDataset(index.train, index.frames, tiny_clip, FULL_AUG, pretext, seed=5)
    cache = DecodedVideoCache(64 * 2**20)
    cached = PCLTupleDataset(index.train, index.frames, tiny_clip, FULL_AUG, pretext, seed=5, cache=cache)
    retrieval = MultiClipDataset(index.train, index.frames, tiny_clip, num_clips=3, cache=cache)  # shares the cache
    for epoch in (0, 1):
        plain.set_epoch(epoch)
        cached.set_epoch(epoch)
        for i in range(len(plain)):
            a, b = plain[i], cached[i]
            assert a["label"] == b["label"] and torch.equal(a["clips"], b["clips"])
    reference = MultiClipDataset(index.train, index.frames, tiny_clip, num_clips=3)
    assert torch.equal(retrieval[2]["clips"], reference[2]["clips"])
    assert cache.misses == len(index.train) and len(cache) == len(index.train)  # one decode per video, ever
    assert cache.hits == len(index.train) + 1  # the second epoch and the retrieval sample


def test_decoded_video_cache_stays_within_its_budget(tiny_dataset: Path, tiny_clip: ClipSpec) -> None:
    index = _scanned(tiny_dataset)
    paths = [str(it.path) for it in index.train[:4]]
    size = DecodedVideoCache(2**30).frames(paths[0], width=tiny_clip.resize_w, height=tiny_clip.resize_h).nbytes
    cache = DecodedVideoCache(2 * size)  # room for two videos
    for path in paths:
        video = cache.frames(path, width=tiny_clip.resize_w, height=tiny_clip.resize_h)
        assert not video.flags.writeable
    assert len(cache) == 2 and cache.bytes_used <= 2 * size
    cache.frames(paths[3], width=tiny_clip.resize_w, height=tiny_clip.resize_h)  # most recent: a hit
    cache.frames(paths[0], width=tiny_clip.resize_w, height=tiny_clip.resize_h)  # evicted earlier: decoded again
    assert (cache.hits, cache.misses) == (1, 5)
    too_small = DecodedVideoCache(size - 1)  # a video larger than the budget is decoded but never kept
    assert too_small.may_hold(paths[0], width=tiny_clip.resize_w, height=tiny_clip.resize_h)
    too_small.frames(paths[0], width=tiny_clip.resize_w, height=tiny_clip.resize_h)
    assert len(too_small) == 0 and too_small.bytes_used == 0
    # ...and is not decoded whole again: datasets fall back to decoding only the frames a sample needs
    assert not too_small.may_hold(paths[0], width=tiny_clip.resize_w, height=tiny_clip.resize_h)


def test_loader_without_shuffle_keeps_order(tiny_dataset: Path, tiny_clip: ClipSpec) -> None:
    index = _scanned(tiny_dataset)
    ds = ClipDataset(index.test, index.frames, tiny_clip, None, train=False)
    loader = make_loader(ds, batch_size=3, shuffle=False, workers=0, seed=0, drop_last=True)
    batches = list(loader)
    assert len(batches) == len(ds) // 3
    assert batches[0]["index"].tolist() == [0, 1, 2] and batches[0]["clip"].shape == (3, 3, 8, 32, 32)
