"""Database rows -> public schemas (queue position, ETA, lineage)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.schemas import DatasetPublic, JobPublic, JobRef, Lineage
from persistence import repo
from persistence.base import utcnow
from persistence.models import Dataset, Job
from persistence.status import JobStatus


def job_ref(job: Job | None) -> JobRef | None:
    if job is None:
        return None
    return JobRef(id=job.id, kind=job.kind, name=job.name, status=job.status.value)


def eta_seconds(job: Job) -> float | None:
    """Remaining seconds for a running job, from its progress rate in the current attempt."""
    if job.status != JobStatus.RUNNING or job.started_at is None or job.progress <= 0.005:
        return None
    elapsed = (utcnow() - job.started_at).total_seconds()
    return max(0.0, elapsed / job.progress * (1 - job.progress))


def lineage(session: Session, job: Job) -> Lineage:
    parent = repo.get_job(session, job.parent_id) if job.parent_id else None
    after = repo.get_job(session, job.after_id) if job.after_id else None
    children = session.scalars(select(Job).where((Job.parent_id == job.id) | (Job.after_id == job.id))
                               .order_by(Job.id)).all()
    return Lineage(teacher=job_ref(parent) if job.kind == "distill" else None,
                   source=job_ref(parent) if job.kind != "distill" else None,
                   after=job_ref(after), children=[r for c in children if (r := job_ref(c)) is not None])


def job_public(session: Session, job: Job, *, with_lineage: bool = True) -> JobPublic:
    ckpt = job.checkpoint_path
    return JobPublic(
        id=job.id, kind=job.kind, name=job.name, status=job.status.value, progress=round(job.progress, 4),
        queue_position=repo.queue_position(session, job), eta_s=eta_seconds(job), dataset_id=job.dataset_id,
        parent_id=job.parent_id, after_id=job.after_id, retry_of=job.retry_of,
        lineage=lineage(session, job) if with_lineage else None, request=job.request, config=job.config,
        config_hash=job.config_hash, code_version=job.code_version, error=job.error, attempts=job.attempts,
        max_attempts=job.max_attempts, cancel_requested=job.cancel_requested, worker=job.worker, device=job.device,
        epoch=job.epoch, total_epochs=job.total_epochs, step=job.step, steps_per_epoch=job.steps_per_epoch,
        checkpoint_available=bool(ckpt and Path(ckpt).is_file()), results=job.results, created_at=job.created_at,
        queued_at=job.queued_at, started_at=job.started_at, heartbeat_at=job.heartbeat_at,
        finished_at=job.finished_at,
    )


def dataset_public(session: Session, row: Dataset) -> DatasetPublic:
    """A dataset with its status: pending while the job that generates it has not completed."""
    public = DatasetPublic.model_validate(row)
    if row.job_id is not None:
        job = repo.get_job(session, row.job_id)
        if job is None or job.status in (JobStatus.FAILED, JobStatus.CANCELLED):
            public.status = "failed"
        elif job.status != JobStatus.COMPLETED:
            public.status = "pending"
    return public
