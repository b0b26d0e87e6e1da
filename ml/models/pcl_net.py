"""PCL network (docs/method.md §2.2) and the fine-tuning classifier (§4.1) around any registered backbone.

The residual input (``diff``) is the caller's job: these modules take preprocessed clips.
``.backbone.state_dict()`` is the transferable part of either model.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from ml.models.heads import ClassifierHead, ProjectionHead, VCPHead
from ml.models.registry import build_backbone


@dataclass
class PCLOutputs:
    """What :class:`PCLNet` returns.

    Attributes:
        logits: ``B×num_pretext`` VCP pretext logits.
        embeddings: ``B×2×proj_dim`` L2-normalised projections of the first and last clip (PCL's z0, z2).
        features: ``B×n_clips×feature_dim`` pooled backbone features of every clip.
    """

    logits: Tensor
    embeddings: Tensor
    features: Tensor


def _feature_dim(backbone: nn.Module) -> int:
    dim = getattr(backbone, "feature_dim", None)
    if not isinstance(dim, int):
        raise ValueError(f"backbone {type(backbone).__name__} has no integer 'feature_dim' attribute")
    return dim


class PCLNet(nn.Module):
    """Shared backbone over a clip tuple + VCP pretext head + projection head on clips 0 and n-1.

    ``forward(clips)`` takes ``B×n_clips×3×T×H×W`` and calls the backbone once on the flattened
    ``(B·n_clips)×3×T×H×W`` batch.
    """

    def __init__(self, backbone: nn.Module, *, n_clips: int = 3, num_pretext: int = 5, proj_dim: int = 128) -> None:
        super().__init__()
        if n_clips < 2:
            raise ValueError(f"PCLNet needs n_clips >= 2 (first and last clip are the contrastive views), got {n_clips}")
        self.backbone = backbone
        self.n_clips = n_clips
        self.feature_dim = _feature_dim(backbone)
        self.vcp_head = VCPHead(self.feature_dim, n_clips=n_clips, num_classes=num_pretext)
        self.proj_head = ProjectionHead(self.feature_dim, out_dim=proj_dim)

    def forward(self, clips: Tensor) -> PCLOutputs:
        if clips.dim() != 6 or clips.shape[1] != self.n_clips:
            raise ValueError(
                f"PCLNet expects clips shaped B×{self.n_clips}×C×T×H×W, got {tuple(clips.shape)}"
            )
        b, n = clips.shape[:2]
        features = self.backbone(clips.flatten(0, 1)).view(b, n, -1)
        logits = self.vcp_head(features.flatten(1))
        views = features[:, [0, n - 1]]  # B×2×D
        embeddings = self.proj_head(views.flatten(0, 1)).view(b, 2, -1)
        return PCLOutputs(logits=logits, embeddings=embeddings, features=features)


class VideoClassifier(nn.Module):
    """Backbone + :class:`ClassifierHead`; ``forward`` gives ``B×num_classes`` logits."""

    def __init__(self, backbone: nn.Module, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.backbone = backbone
        self.feature_dim = _feature_dim(backbone)
        self.head = ClassifierHead(self.feature_dim, num_classes, dropout=dropout)

    def features(self, x: Tensor) -> Tensor:
        """``B×3×T×H×W`` → pooled ``B×feature_dim``."""
        out: Tensor = self.backbone(x)
        return out

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.head(self.backbone(x))
        return out


def build_pcl_net(
    backbone: str, width: float = 1.0, *, n_clips: int = 3, num_pretext: int = 5, proj_dim: int = 128
) -> PCLNet:
    """A :class:`PCLNet` around ``build_backbone(backbone, width)``."""
    return PCLNet(build_backbone(backbone, width), n_clips=n_clips, num_pretext=num_pretext, proj_dim=proj_dim)
