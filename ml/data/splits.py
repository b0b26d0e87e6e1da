"""Which videos exist and how they split into train and test.

Three layouts are recognised (docs/method.md §6):

* **UCF101 split files**: ``classInd.txt`` ("1 ApplyEyeMakeup", 1-based, CRLF), ``trainlistNN.txt``
  ("Class/v_..avi 1") and ``testlistNN.txt`` ("Class/v_..avi", no label: the label comes from the
  folder name through classInd). Listed paths are matched to files on disk case-insensitively, which
  covers the ``HandstandPushups`` folder holding ``v_HandStandPushups_*`` files and similar renames.
* **HMDB51 split files**: one ``<class>_test_split<N>.txt`` per class and split (as in
  ``testTrainMulti_7030_splits/``), each line ``<video>.avi <mark>`` with mark 1 = train, 2 = test,
  0 = not used in that split. Classes are the file names' class parts, sorted (label order of the
  usual HMDB51 loaders); videos live in ``<class>/<video>.avi``.
* **A folder per class** without split files: a group-aware split seeded by ``DataConfig.split``
  (so it does not move when ``subset_seed`` changes). A video's group is the
  ``gXX`` in its name (regex ``_g(\\d+)_``) or, failing that, its file stem. Groups are scoped to
  their class, as UCF101's are (the same actor/scene within one action), so a (class, group) pair
  never lands in both train and test.

Frame counts are not known here; :func:`ml.data.scan.scan_index` fills ``DatasetIndex.frames``.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from ml.config import DataConfig
from ml.errors import DatasetError

VIDEO_EXTENSIONS: frozenset[str] = frozenset(
    {".avi", ".mp4", ".mkv", ".mov", ".webm", ".mpg", ".mpeg", ".m4v", ".wmv", ".flv", ".3gp", ".ogv"}
)
_GROUP_RE = re.compile(r"_g(\d+)_", re.IGNORECASE)

SplitEntry = tuple[str, int]
"""A split-file line: (relative path as listed, 0-based label)."""


@dataclass(frozen=True)
class Problem:
    """A video that cannot be used, with a reason a user can act on."""

    rel: str
    reason: str

    def __str__(self) -> str:
        return f"{self.rel}: {self.reason}"


@dataclass(frozen=True)
class VideoItem:
    path: Path
    rel: str
    """Path relative to the video folder, with forward slashes, e.g. "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi"."""
    label: int
    """0-based class index into ``DatasetIndex.classes``."""
    group: str | None = None
    """"g08" for UCF-style names, else the file stem; scoped to the class."""


@dataclass
class DatasetIndex:
    root: Path
    classes: list[str]
    train: list[VideoItem]
    test: list[VideoItem]
    problems: list[Problem] = field(default_factory=list)
    source: str = "folder"
    """"ucf101-split-N" / "hmdb51-split-N" when read from split files, "folder" for a folder per class."""
    frames: dict[str, int] = field(default_factory=dict)
    """rel -> number of decodable frames; filled by :func:`ml.data.scan.scan_index` (empty before)."""

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def counts(self) -> dict[str, dict[str, int]]:
        """Per class: {"train": n, "test": n}, in class order."""
        out = {name: {"train": 0, "test": 0} for name in self.classes}
        for split, items in (("train", self.train), ("test", self.test)):
            for item in items:
                out[self.classes[item.label]][split] += 1
        return out

    def frame_summary(self) -> dict[str, dict[str, int]]:
        """Per split, the scanned frame counts of the usable videos: {"min", "max", "videos"} (zeros when none)."""
        out: dict[str, dict[str, int]] = {}
        for split, items in (("train", self.train), ("test", self.test)):
            counts = [int(self.frames[i.rel]) for i in items if i.rel in self.frames]
            out[split] = {"min": min(counts, default=0), "max": max(counts, default=0), "videos": len(counts)}
        return out

    def fingerprint(self) -> str:
        """Short sha256 of the sorted (split, rel, label) lines: changes when the data list changes."""
        lines = sorted(
            [f"train\t{i.rel}\t{i.label}" for i in self.train] + [f"test\t{i.rel}\t{i.label}" for i in self.test]
        )
        digest = hashlib.sha256()
        digest.update("\n".join(self.classes).encode())
        digest.update(b"\0")
        digest.update("\n".join(lines).encode())
        return digest.hexdigest()[:16]

    def frame_counts(self, items: Iterable[VideoItem]) -> list[int]:
        """Frame counts aligned with ``items``; raises if the index has not been scanned."""
        try:
            return [self.frames[i.rel] for i in items]
        except KeyError as exc:
            raise DatasetError(f"no frame count for {exc.args[0]}: run ml.data.scan.scan_index first") from None


OUTSIDE_ROOT = "a symbolic link that leads outside the dataset folder; skipped (not opened)"
"""The problem reported for a file or folder whose resolved path leaves the dataset root (the target is not named)."""


def inside(path: Path | str, root: Path) -> bool:
    """True when ``path`` with every symlink resolved lies under ``root`` (itself resolved by the caller)."""
    return Path(os.path.realpath(path)).is_relative_to(root)


def video_group(name: str) -> str:
    """``gXX`` from a UCF-style name (``v_X_g08_c01.avi`` -> "g08"), else the file stem."""
    match = _GROUP_RE.search(name)
    if match:
        return f"g{int(match.group(1)):02d}"
    return Path(name).stem


# ---------------------------------------------------------------------------------------------
# UCF101 split files


def _read_lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise DatasetError(f"cannot read split file {path}: {exc}") from exc
    return [line.strip() for line in text.splitlines() if line.strip()]


def _split_file(splits_dir: Path, stem: str, split: int, within: Path | None = None) -> Path:
    for name in (f"{stem}{split:02d}.txt", f"{stem}{split}.txt"):
        path = splits_dir / name
        if path.is_file():
            if within is not None and not inside(path, within):
                raise DatasetError(f"{splits_dir / name}: {OUTSIDE_ROOT}")
            return path
    available = sorted(p.name for p in splits_dir.glob(f"{stem}*.txt"))
    raise DatasetError(
        f"{splits_dir}: no {stem}{split:02d}.txt for split {split}"
        + (f" (found: {', '.join(available)})" if available else "")
    )


def parse_class_index(path: Path) -> list[str]:
    """Class names in label order from a ``classInd.txt`` ("1 ApplyEyeMakeup" per line, 1-based)."""
    by_index: dict[int, str] = {}
    for n, line in enumerate(_read_lines(path), 1):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise DatasetError(f"{path}:{n}: expected '<index> <ClassName>', got {line!r}")
        idx = int(parts[0])
        if idx in by_index:
            raise DatasetError(f"{path}:{n}: class index {idx} appears twice")
        by_index[idx] = parts[1]
    if not by_index:
        raise DatasetError(f"{path}: no classes listed")
    expected = list(range(1, len(by_index) + 1))
    if sorted(by_index) != expected:
        raise DatasetError(f"{path}: class indices must run 1..{len(by_index)} without gaps")
    return [by_index[i] for i in expected]


def parse_split_files(splits_dir: Path, split: int, *, within: Path | None = None
                      ) -> tuple[list[str], list[SplitEntry], list[SplitEntry]]:
    """Read classInd.txt, trainlistNN.txt and testlistNN.txt; needs no videos.

    Returns (classes, train, test) where train/test are (rel as listed, 0-based label). Train labels
    come from the file (checked against the folder name); test labels from the folder via classInd.
    Class folders are matched case-insensitively (UCF101 lists ``HandstandPushups``). With ``within``
    (a resolved dataset root), a split file that is a symlink leading outside it is refused unread.
    """
    splits_dir = Path(splits_dir)
    class_file = splits_dir / "classInd.txt"
    if not class_file.is_file():
        raise DatasetError(f"{splits_dir}: classInd.txt not found")
    if within is not None and not inside(class_file, within):
        raise DatasetError(f"{class_file}: {OUTSIDE_ROOT}")
    classes = parse_class_index(class_file)
    by_folder = {name.lower(): i for i, name in enumerate(classes)}

    def folder_label(rel: str, where: str) -> int:
        folder = rel.split("/", 1)[0].lower() if "/" in rel else ""
        if folder not in by_folder:
            raise DatasetError(f"{where}: {rel!r} is not under a class folder listed in classInd.txt")
        return by_folder[folder]

    train_file = _split_file(splits_dir, "trainlist", split, within)
    train: list[SplitEntry] = []
    for n, line in enumerate(_read_lines(train_file), 1):
        parts = line.replace("\\", "/").split()
        where = f"{train_file}:{n}"
        if len(parts) == 1:
            label = folder_label(parts[0], where)
        elif len(parts) == 2 and parts[1].isdigit():
            label = int(parts[1]) - 1
            if not 0 <= label < len(classes):
                raise DatasetError(f"{where}: label {parts[1]} outside 1..{len(classes)}")
            if folder_label(parts[0], where) != label:
                raise DatasetError(f"{where}: label {parts[1]} does not match the folder of {parts[0]!r}")
        else:
            raise DatasetError(f"{where}: expected '<Class/video.avi> <label>', got {line!r}")
        train.append((parts[0], label))

    test_file = _split_file(splits_dir, "testlist", split, within)
    test: list[SplitEntry] = []
    for n, line in enumerate(_read_lines(test_file), 1):
        parts = line.replace("\\", "/").split()
        where = f"{test_file}:{n}"
        if len(parts) not in (1, 2):
            raise DatasetError(f"{where}: expected '<Class/video.avi>', got {line!r}")
        test.append((parts[0], folder_label(parts[0], where)))
    if not train:
        raise DatasetError(f"{train_file}: no videos listed")
    return classes, train, test


# ---------------------------------------------------------------------------------------------
# HMDB51 split files

_HMDB_SPLIT_RE = re.compile(r"^(?P<cls>.+)_test_split(?P<split>\d+)\.txt$")
_HMDB_MARKS = {"1": "train", "2": "test", "0": None}


def is_hmdb_splits_dir(path: Path) -> bool:
    return path.is_dir() and any(_HMDB_SPLIT_RE.match(p.name) for p in path.glob("*_test_split*.txt"))


def parse_hmdb_split_files(splits_dir: Path, split: int, *, within: Path | None = None
                           ) -> tuple[list[str], list[SplitEntry], list[SplitEntry]]:
    """Read every ``<class>_test_split<split>.txt``; returns (classes, train, test) like :func:`parse_split_files`.

    Rel paths are ``<class>/<video>``; a video marked 0 is in neither list. With ``within``, a split file that
    resolves outside that folder is refused unread.
    """
    splits_dir = Path(splits_dir)
    files: dict[str, Path] = {}
    splits_seen: set[int] = set()
    for path in splits_dir.glob("*_test_split*.txt"):
        match = _HMDB_SPLIT_RE.match(path.name)
        if match:
            splits_seen.add(int(match["split"]))
            if int(match["split"]) == split:
                files[match["cls"]] = path
    if not files:
        found = ", ".join(str(n) for n in sorted(splits_seen)) or "none"
        raise DatasetError(f"{splits_dir}: no <class>_test_split{split}.txt files for split {split} (splits found: {found})")
    classes = sorted(files)
    for path in files.values():
        if within is not None and not inside(path, within):
            raise DatasetError(f"{path}: {OUTSIDE_ROOT}")
    train: list[SplitEntry] = []
    test: list[SplitEntry] = []
    for label, name in enumerate(classes):
        for n, line in enumerate(_read_lines(files[name]), 1):
            parts = line.split()
            if len(parts) != 2 or parts[1] not in _HMDB_MARKS:
                raise DatasetError(f"{files[name]}:{n}: expected '<video>.avi <0|1|2>', got {line!r}")
            side = _HMDB_MARKS[parts[1]]
            if side is not None:
                (train if side == "train" else test).append((f"{name}/{parts[0]}", label))
    if not train:
        raise DatasetError(f"{splits_dir}: split {split} marks no video for training (mark 1)")
    return classes, train, test


# ---------------------------------------------------------------------------------------------
# Layout detection

VIDEO_DIR_NAMES = ("videos", "UCF-101", "hmdb51_org", "HMDB51")
SPLIT_DIR_NAMES = ("splits", "ucfTrainTestlist", "testTrainMulti_7030_splits")


def find_video_dir(root: Path) -> Path:
    """The first of ``root/videos``, ``root/UCF-101``, ``root/hmdb51_org``, ``root/HMDB51`` that exists, else
    ``root`` (a candidate that is a symlink leading outside ``root`` is not used)."""
    real = Path(os.path.realpath(root))
    for name in VIDEO_DIR_NAMES:
        if (root / name).is_dir() and inside(root / name, real):
            return root / name
    return root


def _has_split_files(path: Path) -> bool:
    return (path / "classInd.txt").is_file() or is_hmdb_splits_dir(path)


def find_splits_dir(root: Path, configured: Path | None = None) -> Path | None:
    """The configured folder, else the first of ``root/splits``, ``root/ucfTrainTestlist``,
    ``root/testTrainMulti_7030_splits`` or ``root`` that holds UCF101 (classInd.txt) or HMDB51 split files."""
    if configured is not None:
        configured = Path(configured)
        if not _has_split_files(configured):
            raise DatasetError(f"splits_dir {configured}: neither classInd.txt (UCF101) nor "
                               "<class>_test_split<N>.txt files (HMDB51) found there")
        return configured
    real = Path(os.path.realpath(root))
    for candidate in (*(root / name for name in SPLIT_DIR_NAMES), root):
        if _has_split_files(candidate) and inside(candidate, real):
            return candidate
    return None


def _disk_files(video_dir: Path, root: Path, problems: list[Problem]) -> dict[str, str]:
    """Lower-cased rel -> rel as on disk, for every video one folder deep.

    ``root`` is the resolved dataset root: a class folder or video that is a symlink resolving outside it is
    not listed (and never opened); it becomes a problem that names the link, not its target."""
    out: dict[str, str] = {}
    try:
        folders = [e for e in os.scandir(video_dir) if e.is_dir()]
    except OSError as exc:
        raise DatasetError(f"cannot list {video_dir}: {exc.strerror or type(exc).__name__}") from exc
    for folder in sorted(folders, key=lambda e: e.name):
        if not inside(folder.path, root):
            problems.append(Problem(f"{folder.name}/", OUTSIDE_ROOT))
            continue
        with os.scandir(folder.path) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if os.path.splitext(entry.name)[1].lower() not in VIDEO_EXTENSIONS:
                    continue
                rel = f"{folder.name}/{entry.name}"
                if entry.is_symlink() and not inside(entry.path, root):
                    problems.append(Problem(rel, OUTSIDE_ROOT))
                elif entry.is_file():
                    out.setdefault(rel.lower(), rel)
    return out


def _items_from_entries(
    entries: list[SplitEntry], video_dir: Path, disk: dict[str, str], problems: list[Problem]
) -> list[VideoItem]:
    items: list[VideoItem] = []
    reported = {p.rel.lower() for p in problems}  # e.g. links out of the root: already reported
    for rel, label in entries:
        if rel.lower() in reported or rel.split("/", 1)[0].lower() + "/" in reported:
            continue
        on_disk = disk.get(rel.lower())
        if on_disk is None:
            problems.append(Problem(rel, "missing: listed in the split file but not found on disk"))
            continue
        items.append(VideoItem(video_dir / on_disk, on_disk, label, video_group(on_disk)))
    return items


def group_split(
    items: list[VideoItem], *, test_fraction: float, seed: int
) -> tuple[list[VideoItem], list[VideoItem]]:
    """Seeded per-class split by whole groups: about ``test_fraction`` of each class goes to test.

    A class with a single group goes entirely to train. A class with two or more groups keeps at
    least one group on each side. Output order follows the input order.
    """
    by_class: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for pos, item in enumerate(items):
        by_class[item.label][item.group or Path(item.rel).stem].append(pos)
    test_pos: set[int] = set()
    for label in sorted(by_class):
        groups = by_class[label]
        names = sorted(groups)
        if len(names) < 2:
            continue
        random.Random(f"{seed}:{label}").shuffle(names)
        total = sum(len(v) for v in groups.values())
        target = test_fraction * total
        taken = 0
        for i, name in enumerate(names[:-1]):  # keep at least one group for train
            size = len(groups[name])
            # take a group while that brings the test count closer to the target (always at least one)
            if i > 0 and abs(taken + size - target) >= abs(taken - target):
                break
            test_pos.update(groups[name])
            taken += size
    train = [it for pos, it in enumerate(items) if pos not in test_pos]
    test = [it for pos, it in enumerate(items) if pos in test_pos]
    return train, test


def class_balanced_subset(items: list[VideoItem], fraction: float, seed: int) -> list[VideoItem]:
    """Per class keep ``max(1, round(fraction * n_c))`` videos, drawn with ``seed``; order is kept.

    ``fraction == 1`` returns every item. Rounding is half-up (2.5 -> 3), not Python's banker's rounding.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"subset fraction must be in (0, 1], got {fraction}")
    if fraction >= 1:
        return list(items)
    by_class: dict[int, list[int]] = defaultdict(list)
    for pos, item in enumerate(items):
        by_class[item.label].append(pos)
    keep: set[int] = set()
    for label in sorted(by_class):
        positions = by_class[label]
        k = max(1, math.floor(fraction * len(positions) + 0.5))
        keep.update(random.Random(f"{seed}:{label}").sample(positions, k))
    return [it for pos, it in enumerate(items) if pos in keep]


def _index_split_files(root: Path, video_dir: Path, splits_dir: Path, split: int, *,
                       within: Path | None) -> DatasetIndex:
    if (splits_dir / "classInd.txt").is_file():
        classes, train_entries, test_entries = parse_split_files(splits_dir, split, within=within)
        source = f"ucf101-split-{split}"
    else:
        classes, train_entries, test_entries = parse_hmdb_split_files(splits_dir, split, within=within)
        source = f"hmdb51-split-{split}"
    problems: list[Problem] = []
    disk = _disk_files(video_dir, Path(os.path.realpath(root)), problems)
    if not disk:
        raise DatasetError(
            f"{video_dir}: no videos found (expected <ClassName>/<video>.avi under root or one of "
            f"{', '.join('root/' + n for n in VIDEO_DIR_NAMES)})"
        )
    train = _items_from_entries(train_entries, video_dir, disk, problems)
    test = _items_from_entries(test_entries, video_dir, disk, problems)
    if not train:
        raise DatasetError(
            f"none of the {len(train_entries)} videos listed in the split {split} train list exist under {video_dir}"
        )
    return DatasetIndex(root, classes, train, test, problems, source)


def _index_folders(root: Path, video_dir: Path, config: DataConfig) -> DatasetIndex:
    problems: list[Problem] = []
    disk = _disk_files(video_dir, Path(os.path.realpath(root)), problems)
    by_class: dict[str, list[str]] = defaultdict(list)
    for rel in disk.values():
        by_class[rel.split("/", 1)[0]].append(rel)
    classes = sorted(by_class)
    if not classes:
        raise DatasetError(
            f"{root}: no class folders with videos found; expected <ClassName>/<video>.avi "
            "(under root/videos, root/UCF-101 or root) or UCF101 split files (classInd.txt)"
        )
    items = [
        VideoItem(video_dir / rel, rel, label, video_group(Path(rel).name))
        for label, name in enumerate(classes)
        for rel in sorted(by_class[name])
    ]
    # the split number seeds the folder split, so "split 2" of a folder is another fixed, reproducible split
    train, test = group_split(items, test_fraction=config.test_fraction, seed=config.split)
    return DatasetIndex(root, classes, train, test, problems, "folder")


def index_dataset(config: DataConfig) -> DatasetIndex:
    """List the videos of ``config.root`` with labels and a train/test split (no decoding).

    Listed-but-missing videos become ``problems``; the training list is then reduced to the
    class-balanced ``config.subset`` (the test list is never subsampled).
    """
    root = Path(config.root).expanduser()
    if not root.is_dir():
        raise DatasetError(f"dataset root {root} does not exist or is not a folder")
    video_dir = find_video_dir(root)
    splits_dir = find_splits_dir(root, config.splits_dir)
    if splits_dir is not None:
        auto = config.splits_dir is None  # auto-detected under root: its files must resolve inside root
        index = _index_split_files(root, video_dir, splits_dir, config.split,
                                   within=Path(os.path.realpath(root)) if auto else None)
    else:
        index = _index_folders(root, video_dir, config)
    index.train = class_balanced_subset(index.train, config.subset, config.subset_seed)
    return index
