"""3D ResNets of the PCL/VCOP code: R3D (1,1,1,1), R(2+1)D (1,1,1,1), torchvision's R3D-18 and R(2+1)D-18.

One family class, :class:`VideoResNet`; each variant is a recipe that passes in its conv builder,
stem and stage depths (docs/method.md §1). Input ``B×3×T×H×W``; ``forward_features`` returns the last
conv map (``512×2×7×7`` for ``16×112×112`` at width 1), ``forward`` the pooled ``B×feature_dim``.

Reference parameter counts (backbone only, width 1): r3d 14,361,792; r21d 14,365,303;
r3d18 33,166,272; r21d18 31,300,125 (torchvision's 33,371,472 and 31,505,325 less their 400-way fc).

Strided convs use kernel 3 / padding 1 (and 1×1×1 shortcuts), so a dimension of size 1 stays 1:
any clip size works, e.g. 8×32×32 at width 1/8.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial

import torch
from torch import Tensor, nn

from ml.models.registry import register_backbone

Triple = tuple[int, int, int]
ConvMaker = Callable[..., nn.Module]
Stem = Callable[[int, int], nn.Module]

REFERENCE_WIDTHS: tuple[int, ...] = (64, 128, 256, 512)


# --------------------------------------------------------------------------- helpers


def scale_channels(channels: int, width: float) -> int:
    """A channel count under the width multiplier: ``max(1, round(channels * width))``."""
    return max(1, int(round(channels * width)))


def _triple(v: int | Sequence[int]) -> Triple:
    if isinstance(v, int):
        return (v, v, v)
    t = tuple(int(x) for x in v)
    if len(t) != 3:
        raise ValueError(f"expected 3 values (T, H, W), got {v!r}")
    return (t[0], t[1], t[2])


def init_weights(module: nn.Module) -> None:
    """Kaiming-normal (fan_out, ReLU) convs with zero bias; BatchNorm weight 1, bias 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv3d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm3d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


# --------------------------------------------------------------------------- conv builders


class Conv3DSimple(nn.Conv3d):
    """A full 3D conv without bias (R3D). Padding defaults to ``kernel // 2``."""

    def __init__(self, in_channels: int, out_channels: int, *, kernel: int | Sequence[int] = 3,
                 stride: int | Sequence[int] = 1, padding: int | Sequence[int] | None = None) -> None:
        k = _triple(kernel)
        p = tuple(x // 2 for x in k) if padding is None else _triple(padding)
        super().__init__(in_channels, out_channels, k, stride=_triple(stride), padding=p, bias=False)

    @classmethod
    def shortcut(cls, in_channels: int, out_channels: int, stride: int | Sequence[int]) -> nn.Module:
        """The projection shortcut's conv: 1×1×1, strided."""
        return cls(in_channels, out_channels, kernel=1, stride=stride, padding=0)


def mid_channels(in_channels: int, out_channels: int, kernel: Triple) -> int:
    """(2+1)D middle width ``⌊t·d²·Nin·Nout / (d²·Nin + t·Nout)⌋`` (params ≈ the full 3D conv's)."""
    t, kh, kw = kernel
    return max(1, math.floor(t * kh * kw * in_channels * out_channels / (kh * kw * in_channels + t * out_channels)))


class Conv2Plus1D(nn.Sequential):
    """(2+1)D conv of the VCOP R(2+1)D: spatial ``(1,d,d)`` → BN → ReLU → temporal ``(t,1,1)``.

    No biases. The spatial conv carries the H/W stride and padding, the temporal conv the T ones.
    The middle width comes from :func:`mid_channels` unless ``mid`` is given.
    """

    def __init__(self, in_channels: int, out_channels: int, *, kernel: int | Sequence[int] = 3,
                 stride: int | Sequence[int] = 1, padding: int | Sequence[int] | None = None, mid: int | None = None
                 ) -> None:
        k = _triple(kernel)
        s = _triple(stride)
        p = tuple(x // 2 for x in k) if padding is None else _triple(padding)
        m = mid if mid is not None else mid_channels(in_channels, out_channels, k)
        super().__init__(
            nn.Conv3d(in_channels, m, (1, k[1], k[2]), stride=(1, s[1], s[2]), padding=(0, p[1], p[2]), bias=False),
            nn.BatchNorm3d(m),
            nn.ReLU(inplace=True),
            nn.Conv3d(m, out_channels, (k[0], 1, 1), stride=(s[0], 1, 1), padding=(p[0], 0, 0), bias=False),
        )
        self.mid_channels = m

    @classmethod
    def shortcut(cls, in_channels: int, out_channels: int, stride: int | Sequence[int]) -> nn.Module:
        """VCOP's shortcut is itself a (2+1)D conv with a 1×1×1 kernel (needed for the exact count)."""
        return cls(in_channels, out_channels, kernel=1, stride=stride, padding=0)


# --------------------------------------------------------------------------- blocks and stem


class BasicStem(nn.Sequential):
    """conv ``k(3,7,7) s(1,2,2) p(1,3,3)`` → BN → ReLU, with the conv from ``conv_maker``."""

    def __init__(self, in_channels: int, out_channels: int, *, conv_maker: ConvMaker = Conv3DSimple) -> None:
        super().__init__(
            conv_maker(in_channels, out_channels, kernel=(3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3)),
            nn.BatchNorm3d(out_channels),
            nn.ReLU(inplace=True),
        )


class BasicBlock(nn.Module):
    """Two k3 convs (conv → BN → ReLU → conv → BN) plus identity or projection shortcut, then ReLU.

    ``shared_mid`` (torchvision's R(2+1)D): both (2+1)D convs take the middle width of ``(in, out)``, and the
    projection shortcut is a plain 1×1×1 conv whatever ``conv_maker`` is.
    """

    def __init__(self, in_channels: int, out_channels: int, *, conv_maker: ConvMaker, stride: int = 1,
                 shared_mid: bool = False) -> None:
        super().__init__()
        mid = {"mid": mid_channels(in_channels, out_channels, (3, 3, 3))} if shared_mid else {}
        self.conv1 = nn.Sequential(
            conv_maker(in_channels, out_channels, kernel=3, stride=stride, **mid),
            nn.BatchNorm3d(out_channels),
            nn.ReLU(inplace=True),
        )
        self.conv2 = nn.Sequential(conv_maker(out_channels, out_channels, kernel=3, **mid), nn.BatchNorm3d(out_channels))
        self.shortcut: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            make_shortcut = Conv3DSimple.shortcut if shared_mid else getattr(conv_maker, "shortcut", Conv3DSimple.shortcut)
            self.shortcut = nn.Sequential(
                make_shortcut(in_channels, out_channels, stride), nn.BatchNorm3d(out_channels)
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.shortcut is None else self.shortcut(x)
        return self.relu(self.conv2(self.conv1(x)) + identity)


class R2Plus1DStem(nn.Sequential):
    """torchvision's R(2+1)D stem: conv ``(1,7,7) s(1,2,2)`` to 45 → BN → ReLU → conv ``(3,1,1)`` → BN → ReLU."""

    def __init__(self, in_channels: int, out_channels: int, *, mid: int = 45) -> None:
        super().__init__(
            nn.Conv3d(in_channels, mid, (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False),
            nn.BatchNorm3d(mid),
            nn.ReLU(inplace=True),
            nn.Conv3d(mid, out_channels, (3, 1, 1), padding=(1, 0, 0), bias=False),
            nn.BatchNorm3d(out_channels),
            nn.ReLU(inplace=True),
        )


# --------------------------------------------------------------------------- the family


class VideoResNet(nn.Module):
    """A 3D ResNet trunk: stem, four stages of :class:`BasicBlock`, global average pool.

    Stage 1 keeps the resolution; stages 2-4 halve T, H and W (stride 2 in the first block).

    Args:
        conv_maker: builds every k3 conv (``Conv3DSimple`` or ``Conv2Plus1D``) and its shortcut.
        layers: blocks per stage, e.g. ``(1, 1, 1, 1)`` for PCL's R3D, ``(2, 2, 2, 2)`` for R3D-18.
        stem: ``(in_channels, out_channels) -> module``.
        widths: stem/stage channels at width 1.
        width: channel multiplier; each count ``c`` becomes ``max(1, round(c * width))``.
        shared_mid: torchvision's R(2+1)D blocks (see :class:`BasicBlock`).
    """

    def __init__(
        self,
        *,
        conv_maker: ConvMaker,
        layers: Sequence[int],
        stem: Stem = BasicStem,
        widths: Sequence[int] = REFERENCE_WIDTHS,
        width: float = 1.0,
        in_channels: int = 3,
        shared_mid: bool = False,
    ) -> None:
        super().__init__()
        if len(layers) != 4 or len(widths) != 4:
            raise ValueError(f"VideoResNet needs 4 stages, got layers={tuple(layers)} widths={tuple(widths)}")
        if not width > 0:
            raise ValueError(f"width must be > 0, got {width!r}")
        chans = [scale_channels(c, width) for c in widths]
        self.stem = stem(in_channels, chans[0])
        prev = chans[0]
        for i, (n_blocks, c) in enumerate(zip(layers, chans), start=1):
            blocks = []
            for j in range(n_blocks):
                stride = 2 if (i > 1 and j == 0) else 1
                blocks.append(BasicBlock(prev, c, conv_maker=conv_maker, stride=stride, shared_mid=shared_mid))
                prev = c
            self.add_module(f"layer{i}", nn.Sequential(*blocks))
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.feature_dim: int = prev
        init_weights(self)

    def forward_features(self, x: Tensor) -> Tensor:
        """``B×3×T×H×W`` → the last conv map ``B×C×t×h×w``."""
        x = self.stem(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        return self.layer4(x)

    def forward(self, x: Tensor) -> Tensor:
        """``B×3×T×H×W`` → pooled ``B×feature_dim``."""
        return torch.flatten(self.pool(self.forward_features(x)), 1)


# --------------------------------------------------------------------------- recipes


@register_backbone(name="r3d")
def r3d(width: float = 1.0) -> VideoResNet:
    """PCL/VCOP "R3D": ``R3DNet(layer_sizes=(1,1,1,1))``, ResNet-10-like (14,361,792 params)."""
    return VideoResNet(conv_maker=Conv3DSimple, layers=(1, 1, 1, 1), stem=BasicStem, width=width)


@register_backbone(name="r21d")
def r21d(width: float = 1.0) -> VideoResNet:
    """VCOP "R(2+1)D": ``R2Plus1DNet(layer_sizes=(1,1,1,1))`` (14,365,303 params).

    The stem is a (2+1)D ``k(3,7,7)`` conv whose middle width is computed (83), not fixed at 45.
    """
    return VideoResNet(
        conv_maker=Conv2Plus1D,
        layers=(1, 1, 1, 1),
        stem=partial(BasicStem, conv_maker=Conv2Plus1D),
        width=width,
    )


@register_backbone(name="r3d18")
def r3d18(width: float = 1.0) -> VideoResNet:
    """torchvision ``r3d_18`` trunk, PCL's ``--model r18`` (33,166,272 params)."""
    return VideoResNet(conv_maker=Conv3DSimple, layers=(2, 2, 2, 2), stem=BasicStem, width=width)


@register_backbone(name="r21d18")
def r21d18(width: float = 1.0) -> VideoResNet:
    """torchvision ``r2plus1d_18`` trunk, PCL's ``--model r21d`` (31,300,125 params)."""
    return VideoResNet(conv_maker=Conv2Plus1D, layers=(2, 2, 2, 2),
                       stem=lambda i, o: R2Plus1DStem(i, o, mid=scale_channels(45, width)), width=width, shared_mid=True)


@register_backbone(name="r3d_small")
def r3d_small(width: float = 1.0) -> VideoResNet:
    """A compact student: PCL's R3D (1,1,1,1) at half the channels, 32-64-128-256 (about 1/4 of the
    parameters and MACs); its feature is 256-d."""
    return VideoResNet(conv_maker=Conv3DSimple, layers=(1, 1, 1, 1), stem=BasicStem,
                       widths=tuple(c // 2 for c in REFERENCE_WIDTHS), width=width)
