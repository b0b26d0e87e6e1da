"""Experiment rows -> public schemas: per pretraining run its final retrieval top-1, its fine-tuned top-1 and the
epochs it took to reach its teacher's final retrieval top-1 (the numbers of experiments/reproduce.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from api.schemas import ExperimentPublic, ExperimentRun, ExperimentSummary, JobStatusName
from ml.grid import epochs_to_reach, paired_gain
from persistence import repo
from persistence.models import Experiment, ExperimentJob, Job


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
