"""Database rows -> public schemas, the one place that does it: jobs (queue position, ETA, lineage), datasets,
experiments (per pretraining run its final retrieval top-1, its fine-tuned top-1 and the epochs it took to reach
its teacher's final retrieval top-1: the numbers of experiments/reproduce.py) and models."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from api.schemas import (DatasetPublic, ExperimentPublic, ExperimentRun, ExperimentSummary, JobPublic, JobRef,
                         JobStatusName, Lineage, ModelPublic)
from ml.grid import epochs_to_reach, paired_gain
from ml.import_spec import IMPORT
from persistence import repo
from persistence.base import utcnow
from persistence.models import Dataset, Experiment, ExperimentJob, Job
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
    children = repo.job_children(session, job.id)
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



def aggregate_status(counts: Mapping[str, int]) -> JobStatusName:
    """running while any job runs or finished jobs await others; queued before any started; else the outcome."""
    active = sum(counts.get(s, 0) for s in ("running", "queued", "waiting"))
    if active:
        started = sum(counts.get(s, 0) for s in ("running", "completed", "failed", "cancelled"))
        return "running" if started else "queued"
    if counts.get("failed"):
        return "failed"
    if counts.get("cancelled"):
        return "cancelled"
    return "completed"


def summary(exp: Experiment, counts: dict[str, int]) -> ExperimentSummary:
    return ExperimentSummary(id=exp.id, name=exp.name, dataset_id=exp.dataset_id, grid=exp.grid,
                             status=aggregate_status(counts), jobs=sum(counts.values()), counts=counts,
                             created_at=exp.created_at)


def retrieval_curve(job: Job) -> list[float | None]:
    history = (job.results or {}).get("history") or []
    return [h.get("retrieval_top1") if isinstance(h, dict) else None for h in history]


def final_retrieval(job: Job) -> float | None:
    value = ((job.results or {}).get("retrieval") or {}).get("top1")
    return float(value) if isinstance(value, (int, float)) else None


def finetune_top1(job: Job | None) -> float | None:
    value = ((job.results or {}).get("test") or {}).get("video_top1") if job is not None else None
    return float(value) if isinstance(value, (int, float)) else None


def _reference(role: ExperimentJob, job: Job, teachers: dict[tuple[str, int], Job],
               request: dict[str, Any]) -> Job | None:
    """A student's own teacher; a baseline's teacher of the same backbone (else the pair's teacher), same seed."""
    if role.role == "student":
        return next((t for t in teachers.values() if t.id == job.parent_id), None)
    if role.role == "baseline":
        pair_teacher = (request.get("pair") or ["r3d"])[0]
        return teachers.get((role.backbone, role.seed)) or teachers.get((pair_teacher, role.seed))
    return None


def runs(session: Session, exp: Experiment) -> list[ExperimentRun]:
    rows = repo.experiment_jobs(session, exp.id)
    teachers = {(r.backbone, r.seed): j for r, j in rows if r.role == "teacher"}
    baselines = {(r.backbone, r.fraction, r.seed): j for r, j in rows if r.role == "baseline"}
    tuned = {j.parent_id: j for r, j in rows if r.role == "finetune"}
    out: list[ExperimentRun] = []
    for role, job in rows:
        if role.role == "finetune":
            continue
        ref = _reference(role, job, teachers, exp.request)
        ref_top1 = final_retrieval(ref) if ref is not None else None
        curve = retrieval_curve(job)
        ft = tuned.get(job.id)
        baseline = baselines.get((role.backbone, role.fraction, role.seed)) if role.role == "student" else None
        base_ft = tuned.get(baseline.id) if baseline is not None else None
        out.append(ExperimentRun(
            job_id=job.id, name=job.name, role=role.role, kind=job.kind,
            backbone=role.backbone, teacher_backbone=role.teacher_backbone,
            teacher_job_id=job.parent_id if role.role == "student" else None, fraction=role.fraction,
            seed=role.seed, status=job.status.value, error=job.error, retrieval_top1=final_retrieval(job),
            retrieval_curve=curve, reference_job_id=ref.id if ref is not None else None, reference_top1=ref_top1,
            epochs_to_reference=epochs_to_reach(curve, ref_top1) if ref_top1 is not None else None,
            finetune_job_id=ft.id if ft else None, finetune_status=ft.status.value if ft else None,
            finetune_top1=finetune_top1(ft), baseline_job_id=baseline.id if baseline is not None else None,
            kd_gain_retrieval=paired_gain(final_retrieval(job), final_retrieval(baseline) if baseline is not None else None),
            kd_gain_finetune=paired_gain(finetune_top1(ft), finetune_top1(base_ft))))
    return out


def experiment_public(session: Session, exp: Experiment) -> ExperimentPublic:
    counts = repo.experiment_status_counts(session, [exp.id])[exp.id]
    return ExperimentPublic(**summary(exp, counts).model_dump(), request=exp.request, runs=runs(session, exp))


def model_test(job: Job) -> dict[str, Any]:
    results = job.results or {}
    test = results.get("test")
    return test if isinstance(test, dict) else {}


def model_public(job: Job) -> ModelPublic:
    test = model_test(job)
    labels = (job.results or {}).get("labels") or []
    model = job.config.get("model") or {}
    origin = (job.results or {}).get("origin") if job.kind == IMPORT else None
    return ModelPublic(id=job.id, kind=job.kind, name=job.name, backbone=model.get("backbone"), width=model.get("width"),
                       dataset_id=job.dataset_id, source_job_id=job.parent_id, labels=len(labels),
                       test={k: v for k, v in test.items() if k != "protocol"}, protocol=test.get("protocol"),
                       finished_at=job.finished_at, origin=origin)
