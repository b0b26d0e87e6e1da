"""NCE memory-bank contrastive loss, as PCL's ``NCEAverage_ori`` + ``NCESoftmaxLoss`` (docs/method.md §2.2).

Two banks hold one 128-d embedding per training video. View A (clip 0) is scored against bank B
and view B (clip 2) against bank A, each over the sample's own slot (the positive, index 0) plus
K slots drawn uniformly from the whole bank. After the step both banks move towards the new
embeddings with momentum and are re-normalised.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class NCEMemoryBank(nn.Module):
    """Memory banks and (K+1)-way logits for two views; reads ``z_a``, ``z_b`` (B×D, unit norm) and ``index`` (B)."""

    def __init__(
        self,
        dim: int,
        size: int,
        *,
        negatives: int = 1024,
        temperature: float = 0.07,
        momentum: float = 0.5,
        exclude_positive: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if size < 1:
            raise ValueError("memory bank size must be the number of training videos (>= 1)")
        self.dim, self.size = dim, size
        self.negatives, self.temperature, self.momentum = negatives, temperature, momentum
        self.exclude_positive = exclude_positive
        init = torch.Generator().manual_seed(seed)
        bound = 1.0 / math.sqrt(dim / 3)
        self.register_buffer("memory_a", torch.rand(size, dim, generator=init).mul_(2 * bound).add_(-bound))
        self.register_buffer("memory_b", torch.rand(size, dim, generator=init).mul_(2 * bound).add_(-bound))

    def draw_indices(self, index: Tensor, generator: torch.Generator) -> Tensor:
        """B×(K+1) bank slots: column 0 is the sample itself, the rest uniform over the bank."""
        batch = index.shape[0]
        idx = torch.randint(0, self.size, (batch, self.negatives + 1), generator=generator, device="cpu")
        idx = idx.to(index.device)
        if self.exclude_positive and self.size > 1:
            clash = idx == index[:, None]
            shift = torch.randint(1, self.size, idx.shape, generator=generator, device="cpu").to(index.device)
            idx = torch.where(clash, (idx + shift) % self.size, idx)
        idx[:, 0] = index
        return idx

    def logits(self, z_a: Tensor, z_b: Tensor, idx: Tensor) -> tuple[Tensor, Tensor]:
        """(out_a, out_b), each B×(K+1): view A against bank B, view B against bank A, divided by T."""
        bank_b = self.memory_b[idx].to(z_a.dtype)
        bank_a = self.memory_a[idx].to(z_b.dtype)
        out_a = torch.bmm(bank_b, z_a.unsqueeze(2)).squeeze(2) / self.temperature
        out_b = torch.bmm(bank_a, z_b.unsqueeze(2)).squeeze(2) / self.temperature
        return out_a, out_b

    @torch.no_grad()
    def update(self, z_a: Tensor, z_b: Tensor, index: Tensor) -> None:
        """memory[i] <- normalize(m*memory[i] + (1-m)*z) for both banks."""
        m = self.momentum
        for bank, z in ((self.memory_a, z_a), (self.memory_b, z_b)):
            mixed = bank[index] * m + z.detach().to(bank.dtype) * (1 - m)
            bank[index] = F.normalize(mixed, dim=1)


def nce_softmax_loss(out_a: Tensor, out_b: Tensor) -> Tensor:
    """CE with the positive at index 0, summed over the two views (NCESoftmaxLoss twice)."""
    target = torch.zeros(out_a.shape[0], dtype=torch.long, device=out_a.device)
    return F.cross_entropy(out_a.float(), target) + F.cross_entropy(out_b.float(), target)
