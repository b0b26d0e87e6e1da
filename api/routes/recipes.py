"""Recipes: the run configurations under configs/ that POST /jobs, POST /experiments and the demo start from."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import READ
from api.schemas import RecipePublic
from api.services.recipes import recipe_list

router = APIRouter(tags=["recipes"])


@router.get("/recipes", response_model=list[RecipePublic], operation_id="recipes-list", dependencies=[READ])
def list_recipes() -> list[RecipePublic]:
    """Every recipe file with its description, the kinds it resolves for and the resolved defaults per kind."""
    return recipe_list()
