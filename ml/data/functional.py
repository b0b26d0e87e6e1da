"""Pure tensor operations behind :mod:`ml.data.transforms` (no randomness, no state).

Image ops take float tensors in [0, 1] whose last three dims are C×H×W (so a clip laid out
T×C×H×W is treated as a batch of frames); results are clamped to [0, 1] like torchvision's.
Hue is shifted through RGB -> HSV -> RGB (the torchvision definition, hue factor in [-0.5, 0.5]).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

GRAY_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R 601-2 luma, as PIL and torchvision


def to_tensor_frames(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 T×H×W×C (decoder output) -> uint8 T×C×H×W view (no copy, no scaling)."""
    t = torch.from_numpy(frames) if isinstance(frames, np.ndarray) else frames
    if t.ndim != 4 or t.shape[-1] not in (1, 3):
        raise ValueError(f"expected frames shaped T×H×W×C, got {tuple(t.shape)}")
    return t.permute(0, 3, 1, 2)


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 in [0, 255] -> float32 in [0, 1] (contiguous)."""
    if x.dtype == torch.uint8:
        return x.float().div_(255.0)
    return x.float().contiguous()


def crop(x: torch.Tensor, top: int, left: int, height: int, width: int) -> torch.Tensor:
    """Crop the last two dims (H, W)."""
    if top < 0 or left < 0 or top + height > x.shape[-2] or left + width > x.shape[-1]:
        raise ValueError(f"crop ({top},{left},{height},{width}) outside {tuple(x.shape[-2:])}")
    return x[..., top : top + height, left : left + width]


def center_crop_offsets(height: int, width: int, size: int) -> tuple[int, int]:
    """(top, left) of a centred ``size`` square crop (torchvision rounding)."""
    return int(round((height - size) / 2.0)), int(round((width - size) / 2.0))


def hflip(x: torch.Tensor) -> torch.Tensor:
    return x.flip(-1)


def rgb_to_grayscale(x: torch.Tensor, channels: int = 3) -> torch.Tensor:
    """Luma of ...×3×H×W, repeated to ``channels`` channels."""
    r, g, b = x.unbind(-3)
    gray = (GRAY_WEIGHTS[0] * r + GRAY_WEIGHTS[1] * g + GRAY_WEIGHTS[2] * b).unsqueeze(-3)
    return gray.expand(*gray.shape[:-3], channels, *gray.shape[-2:]).contiguous() if channels != 1 else gray


def _blend(a: torch.Tensor, b: torch.Tensor | float, ratio: float) -> torch.Tensor:
    return (ratio * a + (1.0 - ratio) * b).clamp_(0.0, 1.0)


def adjust_brightness(x: torch.Tensor, factor: float) -> torch.Tensor:
    return (x * factor).clamp_(0.0, 1.0)


def adjust_contrast(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Blend with the mean luma of each image (each frame)."""
    mean = rgb_to_grayscale(x, 1).mean(dim=(-3, -2, -1), keepdim=True)
    return _blend(x, mean, factor)


def adjust_saturation(x: torch.Tensor, factor: float) -> torch.Tensor:
    return _blend(x, rgb_to_grayscale(x, 3), factor)


def rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    """...×3×H×W RGB in [0,1] -> HSV with every channel in [0,1] (colorsys convention)."""
    r, g, b = x.unbind(-3)
    # elementwise max/min: a reduction over a 3-long dim is needlessly slow with several intra-op threads
    maxc = torch.maximum(torch.maximum(r, g), b)
    minc = torch.minimum(torch.minimum(r, g), b)
    delta = maxc - minc
    s = delta / torch.where(maxc > 0, maxc, torch.ones_like(maxc))
    inv = 1.0 / torch.where(delta > 0, delta, torch.ones_like(delta)) / 6.0
    # colorsys: r is max -> (g-b)/d; elif g is max -> 2 + (b-r)/d; else 4 + (r-g)/d; all /6 mod 1
    h = torch.where(maxc == r, (g - b) * inv, torch.where(maxc == g, (b - r) * inv + 1.0 / 3.0, (r - g) * inv + 2.0 / 3.0))
    h = torch.where(delta > 0, h % 1.0, torch.zeros_like(h))
    return torch.stack((h, s, maxc), dim=-3)


def hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """HSV (all in [0,1]) -> RGB, with the sector-free form c = V - V·S·clamp(min(k, 4-k), 0, 1),
    k = (n + 6H) mod 6 and n = 5, 3, 1 for R, G, B (identical to colorsys.hsv_to_rgb)."""
    h, s, v = x.unbind(-3)
    n = torch.tensor([5.0, 3.0, 1.0], dtype=x.dtype, device=x.device).view(3, 1, 1)
    k = (n + (h * 6.0).unsqueeze(-3)) % 6.0
    ramp = torch.minimum(k, 4.0 - k).clamp_(0.0, 1.0)
    return v.unsqueeze(-3) - (v * s).unsqueeze(-3) * ramp


def adjust_hue(x: torch.Tensor, shift: float) -> torch.Tensor:
    """Rotate hue by ``shift`` turns (in [-0.5, 0.5]); 0 is the identity."""
    if not -0.5 <= shift <= 0.5:
        raise ValueError(f"hue shift must be in [-0.5, 0.5], got {shift}")
    if shift == 0:
        return x
    hsv = rgb_to_hsv(x)
    h, s, v = hsv.unbind(-3)
    return hsv_to_rgb(torch.stack(((h + shift) % 1.0, s, v), dim=-3)).clamp_(0.0, 1.0)


def gaussian_kernel1d(sigma: float, size: int) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float32) - (size - 1) / 2.0
    kernel = torch.exp(-0.5 * (coords / sigma) ** 2)
    return kernel / kernel.sum()


def _reflect_pad(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Reflect-pad the last two dims by ``pad`` (as F.pad mode="reflect", built from flips and cats)."""
    x = torch.cat((x[..., :, 1 : pad + 1].flip(-1), x, x[..., :, -pad - 1 : -1].flip(-1)), dim=-1)
    return torch.cat((x[..., 1 : pad + 1, :].flip(-2), x, x[..., -pad - 1 : -1, :].flip(-2)), dim=-2)


def gaussian_blur(x: torch.Tensor, sigma: float, kernel_size: int | None = None) -> torch.Tensor:
    """Separable Gaussian blur of ...×C×H×W with reflect padding.

    ``kernel_size`` defaults to 2·ceil(3σ)+1, capped so the padding fits the image.
    """
    if sigma <= 0:
        return x
    h, w = x.shape[-2:]
    size = kernel_size or 2 * math.ceil(3.0 * sigma) + 1
    size = max(1, min(size, 2 * (min(h, w) - 1) + 1))
    if size % 2 == 0:
        size -= 1
    if size <= 1:
        return x
    weights = gaussian_kernel1d(sigma, size).tolist()
    lead = x.shape[:-2]
    pad = size // 2
    padded = _reflect_pad(x.reshape(-1, h, w), pad)
    # weighted sums of shifted views: several times faster on CPU than a 1-channel conv2d
    rows = padded[..., :, 0:w] * weights[0]
    for i in range(1, size):
        rows = rows.add_(padded[..., :, i : i + w], alpha=weights[i])
    out = rows[..., 0:h, :] * weights[0]
    for i in range(1, size):
        out = out.add_(rows[..., i : i + h, :], alpha=weights[i])
    return out.reshape(*lead, h, w)


def normalize(x: torch.Tensor, mean: Sequence[float], std: Sequence[float], channel_dim: int = -3) -> torch.Tensor:
    shape = [1] * x.ndim
    shape[channel_dim] = -1
    m = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(shape)
    s = torch.as_tensor(std, dtype=x.dtype, device=x.device).view(shape)
    return (x - m) / s


def residual(x: torch.Tensor, time_dim: int) -> torch.Tensor:
    """PCL residual frames: ``roll(x, 1, time_dim) - x``, i.e. frame[t-1] - frame[t]; frame 0 gets frame[T-1] - frame[0].

    For a batch B×C×T×H×W use ``time_dim=2``; for one clip C×T×H×W, ``time_dim=1``.
    """
    return torch.roll(x, shifts=1, dims=time_dim) - x


def to_cthw(x: torch.Tensor) -> torch.Tensor:
    """T×C×H×W -> C×T×H×W (contiguous)."""
    return x.permute(1, 0, 2, 3).contiguous()
