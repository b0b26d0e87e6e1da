"""Checkpoints load with weights_only=True: a crafted pickle is refused and its payload never runs;
what the project writes (training checkpoints, the weights export) loads under the safe loader."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from crafted_pickle import write_crafted_checkpoint
from ml.config import ClipSpec, FinetuneConfig, PretrainConfig, RetrieveConfig
from ml.engine import run
from ml.engine.checkpoint import WEIGHTS_FORMAT, export_weights, load_checkpoint
from ml.engine.runner import load_teacher
from ml.errors import CheckpointError
from ml.inference import Predictor


@pytest.fixture
def crafted(tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "payload-ran"
    return write_crafted_checkpoint(tmp_path / "evil.pt", marker), marker


def test_the_crafted_file_is_live(crafted: tuple[Path, Path]) -> None:
    """The payload does run under an unsafe load (so the refusals below are meaningful)."""
    path, marker = crafted
    torch.load(path, weights_only=False)
    assert marker.is_dir()


def test_load_checkpoint_refuses_a_crafted_pickle(crafted: tuple[Path, Path]) -> None:
    path, marker = crafted
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="refused"):
        Predictor.load(path)
    with pytest.raises(CheckpointError, match="refused"):
        load_teacher(path, device=torch.device("cpu"))
    with pytest.raises(CheckpointError, match="refused"):
        export_weights(path, path.parent / "weights.pt")
    assert not marker.exists()


@pytest.mark.parametrize("kind", ["distill", "finetune", "evaluate"])
def test_runs_refuse_a_crafted_parent_checkpoint(tiny_dataset: Path, crafted: tuple[Path, Path], tmp_path: Path,
                                                 kind: str) -> None:
    path, marker = crafted
    data = {"root": tiny_dataset, "workers": 0}
    clip = ClipSpec.tiny()
    config = {"distill": lambda: PretrainConfig(kind="distill", data=data, clip=clip, contrast={"negatives": 4},
                                                distill={"teacher_checkpoint": path}),
              "finetune": lambda: FinetuneConfig(data=data, clip=clip, source_checkpoint=path),
              "evaluate": lambda: RetrieveConfig(data=data, clip=clip, checkpoint=path)}[kind]()
    with pytest.raises(CheckpointError, match="refused"):
        run(config, out_dir=tmp_path / "out")
    assert not marker.exists()


def test_training_checkpoint_and_weights_export_load_weights_only(tiny_dataset: Path, tmp_path: Path) -> None:
    cfg = FinetuneConfig.model_validate(dict(
        data={"root": tiny_dataset, "workers": 0}, clip=ClipSpec.tiny(),
        model={"backbone": "r3d", "width": 0.125}, val_videos=2, optim={"batch_size": 4, "epochs": 1},
        runtime={"max_steps_per_epoch": 2}, eval={"test_clips": 1}))
    result = run(cfg, out_dir=tmp_path / "ft")
    assert result.status == "completed" and result.checkpoint is not None
    raw = torch.load(result.checkpoint, weights_only=True)  # plain torch, safe mode: nothing to allow-list
    assert isinstance(raw["rng"]["torch"], torch.Tensor)
    export = export_weights(result.checkpoint, tmp_path / "weights.pt")
    weights = torch.load(export, weights_only=True)
    assert weights["format"] == WEIGHTS_FORMAT and "optimizer" not in weights and "rng" not in weights
    assert (weights["backbone"], weights["width"], weights["labels"]) == ("r3d", 0.125, raw["labels"])
    assert weights["clip"]["frames"] == ClipSpec.tiny().frames and all(isinstance(v, torch.Tensor) for v in weights["state_dict"].values())
    video = next(tiny_dataset.rglob("*.avi"))
    a = Predictor.load(result.checkpoint).predict(video, clips=2)
    b = Predictor.load(export).predict(video, clips=2)
    assert a.top_k == b.top_k


def test_a_format_1_checkpoint_with_pickled_numpy_state_is_a_clear_error(tmp_path: Path) -> None:
    """Before format 2 the numpy RNG state was a pickled ndarray: not loadable safely, so refused with advice."""
    import numpy as np

    path = tmp_path / "old.pt"
    torch.save({"format_version": 1, "kind": "pretrain", "rng": {"numpy": np.random.get_state()}}, path)
    with pytest.raises(CheckpointError, match="before format 2 must be re-trained"):
        load_checkpoint(path)
