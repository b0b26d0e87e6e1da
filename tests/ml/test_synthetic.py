"""The synthetic UCF-layout generator: decodable videos, split files index_dataset reads back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ml.config import DataConfig
from ml.data.decord_reader import probe
from ml.data.splits import index_dataset, parse_split_files
from ml.synthetic import ACTIONS, action_names, generate_dataset, render_video


def test_tiny_dataset_layout_and_splits(tiny_dataset: Path) -> None:
    names = action_names(4)
    assert sorted(p.name for p in (tiny_dataset / "videos").iterdir()) == sorted(names)
    assert (tiny_dataset / "videos" / names[0] / f"v_{names[0]}_g01_c01.avi").is_file()
    raw = (tiny_dataset / "splits" / "trainlist01.txt").read_bytes()
    assert raw.endswith(b"\r\n") and raw.startswith(f"{names[0]}/v_{names[0]}_g02_c01.avi 1\r\n".encode())
    classes, train, test = parse_split_files(tiny_dataset / "splits", 1)
    assert classes == names
    assert len(train) == 4 * 4 and len(test) == 4 * 2
    assert all("_g01_" in rel for rel, _ in test)

    index = index_dataset(DataConfig(root=tiny_dataset))
    assert index.source == "ucf101-split-1" and not index.problems
    assert index.counts() == {n: {"train": 4, "test": 2} for n in names}
    assert all(i.path.is_file() for i in index.train + index.test)


def test_videos_decode_with_requested_frames(tiny_dataset: Path) -> None:
    for path in sorted((tiny_dataset / "videos").rglob("*.avi"))[:6]:
        meta = probe(path)
        assert (meta.frames, meta.width, meta.height) == (40, 64, 48)
        assert meta.fps == pytest.approx(25.0)


@pytest.mark.parametrize("container", ["avi", "mp4"])
def test_generate_small_set(tmp_path: Path, container: str) -> None:
    summary = generate_dataset(
        tmp_path, classes=2, videos_per_class=3, frames=20, width=48, height=32, groups=3, container=container, seed=5
    )
    assert summary.num_videos == 6 and (summary.num_train, summary.num_test) == (4, 2)
    assert summary.test_groups == ["g01"]
    files = sorted((tmp_path / "videos").rglob(f"*.{container}"))
    assert len(files) == 6
    meta = probe(files[0])
    assert (meta.frames, meta.width, meta.height) == (20, 48, 32)


def test_generator_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=f"between 1 and {len(ACTIONS)}"):
        generate_dataset(tmp_path, classes=len(ACTIONS) + 1)
    with pytest.raises(ValueError, match="even"):
        generate_dataset(tmp_path, width=63)
    with pytest.raises(ValueError, match="groups"):
        generate_dataset(tmp_path, groups=1)


def test_at_least_twelve_camelcase_actions() -> None:
    names = action_names()
    assert len(names) >= 12 and len(set(names)) == len(names)
    assert all(n[0].isupper() and n.isalnum() for n in names)
    assert {"MoveLeft", "MoveRight", "RotateClockwise", "RotateCounterClockwise"} <= set(names)


@pytest.mark.parametrize(
    "a, b",
    [
        ("MoveUp", "MoveDown"),
        ("MoveLeft", "MoveRight"),
        ("Expand", "Shrink"),
        ("BlinkSlow", "BlinkFast"),
        ("RotateClockwise", "RotateCounterClockwise"),
        ("OrbitClockwise", "OrbitCounterClockwise"),
    ],
)
def test_paired_actions_share_appearance_but_differ_in_motion(a: str, b: str) -> None:
    """Same random draws: the first frame is identical, so only later frames tell the classes apart."""
    va = render_video(a, frames=12, width=64, height=48, rng=np.random.default_rng(11))
    vb = render_video(b, frames=12, width=64, height=48, rng=np.random.default_rng(11))
    assert np.array_equal(va[0], vb[0])
    assert not np.array_equal(va[1:], vb[1:])
    assert np.abs(va[1:].astype(int) - va[:-1].astype(int)).mean() > 0.5  # something moves


def test_generation_is_deterministic(tmp_path: Path) -> None:
    a = render_video("SwingVertical", frames=6, width=32, height=32, rng=np.random.default_rng([3, 1, 2]))
    b = render_video("SwingVertical", frames=6, width=32, height=32, rng=np.random.default_rng([3, 1, 2]))
    assert np.array_equal(a, b)


def test_generated_set_in_hmdb51_layout_indexes_and_decodes(tiny_dataset: Path, tmp_path: Path) -> None:
    """The same generated videos laid out as HMDB51 (hmdb51_org/ + <class>_test_split1.txt marks) read back."""
    import shutil

    from ml.data.scan import scan_index

    classes, train, test = parse_split_files(tiny_dataset / "splits", 1)
    splits = tmp_path / "testTrainMulti_7030_splits"
    splits.mkdir()
    for label, cls in enumerate(classes):
        shutil.copytree(tiny_dataset / "videos" / cls, tmp_path / "hmdb51_org" / cls)
        lines = [f"{rel.split('/', 1)[1]} {mark}" for entries, mark in ((train, 1), (test, 2))
                 for rel, lab in entries if lab == label]
        (splits / f"{cls}_test_split1.txt").write_text("\n".join(lines) + "\n")
    index = scan_index(index_dataset(DataConfig(root=tmp_path)), min_frames=16, workers=0)
    assert index.source == "hmdb51-split-1" and not index.problems
    assert index.classes == sorted(classes)
    assert index.counts() == {n: {"train": 4, "test": 2} for n in classes}
    assert set(index.frames.values()) == {40}
