"""A job request -> its ml config: the kind's defaults (ml.kinds) < the recipe (ml.recipes) < what the parent
job fixes (model and clip geometry of a source) < the request's sections < the server's paths (data root, parent
checkpoint) and the dataset's split and subset."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from api.schemas.job_request import JobRequest
from ml import kinds as kind_registry
from ml import recipes
from ml.config import config_hash, path_fields

PLACEHOLDER_ROOT = Path("/dataset")  # defaults and plans only validate the config; nothing is read there
INHERITED = ("model.backbone", "model.width", "model.modality", "clip.frames", "clip.crop", "clip.resize_h",
             "clip.resize_w")  # a source-taking kind's network and clip geometry come from the source's config
MUST_MATCH = ("model.backbone", "model.width")  # a request may repeat these, not change them


class JobSpecError(ValueError):
    """A request that cannot become a valid ml config; ``loc`` names the request field."""

    def __init__(self, loc: tuple[str | int, ...], msg: str) -> None:
        super().__init__(msg)
        self.loc = loc
        self.msg = msg


def _get(data: Mapping[str, Any] | None, dotted: str) -> Any:
    node: Any = data
    for key in dotted.split("."):
        node = node.get(key) if isinstance(node, Mapping) else None
    return node


def _set(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for key in parents:
        data = data.setdefault(key, {})
    data[leaf] = value


def inherits(kind: str) -> bool:
    """Kinds that take a source job (not a teacher) run the source's network: finetune, retrieve, ..."""
    spec = kind_registry.get(kind)
    return spec.needs is not None and spec.parent_request == "source_job_id"


def inherited_sections(body: JobRequest, parent_config: Mapping[str, Any] | None) -> dict[str, Any]:
    """The source's model and clip geometry for the keys ``body`` leaves unset; 422 when it changes the
    source's backbone or width."""
    if parent_config is None or not inherits(body.kind):  # type: ignore[attr-defined]
        return {}
    sent = body.sections()
    out: dict[str, Any] = {}
    for dotted in INHERITED:
        theirs, ours = _get(parent_config, dotted), _get(sent, dotted)
        if theirs is None:
            continue
        if ours is None:
            _set(out, dotted, theirs)
        elif dotted in MUST_MATCH and ours != theirs:
            raise JobSpecError(("body", *dotted.split(".")), f"source job has {dotted}={theirs!r}; leave it unset "
                                                             "or use the same value")
    return out


def _load_recipe(name: str | None) -> Mapping[str, Any]:
    if name is None:
        return {}
    try:
        return recipes.load(name)
    except recipes.RecipeError as exc:
        raise JobSpecError(("body", "recipe"), str(exc)) from exc


def config_dict(body: JobRequest, *, data_root: Path, split: int, subset: float, parent_checkpoint: Path | None,
                parent_config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The unvalidated config dict (``subset``: the dataset's fraction; the request's data.subset scales it)."""
    kind = body.kind  # type: ignore[attr-defined]
    spec = kind_registry.get(kind)
    overrides = recipes.deep_merge(inherited_sections(body, parent_config), body.sections())
    paths = {"data.root": data_root}
    if spec.parent_field and parent_checkpoint is not None:
        paths[spec.parent_field] = parent_checkpoint
    data = recipes.resolve_dict(_load_recipe(body.recipe), kind, overrides, paths=paths)
    section = data.setdefault("data", {})
    section["split"] = split
    section["subset"] = subset * float(section.get("subset", 1.0))
    return data


def build_config(body: JobRequest, *, data_root: Path, split: int, subset: float, parent_checkpoint: Path | None,
                 parent_config: Mapping[str, Any] | None = None) -> BaseModel:
    """The validated ml config for ``body``; raises JobSpecError naming the request field."""
    kind = body.kind  # type: ignore[attr-defined]
    data = config_dict(body, data_root=data_root, split=split, subset=subset, parent_checkpoint=parent_checkpoint,
                       parent_config=parent_config)
    config_class = kind_registry.config_class(kind)
    try:
        return config_class.model_validate(data)  # type: ignore[no-any-return]
    except ValidationError as exc:
        err = exc.errors()[0]
        ml_loc = tuple(str(p) for p in err["loc"])
        raise JobSpecError(request_loc(body, ml_loc), f"{'.'.join(ml_loc) or kind}: {err['msg']}") from exc


def request_loc(body: JobRequest, ml_loc: tuple[str, ...]) -> tuple[str | int, ...]:
    """The request field an ml-config error is about: the same dotted name, except a missing or wrong path
    (a checkpoint) is about the parent job field, and a model-level error is about the whole body."""
    spec = kind_registry.get(body.kind)  # type: ignore[attr-defined]
    dotted = ".".join(ml_loc)
    if dotted in path_fields(spec.config_class()) and dotted.startswith("data."):
        return ("body", "dataset_id")
    if spec.parent_field and (dotted == spec.parent_field or not ml_loc and spec.parent_required):
        return ("body", spec.parent_request)
    return ("body", *ml_loc)


def resolved_defaults(kind: str, recipe: str | None = None) -> dict[str, Any]:
    """What every setting of a ``kind`` job becomes when the request leaves it unset (under ``recipe``), as the
    request's nested sections (no path fields)."""
    spec = kind_registry.get(kind)
    data = recipes.resolve_dict(_load_recipe(recipe), kind, paths={
        "data.root": PLACEHOLDER_ROOT, **({spec.parent_field: PLACEHOLDER_ROOT} if spec.parent_field else {})})
    config = spec.config_class().model_validate(data)
    out = config.model_dump(mode="json")
    for dotted in (*path_fields(spec.config_class()), "kind", "data.split"):
        *parents, leaf = dotted.split(".")
        node: Any = out
        for key in parents:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(leaf, None)
    return out


def hash_config(config: Any) -> str:
    return config_hash(config)
