"""Split files (the real UCF101 lists), folder layouts, class-balanced subsets and the index API."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest

from ml.config import DataConfig
from ml.data.splits import (
    DatasetIndex,
    VideoItem,
    class_balanced_subset,
    index_dataset,
    parse_hmdb_split_files,
    parse_split_files,
    video_group,
)
from ml.errors import DatasetError


def _touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")


@pytest.mark.parametrize("split, n_train, n_test", [(1, 9537, 3783), (2, 9586, 3734), (3, 9624, 3696)])
def test_real_ucf101_split_sizes(ucf_splits_dir: Path, split: int, n_train: int, n_test: int) -> None:
    classes, train, test = parse_split_files(ucf_splits_dir, split)
    assert len(classes) == 101
    assert (len(train), len(test)) == (n_train, n_test)
    assert len(train) + len(test) == 13320
    assert classes[0] == "ApplyEyeMakeup" and classes[36] == "HandstandPushups" and classes[-1] == "YoYo"
    # CRLF is gone, labels are 0-based and match the folder
    for rel, label in train + test:
        assert "\r" not in rel and rel.endswith(".avi")
        assert rel.split("/")[0].lower() == classes[label].lower()
    assert {label for _, label in train} == set(range(101))
    assert not {rel for rel, _ in train} & {rel for rel, _ in test}


def test_real_split1_test_groups_and_labels(ucf_splits_dir: Path) -> None:
    classes, train, test = parse_split_files(ucf_splits_dir, 1)
    assert test[0] == ("ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi", 0)
    assert {video_group(rel) for rel, _ in test} == {f"g{g:02d}" for g in range(1, 8)}
    assert {video_group(rel) for rel, _ in train} == {f"g{g:02d}" for g in range(8, 26)}
    handstand = [(rel, label) for rel, label in test if rel.startswith("HandstandPushups/")]
    assert handstand and all(label == 36 and "v_HandStandPushups_" in rel for rel, label in handstand)
    per_class = Counter(label for _, label in train)
    assert min(per_class.values()) == 72 and max(per_class.values()) == 121


def test_index_maps_listed_names_to_files_on_disk(tmp_path: Path, ucf_splits_dir: Path) -> None:
    videos = tmp_path / "UCF-101"
    # the folder on disk differs in case from classInd; files keep UCF's "HandStand" spelling
    _touch(videos / "HandStandPushups" / "v_HandStandPushups_g08_c01.avi")
    _touch(videos / "HandStandPushups" / "v_HandStandPushups_g01_c02.avi")
    _touch(videos / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g08_c01.avi")
    index = index_dataset(DataConfig(root=tmp_path, splits_dir=ucf_splits_dir))
    assert index.source == "ucf101-split-1"
    assert len(index.classes) == 101
    assert sorted((i.rel, i.label, i.group) for i in index.train) == [
        ("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", 0, "g08"),
        ("HandStandPushups/v_HandStandPushups_g08_c01.avi", 36, "g08"),
    ]
    assert [(i.rel, i.label) for i in index.test] == [("HandStandPushups/v_HandStandPushups_g01_c02.avi", 36)]
    assert all(i.path.is_file() for i in index.train + index.test)
    # every other listed video is a problem, named and marked missing; nothing raised
    assert len(index.problems) == 9537 + 3783 - 3
    assert all(p.reason.startswith("missing") for p in index.problems)
    assert any(p.rel == "YoYo/v_YoYo_g25_c05.avi" for p in index.problems)


def test_index_autodetects_ucf_layout(tmp_path: Path) -> None:
    (tmp_path / "ucfTrainTestlist").mkdir()
    (tmp_path / "ucfTrainTestlist" / "classInd.txt").write_bytes(b"1 Jump\r\n2 Run\r\n")
    (tmp_path / "ucfTrainTestlist" / "trainlist01.txt").write_bytes(b"Jump/v_Jump_g02_c01.avi 1\r\nRun/v_Run_g02_c01.avi 2\r\n")
    (tmp_path / "ucfTrainTestlist" / "testlist01.txt").write_bytes(b"Jump/v_Jump_g01_c01.avi\r\nRun/v_Run_g01_c01.avi\r\n")
    for rel in ("Jump/v_Jump_g02_c01.avi", "Run/v_Run_g02_c01.avi", "Jump/v_Jump_g01_c01.avi"):
        _touch(tmp_path / "UCF-101" / rel)
    index = index_dataset(DataConfig(root=tmp_path))
    assert index.classes == ["Jump", "Run"]
    assert [(i.rel, i.label) for i in index.train] == [("Jump/v_Jump_g02_c01.avi", 0), ("Run/v_Run_g02_c01.avi", 1)]
    assert [i.rel for i in index.test] == ["Jump/v_Jump_g01_c01.avi"]
    assert [str(p) for p in index.problems] == ["Run/v_Run_g01_c01.avi: missing: listed in the split file but not found on disk"]
    assert index.counts() == {"Jump": {"train": 1, "test": 1}, "Run": {"train": 1, "test": 0}}
    with pytest.raises(DatasetError, match="trainlist02"):
        index_dataset(DataConfig(root=tmp_path, split=2))


def _folder_dataset(root: Path) -> None:
    for cls in ("Alpha", "Beta", "Gamma"):
        for g in range(1, 6):
            for c in range(1, 4):
                _touch(root / cls / f"v_{cls}_g{g:02d}_c{c:02d}.avi")
    for n in range(7):  # names without groups: each file is its own group
        _touch(root / "Delta" / f"{n}.mp4")
    (root / "notes").mkdir()
    (root / "notes" / "readme.txt").write_text("not a class")


def test_folder_layout_group_aware_split(tmp_path: Path) -> None:
    _folder_dataset(tmp_path)
    index = index_dataset(DataConfig(root=tmp_path, test_fraction=0.3))
    assert index.source == "folder"
    assert index.classes == ["Alpha", "Beta", "Delta", "Gamma"]
    assert len(index.train) + len(index.test) == 3 * 15 + 7
    train_groups = {(i.label, i.group) for i in index.train}
    test_groups = {(i.label, i.group) for i in index.test}
    assert not train_groups & test_groups
    for name, counts in index.counts().items():
        total = counts["train"] + counts["test"]
        assert counts["train"] > 0 and counts["test"] > 0, name
        assert abs(counts["test"] - 0.3 * total) <= 3, (name, counts)
    assert {i.group for i in index.test if i.label == 2} <= {str(n) for n in range(7)}
    # reproducible; another split number gives another split
    again = index_dataset(DataConfig(root=tmp_path, test_fraction=0.3))
    assert again.fingerprint() == index.fingerprint()
    other = index_dataset(DataConfig(root=tmp_path, test_fraction=0.3, split=2))
    assert other.fingerprint() != index.fingerprint()


def test_video_dir_detection_prefers_videos_folder(tmp_path: Path) -> None:
    _touch(tmp_path / "videos" / "A" / "a1.avi")
    _touch(tmp_path / "videos" / "A" / "a2.avi")
    _touch(tmp_path / "videos" / "B" / "b1.avi")
    _touch(tmp_path / "videos" / "B" / "b2.avi")
    index = index_dataset(DataConfig(root=tmp_path))
    assert index.classes == ["A", "B"]
    assert all(i.path.parent.parent == tmp_path / "videos" for i in index.train + index.test)


def test_dataset_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        index_dataset(DataConfig(root=tmp_path / "nope"))
    (tmp_path / "empty" / "SomeClass").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no class folders with videos"):
        index_dataset(DataConfig(root=tmp_path / "empty"))
    with pytest.raises(DatasetError, match="neither classInd.txt"):
        index_dataset(DataConfig(root=tmp_path / "empty", splits_dir=tmp_path))


def test_bad_split_lines_are_reported(tmp_path: Path) -> None:
    (tmp_path / "classInd.txt").write_text("1 Jump\n2 Run\n")
    (tmp_path / "trainlist01.txt").write_text("Jump/v_Jump_g01_c01.avi 2\n")
    (tmp_path / "testlist01.txt").write_text("")
    with pytest.raises(DatasetError, match=r"trainlist01.txt:1: label 2 does not match"):
        parse_split_files(tmp_path, 1)


def _items_from_real_trainlist(splits: Path) -> list[VideoItem]:
    _, train, _ = parse_split_files(splits, 1)
    return [VideoItem(Path("/nowhere") / rel, rel, label, video_group(rel)) for rel, label in train]


def test_class_balanced_subset_on_real_split(ucf_splits_dir: Path) -> None:
    items = _items_from_real_trainlist(ucf_splits_dir)
    per_class = Counter(i.label for i in items)
    subset = class_balanced_subset(items, 0.02, seed=0)
    counts = Counter(i.label for i in subset)
    assert set(counts) == set(range(101))
    assert set(counts.values()) <= {1, 2}
    assert len(subset) == sum(max(1, math.floor(0.02 * n + 0.5)) for n in per_class.values())
    assert 150 <= len(subset) <= 202  # ≈ 191 (docs/method.md §4.3)
    half = class_balanced_subset(items, 0.5, seed=0)
    assert abs(len(half) - 4768) <= 60
    # deterministic per seed, different across seeds, original order kept, 1.0 is everything
    assert [i.rel for i in class_balanced_subset(items, 0.02, seed=0)] == [i.rel for i in subset]
    assert [i.rel for i in class_balanced_subset(items, 0.02, seed=1)] != [i.rel for i in subset]
    positions = {i.rel: n for n, i in enumerate(items)}
    assert [positions[i.rel] for i in subset] == sorted(positions[i.rel] for i in subset)
    assert class_balanced_subset(items, 1.0, seed=3) == items


def test_subset_keeps_one_per_class_and_applies_to_train_only(tmp_path: Path) -> None:
    _folder_dataset(tmp_path)
    full = index_dataset(DataConfig(root=tmp_path))
    tiny = index_dataset(DataConfig(root=tmp_path, subset=0.01))
    assert Counter(i.label for i in tiny.train) == Counter({0: 1, 1: 1, 2: 1, 3: 1})
    assert [i.rel for i in tiny.test] == [i.rel for i in full.test]


def test_fingerprint_tracks_the_data_list(tmp_path: Path) -> None:
    items = [VideoItem(tmp_path / f"A/{n}.avi", f"A/{n}.avi", 0, str(n)) for n in range(4)]
    index = DatasetIndex(tmp_path, ["A"], items[:3], items[3:], [], "folder")
    fp = index.fingerprint()
    assert len(fp) == 16 and fp == DatasetIndex(tmp_path, ["A"], list(reversed(items[:3])), items[3:]).fingerprint()
    assert DatasetIndex(tmp_path, ["A"], items[:2], items[3:]).fingerprint() != fp
    relabelled = [VideoItem(i.path, i.rel, 1, i.group) for i in items]
    assert DatasetIndex(tmp_path, ["A", "B"], relabelled[:3], relabelled[3:]).fingerprint() != fp
    with pytest.raises(DatasetError, match="scan_index"):
        index.frame_counts(index.train)
    index.frames = {i.rel: 10 + n for n, i in enumerate(items)}
    assert index.frame_counts(index.test) == [13]


def _hmdb_layout(root: Path, videos: dict[str, list[str]], marks: dict[int, dict[str, str]]) -> None:
    """HMDB51's layout: hmdb51_org/<class>/<video>.avi and testTrainMulti_7030_splits/<class>_test_split<N>.txt."""
    for cls, names in videos.items():
        for name in names:
            _touch(root / "hmdb51_org" / cls / name)
    splits = root / "testTrainMulti_7030_splits"
    splits.mkdir(parents=True)
    for split, by_video in marks.items():
        for cls in videos:
            lines = [f"{v} {by_video[v]} " for v in sorted(by_video) if v.startswith(cls)]
            (splits / f"{cls}_test_split{split}.txt").write_text("\n".join(lines) + "\n")


def test_hmdb51_split_files(tmp_path: Path) -> None:
    videos = {"wave": ["wave_a.avi", "wave_b.avi", "wave_c.avi"], "brush_hair": ["brush_hair_a.avi", "brush_hair_b.avi"]}
    marks = {1: {"wave_a.avi": "1", "wave_b.avi": "2", "wave_c.avi": "0", "brush_hair_a.avi": "1",
                 "brush_hair_b.avi": "2", "brush_hair_gone.avi": "1"},
             2: {"wave_a.avi": "2", "wave_b.avi": "1", "wave_c.avi": "1", "brush_hair_a.avi": "2", "brush_hair_b.avi": "1"}}
    _hmdb_layout(tmp_path, videos, marks)
    index = index_dataset(DataConfig(root=tmp_path))
    assert index.source == "hmdb51-split-1"
    assert index.classes == ["brush_hair", "wave"]  # sorted class names give the labels
    assert [(i.rel, i.label) for i in index.train] == [("brush_hair/brush_hair_a.avi", 0), ("wave/wave_a.avi", 1)]
    assert [(i.rel, i.label) for i in index.test] == [("brush_hair/brush_hair_b.avi", 0), ("wave/wave_b.avi", 1)]
    assert all(i.path.parent.parent == tmp_path / "hmdb51_org" for i in index.train + index.test)
    assert [str(p) for p in index.problems] == [
        "brush_hair/brush_hair_gone.avi: missing: listed in the split file but not found on disk"]  # mark 0 is simply unused
    two = index_dataset(DataConfig(root=tmp_path, split=2))
    assert two.source == "hmdb51-split-2"
    assert sorted(i.rel for i in two.train) == ["brush_hair/brush_hair_b.avi", "wave/wave_b.avi", "wave/wave_c.avi"]
    with pytest.raises(DatasetError, match=r"split 3 \(splits found: 1, 2\)"):
        index_dataset(DataConfig(root=tmp_path, split=3))


def test_hmdb51_bad_mark_is_reported(tmp_path: Path) -> None:
    (tmp_path / "jump_test_split1.txt").write_text("jump_a.avi 1\njump_b.avi 7\n")
    with pytest.raises(DatasetError, match=r"jump_test_split1.txt:2: expected '<video>.avi <0\|1\|2>'"):
        parse_hmdb_split_files(tmp_path, 1)
    with pytest.raises(DatasetError, match="neither classInd.txt"):
        index_dataset(DataConfig(root=tmp_path, splits_dir=tmp_path / "nowhere"))
