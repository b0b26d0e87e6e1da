"""The one training loop end to end on a tiny synthetic set: exact resume, cooperative stop, KD, fine-tune, predict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ml.config import ClipSpec, FinetuneConfig, PretrainConfig, RetrieveConfig
from ml.engine import HistoryCallback, run
from ml.engine.checkpoint import load_checkpoint
from ml.errors import CheckpointError, EmptyVideoError, NotAVideoError, VideoTooShortError
from ml.inference import Predictor


def pretrain_config(root: Path, **over) -> PretrainConfig:
    base = dict(
        data={"root": root, "workers": 0},
        clip=ClipSpec.tiny(),
        model={"backbone": "r3d", "width": 0.125},
        contrast={"negatives": 16},
        optim={"batch_size": 4, "epochs": 2, "lr": 0.02, "scheduler": "none"},
        runtime={"log_every": 1, "max_steps_per_epoch": 3},
        eval={"retrieval_clips": 2},
    )
    base.update(over)
    return PretrainConfig.model_validate(base)


def _states_equal(a: dict, b: dict) -> None:
    for key in a:
        if isinstance(a[key], torch.Tensor):
            assert torch.allclose(a[key].float(), b[key].float(), atol=1e-6), key
        elif isinstance(a[key], dict):
            _states_equal(a[key], b[key])


def test_stopped_and_resumed_run_ends_where_an_uninterrupted_run_ends(tiny_dataset, tmp_path):
    cfg = pretrain_config(tiny_dataset)
    straight = run(cfg, out_dir=tmp_path / "straight")
    assert straight.status == "completed" and straight.epochs_completed == 2

    steps = {"n": 0}

    def stop_after_four() -> bool:
        steps["n"] += 1
        return steps["n"] == 4  # mid-way through epoch 2

    first = run(cfg, out_dir=tmp_path / "resumed", should_stop=stop_after_four)
    assert first.status == "stopped" and first.epochs_completed == 1
    partial = load_checkpoint(tmp_path / "resumed" / "checkpoint.pt")
    assert partial["batches_done"] == 1 and partial["global_step"] == 4
    history = HistoryCallback()
    replayed: list[list[dict]] = []
    history.on_resume = lambda *, history: replayed.append(history)  # type: ignore[method-assign]
    second = run(cfg, out_dir=tmp_path / "resumed", callback=history)
    assert second.status == "completed" and second.epochs_completed == 2
    assert any("resumed from" in line for line in history.logs)
    assert [[h["epoch"] for h in r] for r in replayed] == [[1.0]]  # the epochs done before the stop, for reporters

    a = load_checkpoint(tmp_path / "straight" / "checkpoint.pt")
    b = load_checkpoint(tmp_path / "resumed" / "checkpoint.pt")
    _states_equal(a["task"]["net"], b["task"]["net"])
    _states_equal(a["task"]["bank"], b["task"]["bank"])
    for ea, eb in zip(a["history"], b["history"]):
        assert ea["loss"] == pytest.approx(eb["loss"], rel=1e-5)
    assert a["global_step"] == b["global_step"] == 6


def test_resume_refuses_a_changed_config(tiny_dataset, tmp_path):
    run(pretrain_config(tiny_dataset, optim={"batch_size": 4, "epochs": 1, "scheduler": "none"},
                        runtime={"max_steps_per_epoch": 1}), out_dir=tmp_path)
    changed = pretrain_config(tiny_dataset, optim={"batch_size": 4, "epochs": 1, "lr": 0.5, "scheduler": "none"},
                              runtime={"max_steps_per_epoch": 1})
    with pytest.raises(CheckpointError, match="training hash"):
        run(changed, out_dir=tmp_path)
    # reporting/storage settings may change between stop and resume
    chattier = pretrain_config(tiny_dataset, optim={"batch_size": 4, "epochs": 2, "scheduler": "none"},
                               runtime={"max_steps_per_epoch": 1, "log_every": 1, "keep_every": 1})
    resumed = run(chattier.model_copy(update={"optim": chattier.optim.model_copy(update={"epochs": 1})}), out_dir=tmp_path)
    assert resumed.status == "completed"


def test_teacher_to_cross_architecture_student_to_classifier_to_prediction(tiny_dataset, tmp_path):
    teacher = run(pretrain_config(tiny_dataset), out_dir=tmp_path / "teacher")
    assert "retrieval" in teacher.results and 0 <= teacher.results["retrieval"]["top1"] <= 1
    assert "protocol" in teacher.results["retrieval"]

    student_cfg = pretrain_config(
        tiny_dataset, kind="distill", model={"backbone": "c3d", "width": 0.125},
        distill={"alpha": 1.0, "temperature": 4.0, "teacher_checkpoint": teacher.checkpoint},
    )
    student = run(student_cfg, out_dir=tmp_path / "student")
    assert student.status == "completed"
    epochs = student.results["history"]
    assert all(e["loss_kd"] > 0 for e in epochs)
    state = load_checkpoint(student.checkpoint)
    assert state["teacher_backbone"] == "r3d" and state["backbone"] == "c3d"

    ft_cfg = FinetuneConfig(
        data={"root": tiny_dataset, "workers": 0}, source_checkpoint=student.checkpoint,
        clip=ClipSpec.tiny().model_copy(update={"normalize": False}),
        optim={"batch_size": 4, "epochs": 2, "lr": 0.01, "scheduler": "none"}, val_videos=2,
        eval={"retrieval": False, "test_clips": 2},
    )
    ft = run(ft_cfg, out_dir=tmp_path / "ft")
    test = ft.results["test"]
    assert set(test) >= {"clip_top1", "clip_top5", "video_top1", "video_top5", "protocol"}
    assert test["videos"] == 8.0
    assert json.loads((tmp_path / "ft" / "results.json").read_text())["test"]["video_top1"] == test["video_top1"]
    assert ft.results["labels"] == ["MoveUp", "MoveDown", "Expand", "Shrink"]

    predictor = Predictor.load(ft.checkpoint)
    assert predictor.backbone == "c3d"
    video = next((tiny_dataset / "videos").rglob("*.avi"))
    pred = predictor.predict(video, top_k=3, clips=4, thumbnails=True)
    assert len(pred.top_k) == 3 and pred.clips == 4
    assert len(pred.thumbnails) == 4 and all(t.startswith("data:image/png;base64,") for t in pred.thumbnails)
    assert sum(p["score"] for p in pred.top_k) <= 1.0 + 1e-6
    assert [p["score"] for p in pred.top_k] == sorted((p["score"] for p in pred.top_k), reverse=True)
    assert len(pred.frames_sampled) == 4 and all(len(f) == 8 for f in pred.frames_sampled)

    empty = tmp_path / "empty.avi"
    empty.write_bytes(b"")
    with pytest.raises(EmptyVideoError):
        predictor.predict(empty)
    text = tmp_path / "notes.avi"
    text.write_bytes(b"this is not a video at all" * 100)
    with pytest.raises(NotAVideoError):
        predictor.predict(text)

    with pytest.raises(CheckpointError, match="fine-tuned classifier"):
        Predictor.load(teacher.checkpoint)

    retrieval = run(RetrieveConfig(data={"root": tiny_dataset, "workers": 0}, checkpoint=student.checkpoint,
                                   eval={"retrieval_clips": 2, "retrieval_feature": "map"}), out_dir=tmp_path / "ret")
    assert 0 <= retrieval.results["retrieval"]["top1"] <= 1


def test_too_short_video_is_a_typed_error(tiny_dataset, tmp_path):
    from ml.synthetic import generate_dataset

    short = tmp_path / "short"
    generate_dataset(short, classes=2, videos_per_class=2, frames=4, width=64, height=48, seed=1, groups=2)
    video = next((short / "videos").rglob("*.avi"))
    ft = FinetuneConfig(data={"root": tiny_dataset, "workers": 0}, clip=ClipSpec.tiny().model_copy(update={"normalize": False}),
                        optim={"batch_size": 4, "epochs": 1, "scheduler": "none"}, runtime={"max_steps_per_epoch": 1},
                        val_videos=0, eval={"test_clips": 1})
    result = run(ft, out_dir=tmp_path / "ft")
    with pytest.raises(VideoTooShortError, match="at least 8"):
        Predictor.load(result.checkpoint).predict(video)


def test_png_thumbnails_decode_back_to_the_frame(tmp_path):
    import av
    import numpy as np

    from ml.inference import encode_png

    rgb = (np.arange(6 * 8 * 3) % 251).astype(np.uint8).reshape(6, 8, 3)
    path = tmp_path / "t.png"
    path.write_bytes(encode_png(rgb))
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="rgb24")
    assert np.array_equal(frame, rgb)


def test_best_validation_epoch_is_kept_beside_the_latest(tiny_dataset, tmp_path):
    result = run(pretrain_config(tiny_dataset, optim={"batch_size": 4, "epochs": 3, "lr": 0.02, "scheduler": "none"},
                                 runtime={"max_steps_per_epoch": 3, "keep_every": 2}), out_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.glob("epoch*.pt")) == ["epoch0002.pt"]
    assert load_checkpoint(tmp_path / "epoch0002.pt")["epoch"] == 2
    losses = [h["val_loss"] for h in result.results["history"]]
    best_epoch = losses.index(min(losses)) + 1
    assert result.results["best_val_loss_epoch"] == best_epoch
    best = load_checkpoint(tmp_path / "best.pt")
    assert best["epoch"] == best_epoch and best["best"]["epoch"] == best_epoch


def test_frame_cache_and_sparse_validation_leave_the_weights_unchanged(tiny_dataset, tmp_path):
    optim = {"batch_size": 4, "epochs": 3, "lr": 0.02, "scheduler": "none"}
    plain_cfg = pretrain_config(tiny_dataset, optim=optim)
    fast_cfg = pretrain_config(tiny_dataset, optim=optim, data={"root": tiny_dataset, "workers": 0, "cache_mb": 64},
                               runtime={"log_every": 1, "max_steps_per_epoch": 3, "validate_every": 2})
    plain = run(plain_cfg, out_dir=tmp_path / "plain")
    fast = run(fast_cfg, out_dir=tmp_path / "fast")
    assert [("val_loss" in h) for h in plain.results["history"]] == [True, True, True]
    assert [("val_loss" in h) for h in fast.results["history"]] == [False, True, True]  # every 2nd epoch and the last
    _states_equal(load_checkpoint(tmp_path / "plain" / "checkpoint.pt")["task"], load_checkpoint(tmp_path / "fast" / "checkpoint.pt")["task"])
    assert fast.results["retrieval"] == plain.results["retrieval"]
