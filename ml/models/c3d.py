"""C3D with BatchNorm, as ``C3D(with_classifier=False)`` in the PCL/VCOP code (docs/method.md §1).

conv1 64, pool(1,2,2); conv2 128, pool(2,2,2); conv3a/b 256, pool; conv4a/b 512, pool; conv5a/b 512;
every conv k3 p1 with bias, then BN and ReLU; no fc6/fc7. 27,661,440 params at width 1; a
``16×112×112`` clip gives a ``512×2×7×7`` map, pooled to 512.

Small clips: the reference max-pools (floor mode) fail once a dimension is smaller than the
kernel (e.g. T=1 before pool4 for a 4-frame clip). :class:`SafeMaxPool3d` leaves such a dimension
unpooled (kernel and stride 1 on it) and is otherwise identical to ``nn.MaxPool3d``, so every
size the reference accepts gives the same shapes, and any other size still runs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ml.models.registry import register_backbone
from ml.models.video_resnet import init_weights, scale_channels

REFERENCE_WIDTHS: tuple[int, ...] = (64, 128, 256, 512, 512)


class SafeMaxPool3d(nn.Module):
    """``nn.MaxPool3d(kernel, stride)`` (floor mode, no padding) that skips too-small dimensions."""

    def __init__(self, kernel: Sequence[int], stride: Sequence[int] | None = None) -> None:
        super().__init__()
        self.kernel = tuple(int(k) for k in kernel)
        self.stride = tuple(int(s) for s in (stride if stride is not None else kernel))

    def forward(self, x: Tensor) -> Tensor:
        sizes = x.shape[-3:]
        kernel = tuple(k if n >= k else 1 for k, n in zip(self.kernel, sizes))
        stride = tuple(s if n >= k else 1 for k, s, n in zip(self.kernel, self.stride, sizes))
        return F.max_pool3d(x, kernel, stride)

    def extra_repr(self) -> str:
        return f"kernel={self.kernel}, stride={self.stride}"


def _conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(in_channels, out_channels, 3, padding=1, bias=True),
        nn.BatchNorm3d(out_channels),
        nn.ReLU(inplace=True),
    )


class C3D(nn.Module):
    """C3D-BN trunk. ``widths`` are the five block widths at width 1, scaled by ``width``."""

    def __init__(self, *, widths: Sequence[int] = REFERENCE_WIDTHS, width: float = 1.0, in_channels: int = 3) -> None:
        super().__init__()
        if len(widths) != 5:
            raise ValueError(f"C3D needs 5 block widths, got {tuple(widths)}")
        if not width > 0:
            raise ValueError(f"width must be > 0, got {width!r}")
        c1, c2, c3, c4, c5 = (scale_channels(c, width) for c in widths)
        self.conv1 = _conv_bn_relu(in_channels, c1)
        self.pool1 = SafeMaxPool3d((1, 2, 2))
        self.conv2 = _conv_bn_relu(c1, c2)
        self.pool2 = SafeMaxPool3d((2, 2, 2))
        self.conv3a = _conv_bn_relu(c2, c3)
        self.conv3b = _conv_bn_relu(c3, c3)
        self.pool3 = SafeMaxPool3d((2, 2, 2))
        self.conv4a = _conv_bn_relu(c3, c4)
        self.conv4b = _conv_bn_relu(c4, c4)
        self.pool4 = SafeMaxPool3d((2, 2, 2))
        self.conv5a = _conv_bn_relu(c4, c5)
        self.conv5b = _conv_bn_relu(c5, c5)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.feature_dim: int = c5
        init_weights(self)

    def forward_features(self, x: Tensor) -> Tensor:
        """``B×3×T×H×W`` → the conv5b map ``B×C×t×h×w``."""
        x = self.pool1(self.conv1(x))
        x = self.pool2(self.conv2(x))
        x = self.pool3(self.conv3b(self.conv3a(x)))
        x = self.pool4(self.conv4b(self.conv4a(x)))
        return self.conv5b(self.conv5a(x))

    def forward(self, x: Tensor) -> Tensor:
        """``B×3×T×H×W`` → pooled ``B×feature_dim``."""
        return torch.flatten(self.pool(self.forward_features(x)), 1)


@register_backbone(name="c3d")
def c3d(width: float = 1.0) -> C3D:
    """PCL/VCOP C3D with BatchNorm, no classifier (27,661,440 params)."""
    return C3D(width=width)
