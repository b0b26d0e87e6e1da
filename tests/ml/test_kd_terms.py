"""KD terms from the registry (ml.kd_terms): the weighted-sum form equals the old ``distill.target`` if/else exactly,
the deprecated alias still validates (and hashes as before), and the feature_similarity term's value and gradient."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError

from ml.config import ClipSpec, DistillConfig, PretrainConfig, RuntimeConfig, config_hash
from ml.engine.evaluate import prepare_input
from ml.engine.pcl_task import PCLTask
from ml.engine.runtime import resolve_runtime
from ml.kd_terms import KD_TERMS, LEGACY_TARGETS
from ml.losses import contrastive_kd_loss, kd_kl_loss
from ml.losses.distill import feature_similarity_term
from ml.models.pcl_net import PCLOutputs


def _cfg(tmp_path, distill, width=0.125):
    return PretrainConfig(kind="distill", data={"root": tmp_path}, clip=ClipSpec.tiny(),
                          model={"backbone": "r3d", "width": width}, contrast={"negatives": 8},
                          distill={"alpha": 1.0, "teacher_checkpoint": tmp_path / "t.pt", **distill})


def _batch():
    g = torch.Generator().manual_seed(0)
    return {"clips": torch.randn(4, 3, 3, 8, 32, 32, generator=g), "label": torch.tensor([0, 1, 2, 3]),
            "index": torch.arange(4)}


def _task(cfg, teacher_net):
    torch.manual_seed(1)  # the same student weights and memory bank for every form
    rt = resolve_runtime(RuntimeConfig(device="cpu"))
    return PCLTask(cfg, num_train=8, rt=rt, teacher=copy.deepcopy(teacher_net))


def _old_if_else(cfg, student: PCLOutputs, teacher: PCLOutputs, target: str) -> torch.Tensor:
    """The KD term as ml/engine/pcl_task.py computed it from ``distill.target`` before the registry."""
    kd, terms = cfg.distill, []
    if target in ("pretext", "both"):
        terms.append(kd_kl_loss(student.logits, teacher.logits, temperature=kd.temperature, t_squared=kd.t_squared))
    if target in ("contrastive", "both"):
        s = (student.embeddings[:, 0].float(), student.embeddings[:, 1].float())
        t = (teacher.embeddings[:, 0].float(), teacher.embeddings[:, 1].float())
        terms.append(contrastive_kd_loss(s, t, temperature=kd.temperature, nce_temperature=cfg.contrast.temperature,
                                         t_squared=kd.t_squared))
    return torch.stack(terms).sum()


@pytest.fixture(scope="module")
def teacher_net(tmp_path_factory):
    torch.manual_seed(7)
    rt = resolve_runtime(RuntimeConfig(device="cpu"))
    cfg = PretrainConfig(data={"root": tmp_path_factory.mktemp("d")}, clip=ClipSpec.tiny(),
                         model={"backbone": "r3d", "width": 0.125}, contrast={"negatives": 8})
    return PCLTask(cfg, num_train=8, rt=rt).net.eval()


@pytest.mark.parametrize("target", ["pretext", "contrastive", "both"])
def test_terms_form_equals_the_target_form_bitwise(tmp_path, teacher_net, target):
    by_target = _task(_cfg(tmp_path, {"target": target}), teacher_net)
    by_terms = _task(_cfg(tmp_path, {"terms": LEGACY_TARGETS[target]}), teacher_net)
    assert by_target.cfg == by_terms.cfg and config_hash(by_target.cfg) == config_hash(by_terms.cfg)
    a, b = by_target.training_step(_batch()), by_terms.training_step(_batch())
    assert torch.equal(a.loss, b.loss) and a.metrics == b.metrics
    # and the registry's weighted sum is bitwise the old if/else on the same network outputs
    x = prepare_input(_batch()["clips"], modality="res", time_dim=3)  # as the task feeds them
    with torch.no_grad():
        s_out, t_out = by_terms.net(x), by_terms.teacher(x)
    assert torch.equal(by_terms._kd_term(s_out, t_out), _old_if_else(by_terms.cfg, s_out, t_out, target))


def test_weights_scale_each_term(tmp_path, teacher_net):
    task = _task(_cfg(tmp_path, {"terms": {"pretext": 0.5, "contrastive": 2.0}}), teacher_net)
    x = prepare_input(_batch()["clips"], modality="res", time_dim=3)
    with torch.no_grad():
        s_out, t_out = task.net(x), task.teacher(x)
    pre = KD_TERMS["pretext"].loss_function()(s_out, t_out, task.cfg)
    con = KD_TERMS["contrastive"].loss_function()(s_out, t_out, task.cfg)
    assert torch.allclose(task._kd_term(s_out, t_out), 0.5 * pre + 2.0 * con, rtol=1e-6, atol=0)


def test_distill_config_terms_validation_and_the_deprecated_alias():
    assert DistillConfig(target="both").terms == {"pretext": 1.0, "contrastive": 1.0}
    assert DistillConfig().terms == {"pretext": 1.0}
    assert DistillConfig(terms={"pretext": 0.0, "contrastive": 1.0}).terms == {"contrastive": 1.0}
    for bad, message in (({"terms": {"logits": 1.0}}, "unknown KD term"), ({"terms": {"pretext": -1.0}}, "positive"),
                         ({"terms": {"pretext": 0.0}}, "positive"), ({"target": "all"}, "distill.target must be"),
                         ({"target": "both", "terms": {"pretext": 1.0}}, "not both")):
        with pytest.raises(ValidationError, match=message):
            DistillConfig(**bad)


def _outputs(features: torch.Tensor) -> PCLOutputs:
    b = features.shape[0]
    return PCLOutputs(logits=torch.zeros(b, 5), embeddings=torch.zeros(b, 2, 4), features=features)


def test_feature_similarity_term_value(tmp_path):
    cfg = _cfg(tmp_path, {"terms": {"feature_similarity": 1.0}})
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(2, 3, 16, generator=g), torch.randn(2, 3, 64, generator=g)  # different widths are fine
    got = feature_similarity_term(_outputs(s), _outputs(t), cfg)
    sn = s.reshape(6, 16) / s.reshape(6, 16).norm(dim=1, keepdim=True)
    tn = t.reshape(6, 64) / t.reshape(6, 64).norm(dim=1, keepdim=True)
    want = ((sn @ sn.T - tn @ tn.T) ** 2).sum() / 36
    assert torch.allclose(got, want, rtol=1e-5)
    assert feature_similarity_term(_outputs(t), _outputs(t.clone()), cfg) == pytest.approx(0.0, abs=1e-7)
    scaled = feature_similarity_term(_outputs(3.0 * t), _outputs(t), cfg)  # scale-free: normalised features
    assert scaled == pytest.approx(0.0, abs=1e-6)


def test_feature_similarity_term_gradient(tmp_path):
    cfg = _cfg(tmp_path, {"terms": {"feature_similarity": 1.0}})
    g = torch.Generator().manual_seed(1)
    s = torch.randn(2, 3, 5, generator=g, dtype=torch.float64, requires_grad=True)
    t = torch.randn(2, 3, 7, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: feature_similarity_term(_outputs(x), _outputs(t), cfg), (s,))
    feature_similarity_term(_outputs(s), _outputs(t), cfg).backward()
    assert t.grad is None and s.grad is not None and s.grad.abs().sum() > 0  # the teacher gets no gradient


def test_feature_similarity_term_in_a_training_step_with_a_wider_teacher(tmp_path):
    torch.manual_seed(3)
    rt = resolve_runtime(RuntimeConfig(device="cpu"))
    wide = PCLTask(_cfg(tmp_path, {}, width=0.25).model_copy(update={"kind": "pretrain", "distill": DistillConfig(alpha=0.0)}),
                   num_train=8, rt=rt).net
    task = PCLTask(_cfg(tmp_path, {"terms": {"feature_similarity": 1.0}}), num_train=8, rt=rt, teacher=wide)
    out = task.training_step(_batch())
    assert out.metrics["loss_kd"] > 0
    out.loss.backward()
    assert all(p.grad is None for p in task.teacher.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in task.net.backbone.parameters())
