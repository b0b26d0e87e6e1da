"""CUDA path: a real-size PCL+KD step under bf16 autocast and channels_last_3d. Skipped without a GPU."""

import copy

import pytest
import torch

from ml.config import PretrainConfig
from ml.engine.loop import build_optimizer
from ml.engine.pcl_task import PCLTask
from ml.engine.runtime import resolve_runtime

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


@pytest.mark.parametrize("backbone", ["r3d", "c3d", "r21d"])
def test_full_size_kd_step_on_cuda(tmp_path, backbone):
    cfg = PretrainConfig(kind="distill", data={"root": tmp_path}, model={"backbone": backbone},
                         distill={"alpha": 1.0, "teacher_checkpoint": tmp_path / "t.pt"}, runtime={"device": "cuda"})
    rt = resolve_runtime(cfg.runtime)
    assert rt.amp and rt.channels_last
    teacher = PCLTask(cfg.model_copy(update={"kind": "pretrain", "distill": cfg.distill.model_copy(update={"alpha": 0.0})}),
                      num_train=64, rt=rt).net
    task = PCLTask(cfg, num_train=64, rt=rt, teacher=copy.deepcopy(teacher))
    batch = {"clips": torch.randn(4, 3, 3, 16, 112, 112, device="cuda"), "label": torch.randint(0, 5, (4,), device="cuda"),
             "index": torch.arange(4, device="cuda")}
    opt = build_optimizer(task.trainable_parameters(), cfg.optim)
    task.train()
    out = task.training_step(batch)
    out.loss.backward()
    opt.step()
    assert torch.isfinite(out.loss)
    assert out.metrics["loss_kd"] >= 0
    assert all(p.grad is None for p in task.teacher.parameters())
