"""Fine-tuned classifiers usable by POST /predict."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import READ, SessionDep
from api.present import model_public
from api.schemas import ModelPublic
from api.services.models import usable_models

router = APIRouter(tags=["models"])


@router.get("/models", response_model=list[ModelPublic], operation_id="models-list", dependencies=[READ])
def list_models(session: SessionDep) -> list[ModelPublic]:
    """Best first (video top-1 on the test split)."""
    return [model_public(j) for j in usable_models(session)]
