"""Fine-tuned classifiers usable by POST /predict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.deps import READ, SessionDep
from api.schemas import ModelPublic
from persistence.models import Job
from persistence.status import JobStatus

router = APIRouter(tags=["models"])


def _test(job: Job) -> dict[str, Any]:
    results = job.results or {}
    test = results.get("test")
    return test if isinstance(test, dict) else {}


def model_public(job: Job) -> ModelPublic:
    test = _test(job)
    labels = (job.results or {}).get("labels") or []
    model = job.config.get("model") or {}
    return ModelPublic(id=job.id, name=job.name, backbone=model.get("backbone"), width=model.get("width"),
                       dataset_id=job.dataset_id, source_job_id=job.parent_id, labels=len(labels),
                       test={k: v for k, v in test.items() if k != "protocol"}, protocol=test.get("protocol"),
                       finished_at=job.finished_at)


def _score(job: Job) -> float:
    test = _test(job)
    for key in ("video_top1", "clip_top1"):
        if isinstance(test.get(key), (int, float)):
            return float(test[key])
    return -1.0


def usable_models(session: Session) -> list[Job]:
    """Completed fine-tunes whose checkpoint exists, best test accuracy first."""
    rows = session.scalars(select(Job).where(Job.kind == "finetune", Job.status == JobStatus.COMPLETED)).all()
    usable = [j for j in rows if j.checkpoint_path and Path(j.checkpoint_path).is_file()]
    return sorted(usable, key=lambda j: (_score(j), j.id), reverse=True)


def resolve_model(session: Session, model_id: int | None) -> Job:
    if model_id is None:
        models = usable_models(session)
        if not models:
            raise HTTPException(status.HTTP_404_NOT_FOUND,
                                detail="no fine-tuned model yet: run a finetune job (or POST /demo) first")
        return models[0]
    job = session.get(Job, model_id)
    if job is None or job.kind != "finetune" or job.status != JobStatus.COMPLETED \
            or not (job.checkpoint_path and Path(job.checkpoint_path).is_file()):
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            detail=f"model {model_id} is not a completed fine-tuned classifier; GET /models lists them")
    return job


@router.get("/models", response_model=list[ModelPublic], operation_id="models-list", dependencies=[READ])
def list_models(session: SessionDep) -> list[ModelPublic]:
    """Best first (video top-1 on the test split)."""
    return [model_public(j) for j in usable_models(session)]
