"""Clip transforms as dict -> dict steps (mmaction2 / PyTorchVideo style); the maths is in ``functional``.

A sample dict enters with ``"frames"`` (uint8 T×H×W×3 from the decoder, already at
ClipSpec.resize_h × resize_w) and, when training, ``"generator"`` (a seeded ``torch.Generator``).
It leaves with ``"clip"``: float32 C×T×H×W, in [0, 1] or normalised.

Augmentation parameters (crop offset, flip, colour jitter factors and order, grayscale, blur
sigma) are drawn **once per clip** and applied to every frame (docs/method.md §2.1 pitfall).
``AugmentConfig.per_frame_params=True`` reproduces the reference bug: one draw per frame.
Order as the reference: crop -> colour jitter (p) -> grayscale (p) -> blur (p) -> flip -> normalise
(flip commutes with the colour ops, so it is applied together with the crop on uint8).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from ml.config import AugmentConfig, ClipSpec
from ml.data import functional as Fn
from ml.data.clip_sampling import randint, uniform

Sample = dict[str, Any]


@dataclass(frozen=True)
class AugParams:
    """Everything random about one clip's (or, per_frame_params, one frame's) augmentation."""

    top: int
    left: int
    size: int
    flip: bool = False
    brightness: float | None = None
    """jitter factors; all None when colour jitter is not applied"""
    contrast: float | None = None
    saturation: float | None = None
    hue: float | None = None
    jitter_order: tuple[int, ...] = (0, 1, 2, 3)
    """order of brightness(0), contrast(1), saturation(2), hue(3), as torchvision's ColorJitter"""
    grayscale: bool = False
    blur_sigma: float | None = None

    @property
    def jitter(self) -> bool:
        return self.brightness is not None


def _factor(g: torch.Generator, strength: float) -> float:
    return uniform(g, max(0.0, 1.0 - strength), 1.0 + strength)


def _coin(g: torch.Generator, p: float) -> bool:
    return p > 0 and float(torch.rand((), generator=g).item()) < p


def draw_aug_params(
    g: torch.Generator | None, *, augment: AugmentConfig | None, height: int, width: int, crop: int
) -> AugParams:
    """One draw of crop/flip/colour parameters; ``g=None`` or ``augment=None`` gives the centre crop, no aug."""
    if g is None or augment is None:
        top, left = Fn.center_crop_offsets(height, width, crop)
        return AugParams(top, left, crop)
    if augment.random_crop:
        top, left = randint(g, 0, height - crop), randint(g, 0, width - crop)
    else:
        top, left = Fn.center_crop_offsets(height, width, crop)
    params: dict[str, Any] = {}
    b, c, s, h = augment.color_jitter
    if _coin(g, augment.color_jitter_p) and (b or c or s or h):
        params.update(
            brightness=_factor(g, b),
            contrast=_factor(g, c),
            saturation=_factor(g, s),
            hue=uniform(g, -h, h),
            jitter_order=tuple(int(i) for i in torch.randperm(4, generator=g)),
        )
    params["grayscale"] = _coin(g, augment.grayscale_p)
    if _coin(g, augment.blur_p):
        params["blur_sigma"] = uniform(g, *augment.blur_sigma)
    params["flip"] = _coin(g, augment.hflip_p)
    return AugParams(top, left, crop, **params)


def color_augment(x: torch.Tensor, p: AugParams) -> torch.Tensor:
    """Jitter -> grayscale -> blur on float ...×3×H×W in [0, 1]."""
    if p.jitter:
        for op in p.jitter_order:
            if op == 0 and p.brightness != 1.0:
                x = Fn.adjust_brightness(x, p.brightness)  # type: ignore[arg-type]
            elif op == 1 and p.contrast != 1.0:
                x = Fn.adjust_contrast(x, p.contrast)  # type: ignore[arg-type]
            elif op == 2 and p.saturation != 1.0:
                x = Fn.adjust_saturation(x, p.saturation)  # type: ignore[arg-type]
            elif op == 3 and p.hue:
                x = Fn.adjust_hue(x, p.hue)
    if p.grayscale:
        x = Fn.rgb_to_grayscale(x, 3)
    if p.blur_sigma:
        x = Fn.gaussian_blur(x, p.blur_sigma)
    return x


class Compose:
    def __init__(self, steps: Sequence[Callable[[Sample], Sample]]) -> None:
        self.steps = list(steps)

    def __call__(self, sample: Sample) -> Sample:
        for step in self.steps:
            sample = step(sample)
        return sample

    def __repr__(self) -> str:
        return "Compose(" + ", ".join(type(s).__name__ for s in self.steps) + ")"


class DrawAugParams:
    """Requires "frames" (T×H×W×3) and, for training, "generator". Adds "aug_params": [AugParams] (1, or T per frame)."""

    def __init__(self, clip: ClipSpec, augment: AugmentConfig | None, *, train: bool) -> None:
        self.crop = clip.crop
        self.augment = augment if train else None

    def __call__(self, sample: Sample) -> Sample:
        frames = sample["frames"]
        t, h, w = int(frames.shape[0]), int(frames.shape[1]), int(frames.shape[2])
        if min(h, w) < self.crop:
            raise ValueError(f"frames of {h}x{w} are smaller than the {self.crop} crop")
        g = sample.get("generator") if self.augment is not None else None
        if g is None and self.augment is not None:
            raise ValueError("training transforms need sample['generator'] (a seeded torch.Generator)")
        draws = t if self.augment is not None and self.augment.per_frame_params else 1
        sample["aug_params"] = [
            draw_aug_params(g, augment=self.augment, height=h, width=w, crop=self.crop) for _ in range(draws)
        ]
        return sample


class CropFlip:
    """Requires "frames" (uint8 T×H×W×3), "aug_params". Replaces "frames" with uint8 T×3×crop×crop."""

    def __call__(self, sample: Sample) -> Sample:
        x = Fn.to_tensor_frames(sample["frames"])
        params: list[AugParams] = sample["aug_params"]
        if len(params) == 1:
            p = params[0]
            out = Fn.crop(x, p.top, p.left, p.size, p.size)
            sample["frames"] = Fn.hflip(out) if p.flip else out
        else:
            crops = []
            for frame, p in zip(x, params, strict=True):
                c = Fn.crop(frame, p.top, p.left, p.size, p.size)
                crops.append(Fn.hflip(c) if p.flip else c)
            sample["frames"] = torch.stack(crops)
        return sample


class ToFloat:
    """Requires uint8 "frames"; replaces them with float32 in [0, 1] (the ToTensor step)."""

    def __call__(self, sample: Sample) -> Sample:
        sample["frames"] = Fn.to_float(sample["frames"])
        return sample


class ColorAugment:
    """Requires float "frames" (T×3×H×W) and "aug_params"; applies jitter, grayscale and blur."""

    def __call__(self, sample: Sample) -> Sample:
        x: torch.Tensor = sample["frames"]
        params: list[AugParams] = sample["aug_params"]
        if len(params) == 1:
            sample["frames"] = color_augment(x, params[0])
        else:
            sample["frames"] = torch.stack([color_augment(f, p) for f, p in zip(x, params, strict=True)])
        return sample


class Normalize:
    """Requires float "frames" (T×3×H×W); (x - mean) / std per channel."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean, self.std = tuple(mean), tuple(std)

    def __call__(self, sample: Sample) -> Sample:
        sample["frames"] = Fn.normalize(sample["frames"], self.mean, self.std, channel_dim=-3)
        return sample


class FormatCTHW:
    """Requires "frames" T×C×H×W; adds ``key`` as C×T×H×W and drops "frames"."""

    def __init__(self, key: str = "clip") -> None:
        self.key = key

    def __call__(self, sample: Sample) -> Sample:
        sample[self.key] = Fn.to_cthw(sample.pop("frames"))
        return sample


def build_clip_transform(clip: ClipSpec, augment: AugmentConfig | None, *, train: bool) -> Compose:
    """frames (uint8 T×H×W×3) [+ generator] -> clip (float C×T×H×W).

    train=False (or augment=None): centre crop, no augmentation.
    """
    steps: list[Callable[[Sample], Sample]] = [DrawAugParams(clip, augment, train=train), CropFlip(), ToFloat()]
    if train and augment is not None and (augment.color_jitter_p > 0 or augment.grayscale_p > 0 or augment.blur_p > 0):
        steps.append(ColorAugment())
    if clip.normalize:
        steps.append(Normalize(clip.mean, clip.std))
    steps.append(FormatCTHW("clip"))
    return Compose(steps)
