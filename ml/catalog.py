"""What every backbone is, without torch: its name, the module that builds it, and its measured facts.

The one list of backbones. ``ml.config`` derives the accepted ``model.backbone`` names from it (the
API's schemas import ml.config, so this module must stay torch-free), ``ml.models.registry`` imports
the builder modules named here, ``experiments/reproduce.py`` estimates costs from ``gmacs``, and
``tests/ml/test_models.py`` checks every figure against the built network (parameters by count,
GMACs with ``torch.utils.flop_counter`` on the meta device).

Adding a backbone: a module with a ``@register_backbone(name=...)`` builder, and one entry here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal


@dataclass(frozen=True)
class BackboneFacts:
    name: str
    title: str
    module: str  # imported by the registry; its builder registers ``name``
    params: int  # backbone parameters at width 1 (no head)
    gmacs: float  # multiply-accumulates per clip at width 1 and the default clip, in 1e9
    feature_dim: int = 512
    clip_frames: int = 16  # the default (reference) clip, at which the figures are measured
    clip_crop: int = 112
    clip_resize: tuple[int, int] = (128, 171)  # decoded height x width before the crop

    def default_clip(self) -> dict[str, int]:
        """The backbone's default clip as ``ml.config.ClipSpec`` fields (configs/pcl/<name>.yaml states the same)."""
        return {"frames": self.clip_frames, "resize_h": self.clip_resize[0], "resize_w": self.clip_resize[1],
                "crop": self.clip_crop}


CATALOG: dict[str, BackboneFacts] = {
    f.name: f
    for f in (
        BackboneFacts("r3d", "R3D, one basic block per stage (PCL/VCOP)", "ml.models.video_resnet", 14_361_792, 19.9),
        BackboneFacts("c3d", "C3D with BatchNorm, no fc6/fc7 (PCL/VCOP)", "ml.models.c3d", 27_661_440, 38.5),
        BackboneFacts("r21d", "R(2+1)D, one block per stage (VCOP)", "ml.models.video_resnet", 14_365_303, 21.4),
        BackboneFacts("r3d18", "R3D-18, torchvision layout", "ml.models.video_resnet", 33_166_272, 40.7),
        BackboneFacts("r21d18", "R(2+1)D-18, torchvision layout", "ml.models.video_resnet", 31_300_125, 40.5),
        BackboneFacts("r3d_small", "R3D at half width (32-64-128-256): a compact student", "ml.models.video_resnet",
                      3_598_944, 5.3, feature_dim=256),
    )
}

BACKBONES: tuple[str, ...] = tuple(CATALOG)

if TYPE_CHECKING:
    BackboneName = str
else:
    BackboneName = Literal[BACKBONES]  # Literal["r3d", "c3d", ...], derived from the catalogue


def facts(name: str) -> BackboneFacts:
    try:
        return CATALOG[name]
    except KeyError:
        raise ValueError(f"unknown backbone {name!r}; valid backbones: {', '.join(sorted(CATALOG))}") from None
