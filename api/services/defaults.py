"""GET /jobs/defaults: what every unset setting of a job becomes, resolved by the code path a submission takes
(``jobspec.resolved_defaults``: the kind's defaults, then the recipe), so ``ml.config`` and ``configs/`` stay the
one copy of the numbers."""

from __future__ import annotations

from typing import Any

from api.schemas import JobDefaults
from api.schemas.job_request import canonical_kind, legacy_names
from api.services.jobspec import INHERITED, inherits, resolved_defaults
from ml import kinds as kind_registry
from ml import recipes
from ml.kd_terms import legacy_target
from persistence.settings import Settings


def _get(data: Any, dotted: str) -> Any:
    for key in dotted.split("."):
        data = data.get(key) if isinstance(data, dict) else None
    return data


def clip_presets() -> dict[str, dict[str, int]]:
    """The deprecated ``clip`` presets' frames and crop: the config default and recipe ``tiny``'s clip."""
    out: dict[str, dict[str, int]] = {}
    for name, recipe in (("default", None), ("tiny", "tiny")):
        clip = resolved_defaults("pretrain", recipe)["clip"]
        out[name] = {"frames": clip["frames"], "crop": clip["crop"]}
    return out


def job_defaults(kind: str, *, settings: Settings, recipe: str | None = None) -> JobDefaults:
    """The nested defaults of a ``kind`` job (under ``recipe``), plus the deprecated flat view (``values``).
    Source-taking kinds take ``inherited`` from the source job when it is given; the values shown are the
    from-scratch ones."""
    kind = canonical_kind(kind)
    spec = kind_registry.get(kind)
    config = resolved_defaults(kind, recipe)
    values: dict[str, Any] = {name: _get(config, dotted) for name, dotted in legacy_names(kind).items()}
    if "distill_target" in values:  # the old name of the terms the default spells
        values["distill_target"] = legacy_target(_get(config, "distill.terms") or {})
    clip = config.get("clip")
    values.update(clip="default" if clip else None, frames=(clip or {}).get("frames"), crop=(clip or {}).get("crop"),
                  max_attempts=settings.max_attempts)
    return JobDefaults(kind=kind, recipe=recipe, config=config, values=values,
                       inherited=list(INHERITED) if inherits(kind) else [], clips=clip_presets(),
                       recipes=[r.name for r in recipes.list_recipes() if kind in r.kinds], legacy=legacy_names(kind),
                       parent_field=spec.parent_request if spec.needs else None)
