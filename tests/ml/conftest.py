"""Shared ml/ fixtures: a tiny synthetic UCF-layout dataset (generated once per session) and a tiny clip spec."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml.config import ClipSpec
from ml.synthetic import generate_dataset

UCF_SPLITS = Path(__file__).resolve().parents[2].parent / "shared" / "ucf101-splits"


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Root of a synthetic set: 4 classes × 6 videos, 40 frames of 64×48, split files in root/splits.

    Groups g01–g04 round-robin; g01 (2 videos per class) is the test list, the rest train.
    Treat it as read-only; copy it (shutil.copytree) before modifying.
    """
    root = tmp_path_factory.mktemp("tiny_dataset")
    generate_dataset(root, classes=4, videos_per_class=6, frames=40, width=64, height=48, seed=0, groups=4)
    return root


@pytest.fixture
def tiny_clip() -> ClipSpec:
    """8 frames, decoded at 37×49, 32 crop."""
    return ClipSpec.tiny()


@pytest.fixture(scope="session")
def ucf_splits_dir() -> Path:
    """The real UCF101 split files (read-only, shared); tests needing them skip when absent."""
    if not (UCF_SPLITS / "classInd.txt").is_file():
        pytest.skip(f"UCF101 split files not found at {UCF_SPLITS}")
    return UCF_SPLITS
