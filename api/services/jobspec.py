"""JobCreate -> ml config (``ml.config.*``): the one place flat request fields map onto the nested config."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from api.schemas import JobCreate
from ml.config import (ClipSpec, FinetuneConfig, PretrainConfig, RetrieveConfig, config_fields, config_hash,
                       overridable_fields, path_fields)

# flat request field -> path in the ml config, per kind family
_COMMON = {
    "backbone": ("model", "backbone"), "width": ("model", "width"), "modality": ("model", "modality"),
    "seed": ("runtime", "seed"), "device": ("runtime", "device"),
    "max_steps_per_epoch": ("runtime", "max_steps_per_epoch"), "data_workers": ("data", "workers"),
    "retrieval": ("eval", "retrieval"), "test_clips": ("eval", "test_clips"),
}
_OPTIM = {
    "epochs": ("optim", "epochs"), "batch_size": ("optim", "batch_size"), "lr": ("optim", "lr"),
    "momentum": ("optim", "momentum"), "weight_decay": ("optim", "weight_decay"),
    "scheduler": ("optim", "scheduler"),
}
FIELD_PATHS: dict[str, dict[str, tuple[str, ...]]] = {
    "pretrain": {**_COMMON, **_OPTIM, "retrieval_every": ("runtime", "retrieval_every"),
                 "contrast_weight": ("contrast", "weight"),
                 "nce_negatives": ("contrast", "negatives"), "nce_temperature": ("contrast", "temperature")},
    "finetune": {**_COMMON, **_OPTIM, "mode": ("mode",), "dropout": ("dropout",), "val_videos": ("val_videos",)},
    "evaluate": dict(_COMMON),
}
FIELD_PATHS["distill"] = {**FIELD_PATHS["pretrain"], "alpha": ("distill", "alpha"),
                          "temperature": ("distill", "temperature"), "distill_target": ("distill", "target")}

CONFIG_CLASS: dict[str, Any] = {"pretrain": PretrainConfig, "distill": PretrainConfig, "finetune": FinetuneConfig,
                                "evaluate": RetrieveConfig}
PARENT_FIELD = {"distill": ("distill", "teacher_checkpoint"), "finetune": ("source_checkpoint",),
                "evaluate": ("checkpoint",)}


class JobSpecError(ValueError):
    """A request that cannot become a valid ml config; ``loc`` names the request field."""

    def __init__(self, loc: tuple[str | int, ...], msg: str) -> None:
        super().__init__(msg)
        self.loc = loc
        self.msg = msg


def _parent_request_field(kind: str) -> str:
    return "teacher_job_id" if kind == "distill" else "source_job_id"


def check_override(kind: str, dotted: str) -> None:
    """Refuse an override key that is path-typed (a request never names a server path) or unknown.

    The allowed set is walked from the kind's config model (ml.config.overridable_fields), so a path
    field added to the config later is refused without touching this code."""
    model = CONFIG_CLASS[kind]
    loc: tuple[str | int, ...] = ("body", "overrides", dotted)
    if dotted in path_fields(model):
        source = ("dataset_id (the registered dataset's folder)" if dotted.startswith("data.") else
                  f"{_parent_request_field(kind)} (that job's checkpoint)" if PARENT_FIELD.get(kind) == tuple(dotted.split("."))
                  else "dataset and job ids")
        raise JobSpecError(loc, f"{dotted!r} is a server path and cannot be overridden: it comes only from "
                                f"{source}; remove this key")
    if dotted in overridable_fields(model):
        return
    fields = config_fields(model)
    if any(key.startswith(dotted + ".") for key in fields):
        raise JobSpecError(loc, f"{dotted!r} is a section of the {kind} config; override its fields one at a time "
                                f"(e.g. {next(k for k in sorted(fields) if k.startswith(dotted + '.'))!r})")
    if dotted == "kind":
        raise JobSpecError(loc, "'kind' is set by the request's kind field; remove this key")
    near = difflib.get_close_matches(dotted, sorted(overridable_fields(model)), n=3)
    raise JobSpecError(loc, f"{dotted!r} is not a {kind} config key"
                            + (f"; did you mean {', '.join(repr(n) for n in near)}?" if near else
                               "; keys are dotted ml-config paths such as 'pretext.interval'"))


def _set(node: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise JobSpecError(("body", "overrides"), f"{'.'.join(path)}: {key!r} is not a section")
        node = child
    node[path[-1]] = value


def clip_dict(body: JobCreate) -> dict[str, Any] | None:
    if body.clip is None and body.frames is None and body.crop is None:
        return None
    tiny = body.clip == "tiny"
    frames = body.frames or (8 if tiny else 16)
    crop = body.crop or (32 if tiny else 112)
    spec = ClipSpec.tiny(frames=frames, crop=crop).model_dump(mode="json")
    if body.kind == "finetune":
        spec["normalize"] = False  # the ml default for fine-tuning
    return spec


def build_config(body: JobCreate, *, data_root: Path, split: int, subset: float,
                 parent_checkpoint: Path | None) -> Any:
    """The validated ml config for ``body``; raises JobSpecError naming the request field."""
    cfg: dict[str, Any] = {"data": {"root": str(data_root), "split": split, "subset": subset}}
    if body.kind in ("pretrain", "distill"):
        cfg["kind"] = body.kind
        cfg["distill"] = {"alpha": 0.0} if body.kind == "pretrain" else {"alpha": 1.0}
    for name, path in FIELD_PATHS[body.kind].items():
        value = getattr(body, name)
        if value is not None:
            _set(cfg, path, value)
    clip = clip_dict(body)
    if clip is not None:
        cfg["clip"] = clip
    if parent_checkpoint is not None:
        _set(cfg, PARENT_FIELD[body.kind], str(parent_checkpoint))
    for dotted, value in body.overrides.items():
        check_override(body.kind, dotted)
        _set(cfg, tuple(dotted.split(".")), value)
    try:
        return CONFIG_CLASS[body.kind].model_validate(cfg)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise JobSpecError(_request_loc(body, tuple(str(p) for p in err["loc"])),
                           f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}") from exc


def _request_loc(body: JobCreate, ml_loc: tuple[str, ...]) -> tuple[str | int, ...]:
    for name, path in FIELD_PATHS[body.kind].items():
        if ml_loc[: len(path)] == path:
            return ("body", name)
    if ml_loc and ml_loc[0] == "clip":
        return ("body", "crop" if body.crop is not None else "clip")
    dotted = ".".join(ml_loc)
    if any(dotted.startswith(k) or k.startswith(dotted) for k in body.overrides):
        return ("body", "overrides", dotted)
    if body.kind == "distill" and ml_loc[:1] == ("distill",):
        return ("body", "teacher_job_id")
    return ("body",) + ml_loc


def hash_config(config: Any) -> str:
    return config_hash(config)
