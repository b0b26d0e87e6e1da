"""Heads that sit on a backbone's pooled feature (docs/method.md §2.2, §4.1)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class VCPHead(nn.Module):
    """VCP pretext classifier: ``Linear(n_clips·feature_dim → num_classes)`` on concatenated clip features.

    Accepts ``B×(n_clips·feature_dim)`` or ``B×n_clips×feature_dim`` (flattened here).
    """

    def __init__(self, feature_dim: int, n_clips: int = 3, num_classes: int = 5) -> None:
        super().__init__()
        self.fc = nn.Linear(n_clips * feature_dim, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(x.flatten(1))


class ProjectionHead(nn.Module):
    """MoCo-style MLP ``Linear → ReLU → Linear`` whose ``B×out_dim`` output is L2-normalised along dim 1."""

    def __init__(self, feature_dim: int, hidden: int | None = None, out_dim: int = 128) -> None:
        super().__init__()
        hidden = feature_dim if hidden is None else hidden
        self.mlp = nn.Sequential(nn.Linear(feature_dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out_dim))

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(self.mlp(x), dim=1)


class ClassifierHead(nn.Module):
    """Action classifier: ``Dropout(dropout) → Linear(feature_dim → num_classes)``."""

    def __init__(self, feature_dim: int, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(feature_dim, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.dropout(x))
