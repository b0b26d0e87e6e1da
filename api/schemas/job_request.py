"""POST /jobs bodies, derived from the ml config classes: the request is the config.

For every submittable kind of the registry (``ml.kinds``: the kinds with a CLI sub-command; ``synthesize`` comes
from POST /datasets/synthetic) one request model is built by walking the kind's config class: each section
(``model``, ``clip``, ``optim``, ``contrast``, ``distill``, ...) and each top-level setting (finetune's ``mode``,
``dropout``, ``val_videos``) keeps its name, type, range and description, with the kind's default as the
documented default. Path-typed fields (``ml.config.path_fields``: the data root, checkpoints) and the fields the
service owns (``kind``, ``data.split``) are not part of the schema: the dataset and the parent job fill them.
What a client sets overrides the named recipe (``recipe``), which overrides the kind's defaults; what it leaves
unset is not stored (``model_dump(exclude_unset=True)`` is the job's request).

The service's own fields: ``dataset_id``, the parent job (``teacher_job_id`` or ``source_job_id``, as the registry
names it), ``after_job_id``, ``name``, ``tags``, ``max_attempts``, ``recipe``.

Deprecated for one release: the flat fields of the old JobCreate (``epochs``, ``lr``, ``backbone``, ``clip:
"tiny"``, ``overrides``...) and the kind name ``evaluate`` (now ``retrieve``). A flat name maps onto the config by
the same walk: a leaf whose name is unique in the kind's config (``epochs`` -> ``optim.epochs``), or one of the
old spellings in ``RENAMED``.
"""

from __future__ import annotations

import difflib
import functools
import types
import typing
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Union

from annotated_types import Le, Lt, MaxLen
from pydantic import AllowInfNan, BaseModel, BeforeValidator, ConfigDict, Field, RootModel, TypeAdapter, create_model, model_validator

from api.schemas.common import Id
from ml import kinds as kind_registry
from ml import recipes
from ml.config import ClipSpec, config_fields, path_fields
from ml.kd_terms import LEGACY_TARGETS

SERVICE_OWNED = frozenset({"kind", "data.split"})  # set from the job's kind and its dataset
ALIASES = {"evaluate": "retrieve"}  # deprecated kind name -> the registry's
RENAMED = {  # old flat field -> dotted config key, where the old name is not the leaf's unique name
    "data_workers": "data.workers", "data_fraction": "data.subset", "contrast_weight": "contrast.weight",
    "nce_negatives": "contrast.negatives", "nce_temperature": "contrast.temperature",
    "temperature": "distill.temperature", "momentum": "optim.momentum", "distill_target": "distill.target",
}
LEGACY_CLIP = ("clip", "frames", "crop")  # old clip preset fields: "default"/"tiny" plus frames and crop
SUBMITTABLE: tuple[str, ...] = kind_registry.kind_names(cli=True)
RecipeName = Literal[tuple(recipes.recipe_names())] if recipes.recipe_names() else str  # type: ignore[valid-type]


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    found = [m for arg in typing.get_args(annotation) if (m := _nested_model(arg)) is not None]
    return found[0] if found else None


MAX_INT = 2**31 - 1  # an int setting the config leaves unbounded above is bounded here (every input bounded)


def _bare(annotation: Any) -> set[Any]:
    args = typing.get_args(annotation)
    return {a for a in args if a is not type(None)} if typing.get_origin(annotation) in (Union, types.UnionType) \
        else {annotation}


def _constrained(info: Any) -> Any:
    """A leaf field's type with its constraints (ge, le, pattern...), plus a bound where the config has none:
    ints at most 2**31-1, strings at most 100 characters, maps at most 32 entries."""
    extra: list[Any] = []
    bare = _bare(info.annotation)
    bounded = any(isinstance(m, (Le, Lt, MaxLen)) or getattr(m, "pattern", None) for m in info.metadata)
    if not bounded:
        if bare == {int}:
            extra.append(Le(MAX_INT))
        elif bare == {str}:
            extra.append(MaxLen(100))
        elif all(typing.get_origin(b) is dict for b in bare):
            extra.append(MaxLen(32))
    if bare <= {float} and bare:
        extra.append(AllowInfNan(False))
    metadata = [*info.metadata, *extra]
    return Annotated[(info.annotation, *metadata)] if metadata else info.annotation


def _fields(title: str, model: type[BaseModel], default: Any, overlay: Mapping[str, Any], skip: frozenset[str],
            prefix: str) -> dict[str, Any]:
    """The request fields for config model ``model`` (a config class or one of its sections): its fields minus
    ``skip`` (dotted), each section a request model of its own (``{title}{Section}``), defaults from ``default``
    (the section's default in the kind's config) overlaid with the registry's kind defaults (``overlay``)."""
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        dotted = prefix + name
        if dotted in skip:
            continue
        value = getattr(default, name) if isinstance(default, BaseModel) else info.get_default(call_default_factory=True)
        if name in overlay and not isinstance(overlay[name], Mapping):
            value = overlay[name]
        sub = _nested_model(info.annotation)
        if sub is None:
            fields[name] = (_constrained(info), Field(value, description=info.description))
            continue
        section_title = f"{title}{name.title().replace('_', '')}"
        section = create_model(section_title, __config__=ConfigDict(extra="forbid"), __doc__=sub.__doc__,
                               **_fields(section_title, sub, value, overlay.get(name) or {}, skip, dotted + "."))
        if value is None:  # e.g. retrieve's clip/model: None = the checkpoint's
            fields[name] = (section | None, Field(None, description=info.description))
        else:  # a required section (data) is filled by the service: optional in the request too
            fields[name] = (section, Field(default_factory=section, description=info.description))
    return fields


class JobRequest(BaseModel):
    """The service's own fields of every job request; the per-kind models add the config sections."""

    model_config = ConfigDict(extra="forbid")
    dataset_id: Id = Field(description="GET /datasets lists them; fills data.root, data.split and data.subset")
    name: str | None = Field(None, max_length=200)
    tags: list[Annotated[str, Field(min_length=1, max_length=50)]] = Field(default_factory=list, max_length=20)
    recipe: RecipeName | None = Field(None, description="a recipe file under configs/ (GET /recipes); the "  # type: ignore[valid-type]
                                      "request's sections override it")
    after_job_id: Id | None = Field(None, description="wait until this job completes, then queue; failed or "
                                    "cancelled with a reason if it fails or is cancelled")
    max_attempts: int | None = Field(None, ge=1, le=20, description="default: MAX_ATTEMPTS")

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, data: Any) -> Any:
        return upgrade_legacy(data) if isinstance(data, dict) else data

    def sections(self) -> dict[str, Any]:
        """What the client set of the config (nested, JSON values), without the service's fields."""
        own = set(JobRequest.model_fields) | {"kind", self.parent_field()}
        return self.model_dump(mode="json", exclude_unset=True, exclude=own)

    def parent_field(self) -> str:
        return kind_registry.get(self.kind).parent_request  # type: ignore[attr-defined, no-any-return]

    def parent_id(self) -> int | None:
        return getattr(self, self.parent_field(), None)

    def stored(self) -> dict[str, Any]:
        """The request as the job row keeps it (what was set, with the registry's kind name)."""
        return self.model_dump(mode="json", exclude_unset=True) | {"kind": self.kind}  # type: ignore[attr-defined]


def _request_model(spec: kind_registry.JobKind) -> type[JobRequest]:
    config = spec.config_class()
    title = spec.name.title()
    fields = _fields(title, config, None, spec.defaults, path_fields(config) | SERVICE_OWNED, "")
    kind_names = (spec.name, *(old for old, new in ALIASES.items() if new == spec.name))
    fields["kind"] = (Literal[kind_names], Field(description=spec.title + (  # type: ignore[valid-type]
        f" (deprecated alias: {', '.join(kind_names[1:])})" if len(kind_names) > 1 else "")))
    if spec.needs is not None:
        parents = " or ".join(spec.parent_kinds())
        required = "required" if spec.parent_required else "optional"
        fields[spec.parent_request] = (Id | None, Field(None, description=f"a completed {parents} job ({required}); "
                                                        f"its checkpoint fills {spec.parent_field}"))
    model = create_model(f"{title}JobCreate", __base__=JobRequest, __doc__=f"A {spec.name} job: {spec.title}.",
                         **fields)
    return model  # type: ignore[no-any-return]


def _set(node: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ValueError(f"{dotted!r}: {part!r} is set to a value, not a section")
        node = child
    node[leaf] = value


@functools.cache
def legacy_names(kind: str) -> dict[str, str]:
    """Old flat field -> dotted config key for ``kind``: each leaf whose name is unique in the kind's config,
    plus ``RENAMED`` (only the keys the kind's config has)."""
    keys = [k for k, is_path in config_fields(kind_registry.config_class(kind)).items()
            if not is_path and k not in SERVICE_OWNED]
    leaves: dict[str, list[str]] = {}
    for key in keys:
        leaves.setdefault(key.rsplit(".", 1)[-1], []).append(key)
    out = {leaf: found[0] for leaf, found in leaves.items() if len(found) == 1 and "." in found[0]}
    out.update({old: key for old, key in RENAMED.items() if key in keys or key == "distill.target" and
                "distill.terms" in keys})
    return out


def _legacy_clip(data: dict[str, Any]) -> dict[str, Any] | None:
    preset, frames, crop = (data.pop(k, None) for k in LEGACY_CLIP)
    if preset is None and frames is None and crop is None:
        return None
    if preset not in (None, "default", "tiny"):
        raise ValueError(f"clip {preset!r}: the deprecated clip presets are 'default' and 'tiny'; give the clip "
                         "section instead, e.g. {'clip': {'frames': 8, 'crop': 32}}, or recipe 'tiny'")
    tiny = preset == "tiny"
    spec = ClipSpec.tiny(frames=frames or (8 if tiny else 16), crop=crop or (32 if tiny else 112))
    return spec.model_dump(include={"frames", "crop", "resize_h", "resize_w"})


def upgrade_legacy(data: dict[str, Any]) -> dict[str, Any]:
    """An old flat JobCreate body (or stored request) -> the nested request; a nested one is returned as is."""
    kind = ALIASES.get(data.get("kind"), data.get("kind"))  # type: ignore[arg-type]
    if kind not in SUBMITTABLE:
        return data
    names = legacy_names(kind)
    ignored = [k for k in data if k not in names and legacy_names("pretrain").get(k, "").startswith("optim.")
               and "optim" not in kind_registry.config_class(kind).model_fields]  # as the old API: accepted, unused
    data = {k: v for k, v in data.items() if k not in ignored}
    flat = [k for k in data if k in names or k in LEGACY_CLIP and not isinstance(data[k], dict) or k == "overrides"]
    if not flat and not ignored and kind == data.get("kind"):
        return data
    out = {k: v for k, v in data.items() if k not in flat}
    out["kind"] = kind
    nested: dict[str, Any] = {}
    if any(k in LEGACY_CLIP for k in flat):
        clip = _legacy_clip({k: data[k] for k in LEGACY_CLIP if k in flat})
        if clip is not None:
            nested["clip"] = clip
    for name in flat:
        if name in LEGACY_CLIP or name == "overrides" or data[name] is None:
            continue
        if name == "distill_target":
            if data[name] not in LEGACY_TARGETS:
                raise ValueError(f"distill_target must be one of {', '.join(LEGACY_TARGETS)} (deprecated: give "
                                 "distill.terms)")
            _set(nested, "distill.terms", dict(LEGACY_TARGETS[data[name]]))
        else:
            _set(nested, names[name], data[name])
    for dotted, value in (data.get("overrides") or {}).items() if isinstance(data.get("overrides"), dict) else ():
        if dotted == "kind":
            raise ValueError("overrides: 'kind' is set by the request's kind field; remove this key")
        _set(nested, str(dotted), value)  # a path-typed or unknown key is refused by the nested schema
    return recipes.deep_merge(out, nested)  # a flat field wins over a section given beside it


REQUESTS: dict[str, type[JobRequest]] = {name: _request_model(kind_registry.get(name)) for name in SUBMITTABLE}
JobCreateUnion = Annotated[Union[tuple(REQUESTS.values())], Field(discriminator="kind")]  # type: ignore[valid-type]
JOB_REQUEST: TypeAdapter[Any] = TypeAdapter(JobCreateUnion)


class JobCreate(RootModel[JobCreateUnion]):  # type: ignore[valid-type]
    """POST /jobs: one request model per kind (``kind`` chooses), each holding the ml config sections of that kind
    (nested as in the CLI's YAML, walked from ml/config.py) and the service's fields; ``root`` is the request."""
JobKindName = Literal[tuple(kind_registry.KINDS)]  # type: ignore[valid-type]
"""Every kind a job row can have (GET /jobs?kind=; ``synthesize`` jobs come from POST /datasets/synthetic)."""
SubmittableKind = Annotated[Literal[SUBMITTABLE], BeforeValidator(lambda k: ALIASES.get(k, k))]  # type: ignore[valid-type]
"""A kind POST /jobs takes (the deprecated alias accepted on input, not listed)."""


def _path_source(kind: str, dotted: str) -> str:
    spec = kind_registry.get(kind)
    if dotted.startswith("data."):
        return "dataset_id (the registered dataset's folder)"
    if dotted == spec.parent_field:
        return f"{spec.parent_request} (that job's checkpoint)"
    return "dataset and job ids"


def client_error(error: dict[str, Any]) -> dict[str, Any]:
    """A body validation error as the client should read it: the union's tag dropped from ``loc`` (["body",
    "optim", "lr"], the field as written) and, for a key the schema does not have, why: a server path (which id
    fills it) or a near miss."""
    loc = list(error.get("loc", ()))
    if len(loc) < 2 or loc[0] != "body" or (loc[1] not in REQUESTS and loc[1] not in ALIASES):
        return error
    kind = canonical_kind(str(loc.pop(1)))
    out = {**error, "loc": loc}
    dotted = ".".join(str(p) for p in loc[1:])
    if error.get("type") != "extra_forbidden" or not dotted:
        return out
    config = kind_registry.config_class(kind)
    if dotted in path_fields(config):
        out["msg"] = (f"{dotted!r} is a server path and cannot be set: it comes only from "
                      f"{_path_source(kind, dotted)}; remove this key")
        out.pop("input", None)
    else:
        known = sorted(k for k, is_path in config_fields(config).items() if not is_path and k not in SERVICE_OWNED)
        near = difflib.get_close_matches(dotted, known, n=3)
        out["msg"] = (f"{dotted!r} is not a {kind} setting" + (f"; did you mean {', '.join(map(repr, near))}?"
                      if near else "; GET /jobs/defaults?kind=" + kind + " lists them"))
    return out


def parse_request(data: Mapping[str, Any]) -> JobRequest:
    """A stored or sent request (nested or the deprecated flat form) as its kind's request model."""
    return JOB_REQUEST.validate_python(dict(data))  # type: ignore[no-any-return]


def canonical_kind(kind: str) -> str:
    return ALIASES.get(kind, kind)
