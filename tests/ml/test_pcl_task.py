"""The PCL+KD objective on hand-made batches: KD vanishes for an identical teacher, which never gets gradients."""

import copy

import pytest
import torch

from ml.config import ClipSpec, PretrainConfig, RuntimeConfig
from ml.engine.pcl_task import PCLTask
from ml.engine.runtime import resolve_runtime


def _cfg(tmp_path, **distill):
    return PretrainConfig(
        kind="distill" if distill else "pretrain",
        data={"root": tmp_path},
        clip=ClipSpec.tiny(),
        model={"backbone": "r3d", "width": 0.125},
        contrast={"negatives": 8},
        distill={"alpha": 1.0, "teacher_checkpoint": tmp_path / "t.pt", **distill} if distill else {"alpha": 0.0},
    )


def _batch(b: int = 4):
    g = torch.Generator().manual_seed(0)
    return {
        "clips": torch.randn(b, 3, 3, 8, 32, 32, generator=g),
        "label": torch.tensor([0, 1, 2, 3][:b]),
        "index": torch.arange(b),
    }


@pytest.mark.parametrize("target", ["pretext", "contrastive", "both"])
def test_kd_term_is_zero_when_student_equals_teacher(tmp_path, target):
    torch.manual_seed(0)
    cfg = _cfg(tmp_path, target=target)
    rt = resolve_runtime(RuntimeConfig(device="cpu"))
    task = PCLTask(cfg, num_train=8, rt=rt, teacher=None)
    task.teacher = copy.deepcopy(task.net).eval().requires_grad_(False)
    task.net.eval()  # same mode as the teacher, so the two networks compute the same function
    out = task.training_step(_batch())
    assert out.metrics["loss_kd"] == pytest.approx(0.0, abs=1e-5)
    assert out.metrics["teacher_agreement"] == 1.0


def test_no_gradient_reaches_the_teacher_and_student_learns(tmp_path):
    torch.manual_seed(0)
    cfg = _cfg(tmp_path, target="both")
    rt = resolve_runtime(RuntimeConfig(device="cpu"))
    teacher_src = PCLTask(_cfg(tmp_path), num_train=8, rt=rt).net
    task = PCLTask(cfg, num_train=8, rt=rt, teacher=copy.deepcopy(teacher_src))
    before = {k: v.clone() for k, v in task.teacher.state_dict().items()}
    task.train()
    assert not task.teacher.training
    out = task.training_step(_batch())
    assert out.metrics["loss_kd"] > 0
    out.loss.backward()
    assert all(p.grad is None for p in task.teacher.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in task.net.parameters())
    for k, v in task.teacher.state_dict().items():
        assert torch.equal(v, before[k]), f"teacher {k} changed"


def test_alpha_zero_baseline_has_no_kd_term(tmp_path):
    cfg = _cfg(tmp_path)
    rt = resolve_runtime(RuntimeConfig(device="cpu"))
    task = PCLTask(cfg, num_train=8, rt=rt)
    out = task.training_step(_batch())
    assert "loss_kd" not in out.metrics
    expected = out.metrics["loss_pretext"] + cfg.contrast.weight * out.metrics["loss_nce"]
    assert out.metrics["loss"] == pytest.approx(expected, rel=1e-5)


def test_training_step_moves_the_memory_bank(tmp_path):
    rt = resolve_runtime(RuntimeConfig(device="cpu"))
    task = PCLTask(_cfg(tmp_path), num_train=8, rt=rt)
    before = task.bank.memory_a.clone()
    task.training_step(_batch())
    changed = (task.bank.memory_a != before).any(dim=1)
    assert changed[:4].all() and not changed[4:].any()
