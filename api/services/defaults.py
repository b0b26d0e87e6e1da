"""Resolved defaults of every JobCreate field per kind, derived from the same code path a submission takes
(``api.jobspec.build_config`` on an empty request, so ``ml.config`` stays the one copy of the numbers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from api.services.jobspec import FIELD_PATHS, build_config, clip_dict
from api.schemas import JobCreate, JobDefaults, JobKind
from api.services.submission import INHERITED
from persistence.settings import Settings

_PLACEHOLDER_ROOT = Path("/dataset")  # never read: build_config only validates the config


def _walk(config: Any, path: tuple[str, ...]) -> Any:
    node = config
    for key in path:
        node = getattr(node, key) if node is not None else None  # evaluate: model/clip None = the checkpoint's
    return node


def _json(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    return value if value is None or isinstance(value, (bool, int, float, str)) else str(value)


def clip_presets() -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for name in ("default", "tiny"):
        spec = clip_dict(JobCreate(kind="pretrain", dataset_id=1, clip=name))
        assert spec is not None
        out[name] = {"frames": spec["frames"], "crop": spec["crop"]}
    return out


def job_defaults(kind: JobKind, *, settings: Settings) -> JobDefaults:
    """What an unset field of a ``kind`` job becomes (finetune/evaluate: ``inherited`` fields come from the source
    job when it is given; the values shown are the from-scratch ones)."""
    parent = Path("parent.pt") if kind in ("distill", "evaluate") else None
    config = build_config(JobCreate(kind=kind, dataset_id=1), data_root=_PLACEHOLDER_ROOT, split=1, subset=1.0,
                          parent_checkpoint=parent)
    values: dict[str, Any] = {name: _json(_walk(config, path)) for name, path in FIELD_PATHS[kind].items()}
    clip = getattr(config, "clip", None)
    if clip is not None:
        values.update(clip="default", frames=clip.frames, crop=clip.crop)
    else:  # evaluate: the checkpoint's clip
        values.update(clip=None, frames=None, crop=None)
    values["max_attempts"] = settings.max_attempts
    if kind != "evaluate":
        values["data_fraction"] = 1.0
    return JobDefaults(kind=kind, values=values, inherited=list(INHERITED) if kind in ("finetune", "evaluate") else [],
                       clips=clip_presets())
