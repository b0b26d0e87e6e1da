"""Golden checks of the NCE memory bank and the KD term against hand-computed values."""

import math

import pytest
import torch
import torch.nn.functional as F

from ml.losses import NCEMemoryBank, contrastive_kd_loss, kd_kl_loss, nce_softmax_loss


def _bank(size: int = 4, dim: int = 2, **kw) -> NCEMemoryBank:
    bank = NCEMemoryBank(dim, size, negatives=2, temperature=0.5, momentum=0.5, **kw)
    bank.memory_a.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]]))
    bank.memory_b.copy_(torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, -1.0], [-1.0, 0.0]]))
    return bank


def test_nce_logits_and_loss_match_hand_computation():
    bank = _bank()
    z_a = torch.tensor([[1.0, 0.0]])
    z_b = torch.tensor([[0.0, 1.0]])
    idx = torch.tensor([[1, 0, 2]])  # positive slot 1, negatives 0 and 2
    out_a, out_b = bank.logits(z_a, z_b, idx)
    # view A is scored against bank B: rows [1,0], [0,1], [0,-1] dotted with [1,0], divided by T=0.5
    assert out_a.tolist() == [[2.0, 0.0, 0.0]]
    # view B against bank A: rows [0,1], [1,0], [-1,0] dotted with [0,1]
    assert out_b.tolist() == [[2.0, 0.0, 0.0]]
    expected = 2 * -math.log(math.exp(2) / (math.exp(2) + 2))
    assert nce_softmax_loss(out_a, out_b).item() == pytest.approx(expected, rel=1e-6)


def test_memory_bank_update_is_momentum_average_renormalised():
    bank = _bank()
    z_a = torch.tensor([[0.0, 1.0]])
    z_b = torch.tensor([[1.0, 0.0]])
    bank.update(z_a, z_b, torch.tensor([0]))
    s = 1 / math.sqrt(2)
    # 0.5*[1,0] + 0.5*[0,1] = [.5,.5] -> normalised [s, s]; bank B: 0.5*[0,1] + 0.5*[1,0]
    assert torch.allclose(bank.memory_a[0], torch.tensor([s, s]))
    assert torch.allclose(bank.memory_b[0], torch.tensor([s, s]))
    # other slots untouched
    assert bank.memory_a[1].tolist() == [0.0, 1.0]


def test_draw_indices_puts_the_sample_first_and_can_exclude_it():
    g = torch.Generator().manual_seed(0)
    bank = NCEMemoryBank(8, 5, negatives=50, exclude_positive=True)
    index = torch.tensor([0, 3])
    idx = bank.draw_indices(index, g)
    assert idx.shape == (2, 51)
    assert idx[:, 0].tolist() == [0, 3]
    assert not (idx[:, 1:] == index[:, None]).any()
    assert int(idx.max()) < 5


def test_bank_init_matches_reference_range():
    bank = NCEMemoryBank(128, 100)
    bound = 1 / math.sqrt(128 / 3)
    assert float(bank.memory_a.abs().max()) <= bound
    assert float(bank.memory_a.std()) > bound / 3


def test_kd_is_zero_for_identical_logits_and_matches_formula():
    s = torch.randn(4, 5)
    assert kd_kl_loss(s, s.clone(), temperature=4.0).item() == pytest.approx(0.0, abs=1e-6)
    t = torch.randn(4, 5)
    p_t = F.softmax(t / 4, dim=1)
    p_s = F.softmax(s / 4, dim=1)
    manual = (p_t * (p_t.log() - p_s.log())).sum(1).mean() * 16
    assert kd_kl_loss(s, t, temperature=4.0).item() == pytest.approx(manual.item(), rel=1e-5)
    assert kd_kl_loss(s, t, temperature=4.0, t_squared=False).item() == pytest.approx(manual.item() / 16, rel=1e-5)


def test_kd_sends_no_gradient_to_the_teacher():
    s = torch.randn(3, 5, requires_grad=True)
    t = torch.randn(3, 5, requires_grad=True)
    kd_kl_loss(s, t, temperature=2.0).backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert t.grad is None


def test_contrastive_kd_zero_for_identical_embeddings():
    z = F.normalize(torch.randn(6, 16), dim=1)
    w = F.normalize(torch.randn(6, 16), dim=1)
    assert contrastive_kd_loss((z, w), (z, w), temperature=4.0, nce_temperature=0.07).item() == pytest.approx(0, abs=1e-5)
    assert contrastive_kd_loss((z, w), (w, z), temperature=4.0, nce_temperature=0.07).item() > 0
