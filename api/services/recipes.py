"""The recipes (ml.recipes, configs/) as GET /recipes shows them: resolved by the same code a submission takes."""

from __future__ import annotations

import functools

from api.schemas import RecipePublic
from api.schemas.job_request import REQUESTS
from api.services.jobspec import resolved_defaults
from ml import recipes


@functools.cache
def recipe_list() -> list[RecipePublic]:
    """Read once per process (the files ship with the code)."""
    return [RecipePublic(name=r.name, description=r.description, kinds=list(r.kinds), grid=r.grid,
                         defaults={kind: resolved_defaults(kind, r.name) for kind in r.kinds if kind in REQUESTS})
            for r in recipes.list_recipes()]
