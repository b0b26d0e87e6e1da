"""Fine-tuned classifiers usable by POST /predict: completed fine-tunes whose checkpoint exists."""

from __future__ import annotations

from pathlib import Path

from fastapi import HTTPException, status
from sqlalchemy.orm import Session

from api.present import model_test
from persistence import repo
from persistence.models import Job
from persistence.status import JobStatus


def _score(job: Job) -> float:
    test = model_test(job)
    for key in ("video_top1", "clip_top1"):
        if isinstance(test.get(key), (int, float)):
            return float(test[key])
    return -1.0


def usable_models(session: Session) -> list[Job]:
    """Completed fine-tunes whose checkpoint exists, best test accuracy first."""
    rows = repo.completed_jobs_of_kind(session, "finetune")
    usable = [j for j in rows if j.checkpoint_path and Path(j.checkpoint_path).is_file()]
    return sorted(usable, key=lambda j: (_score(j), j.id), reverse=True)


def resolve_model(session: Session, model_id: int | None) -> Job:
    if model_id is None:
        models = usable_models(session)
        if not models:
            raise HTTPException(status.HTTP_404_NOT_FOUND,
                                detail="no fine-tuned model yet: run a finetune job (or POST /demo) first")
        return models[0]
    job = repo.get_job(session, model_id)
    if job is None or job.kind != "finetune" or job.status != JobStatus.COMPLETED \
            or not (job.checkpoint_path and Path(job.checkpoint_path).is_file()):
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            detail=f"model {model_id} is not a completed fine-tuned classifier; GET /models lists them")
    return job


def imported_models(session: Session) -> list[Job]:
    """Imported checkpoints (POST /models/import: teachers and fine-tuning sources), newest first."""
    from ml.import_spec import IMPORT

    rows = repo.completed_jobs_of_kind(session, IMPORT)
    return sorted((j for j in rows if j.checkpoint_path and Path(j.checkpoint_path).is_file()), key=lambda j: -j.id)


def exportable_model(session: Session, model_id: int) -> Job:
    """A completed job whose checkpoint holds a network (the registry's backbone producers), else 404."""
    from api.services.model_files import EXPORTABLE_KINDS

    job = repo.get_job(session, model_id)
    if job is None or job.kind not in EXPORTABLE_KINDS or job.status != JobStatus.COMPLETED \
            or not (job.checkpoint_path and Path(job.checkpoint_path).is_file()):
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            detail=f"job {model_id} is not a completed model with a checkpoint; GET /models lists them")
    return job


def teacher_accuracy(session: Session, job: Job) -> float | None:
    """For a fine-tuned KD student: the best video top-1 among the fine-tunes of its teacher (its lineage)."""
    student = repo.get_job(session, job.parent_id) if job.kind == "finetune" and job.parent_id else None
    if student is None or student.kind != "distill" or student.parent_id is None:
        return None
    scores = [_score(r) for r in repo.completed_jobs_of_kind(session, "finetune") if r.parent_id == student.parent_id]
    scores = [s for s in scores if s >= 0]
    return max(scores) if scores else None
