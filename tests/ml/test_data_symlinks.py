"""Symlinks inside a dataset that resolve outside it are skipped and reported (the link, never its target),
and never opened: in the indexer (split files and folder layout), for split files, and in the scanner."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ml.config import DataConfig
from ml.data.scan import scan_index
from ml.data.splits import OUTSIDE_ROOT, index_dataset
from ml.errors import DatasetError


@pytest.fixture
def layout(tiny_dataset: Path, tmp_path: Path) -> tuple[Path, Path]:
    """(a writable copy of the tiny set, a folder outside it holding a real video and a 'secret')."""
    root = tmp_path / "data" / "set"
    shutil.copytree(tiny_dataset, root)
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(next((root / "videos").rglob("*.avi")), outside / "real.avi")
    (outside / "shadow").write_text("root:$6$secret:19000:0:99999:7:::\n")
    return root, outside


def _problems(index) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {p.rel: p.reason for p in index.problems}


def test_linked_video_and_linked_class_folder_out_of_the_root_are_skipped(layout: tuple[Path, Path]) -> None:
    root, outside = layout
    shutil.rmtree(root / "splits")  # folder-per-class layout: every folder and file on disk counts
    cls = sorted(p for p in (root / "videos").iterdir())[0]
    (cls / "v_link_g09_c01.avi").symlink_to(outside / "real.avi")
    (cls / "v_shadow_g09_c02.avi").symlink_to(outside / "shadow")
    (root / "videos" / "Elsewhere").symlink_to(outside, target_is_directory=True)
    (cls / "v_inside_g09_c03.avi").symlink_to(next(cls.glob("*_c01.avi")))  # a link within the root is fine
    index = index_dataset(DataConfig(root=root))
    rels = {i.rel for i in [*index.train, *index.test]}
    problems = _problems(index)
    assert problems[f"{cls.name}/v_link_g09_c01.avi"] == OUTSIDE_ROOT
    assert problems[f"{cls.name}/v_shadow_g09_c02.avi"] == OUTSIDE_ROOT
    assert problems["Elsewhere/"] == OUTSIDE_ROOT and "Elsewhere" not in index.classes
    assert f"{cls.name}/v_inside_g09_c03.avi" in rels
    assert not any("link" in r or "shadow" in r for r in rels)
    assert str(outside) not in repr(index.problems)
    scanned = scan_index(index, min_frames=8, workers=1)
    assert f"{cls.name}/v_inside_g09_c03.avi" in scanned.frames


def test_listed_video_that_links_out_is_reported_once_not_as_missing(layout: tuple[Path, Path]) -> None:
    root, outside = layout
    video = next((root / "videos").rglob("*_g02_*.avi"))  # a train video listed in the split files
    video.unlink()
    video.symlink_to(outside / "real.avi")
    index = index_dataset(DataConfig(root=root))
    rel = f"{video.parent.name}/{video.name}"
    assert _problems(index) == {rel: OUTSIDE_ROOT}
    assert rel not in {i.rel for i in index.train}


def test_split_file_linking_out_is_refused_unread(layout: tuple[Path, Path]) -> None:
    root, outside = layout
    (root / "splits" / "trainlist01.txt").unlink()
    (root / "splits" / "trainlist01.txt").symlink_to(outside / "shadow")
    with pytest.raises(DatasetError) as err:
        index_dataset(DataConfig(root=root))
    assert OUTSIDE_ROOT in str(err.value) and "secret" not in str(err.value) and str(outside) not in str(err.value)


def test_scanner_never_opens_a_link_made_after_indexing(layout: tuple[Path, Path]) -> None:
    root, outside = layout
    index = index_dataset(DataConfig(root=root))
    item = index.train[0]
    item.path.unlink()
    item.path.symlink_to(outside / "real.avi")  # swapped for a link between indexing and scanning
    scanned = scan_index(index, min_frames=8, workers=1)
    assert item.rel not in scanned.frames and _problems(scanned)[item.rel] == OUTSIDE_ROOT
    assert len(scanned.frames) == len(index.train) + len(index.test) - 1
