"""ExperimentCreate -> the research grid (planned by ml.grid, as experiments/reproduce.py runs it) as jobs.

Every pretraining run is followed by a fine-tune. Students wait on their teacher and fine-tunes on their
pretraining run (``after_job_id``). Retrieval is evaluated every epoch so convergence curves exist.
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, status
from pydantic import ValidationError
from sqlalchemy.orm import Session

from api.schemas import ExperimentCreate, ExperimentPlan, JobRequest, parse_request
from api.schemas.job_request import legacy_names
from ml import recipes
from ml.grid import GridRun, plan_grid
from api.services.submission import check_clip_needs, create_job, job_config
from persistence import repo
from persistence.models import Experiment, Job
from persistence.settings import Settings

# ExperimentCreate field -> JobCreate field, per kind family
PRETRAIN_FIELDS = ("width", "modality", "clip", "frames", "crop", "epochs", "batch_size", "lr", "momentum",
                   "weight_decay", "scheduler", "max_steps_per_epoch", "contrast_weight", "nce_negatives",
                   "nce_temperature", "test_clips", "device", "data_workers", "max_attempts")
KD_FIELDS = ("alpha", "temperature", "distill_target")
FINETUNE_FIELDS = {"finetune_epochs": "epochs", "finetune_lr": "lr", "finetune_batch_size": "batch_size",
                   "finetune_mode": "mode", "val_videos": "val_videos", "test_clips": "test_clips",
                   "max_steps_per_epoch": "max_steps_per_epoch", "device": "device", "data_workers": "data_workers",
                   "max_attempts": "max_attempts"}


def plan(body: ExperimentCreate) -> list[GridRun]:
    """The grid's pretraining runs in submission order: teachers first, so the worker starts on them."""
    return plan_grid(body.grid, pair=(body.pair[0], body.pair[1]), seeds=body.seeds, backbones=body.backbones,
                     fractions=body.resolved_fractions())


def _pick(body: ExperimentCreate, names: Any) -> dict[str, Any]:
    pairs = names.items() if isinstance(names, dict) else ((n, n) for n in names)
    return {dst: getattr(body, src) for src, dst in pairs if getattr(body, src) is not None}


def _job_body(values: dict[str, Any], *, role: str) -> JobRequest:
    """A job request from grid values (the flat budget fields, the recipe and its role's settings); a bad budget
    value is reported under the ExperimentCreate field."""
    kind = values["kind"]
    recipe = values.get("recipe")
    if recipe is not None:
        roles = (recipes.load(recipe).get("grid") or {}).get("roles") or {}
        values = recipes.deep_merge(roles.get(role) or {}, values)
    try:
        return parse_request(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        dotted = ".".join(str(p) for p in err["loc"][1:])  # without the kind tag
        field = {key: name for name, key in legacy_names(kind).items()}.get(dotted, dotted.split(".")[0] or "body")
        if kind == "finetune":
            field = {v: k for k, v in FINETUNE_FIELDS.items()}.get(field, field)
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=[
            {"loc": ["body", field], "msg": f"{field}: {err['msg']}", "type": "value_error"}]) from exc
    except recipes.RecipeError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=[
            {"loc": ["body", "recipe"], "msg": str(exc), "type": "value_error"}]) from exc


def pretrain_request(body: ExperimentCreate, run: GridRun, *, name: str, teacher: Job | None) -> JobRequest:
    values: dict[str, Any] = {"kind": "distill" if run.role == "student" else "pretrain", "name": name,
                              "dataset_id": body.dataset_id, "backbone": run.backbone, "retrieval": True,
                              "retrieval_every": 1, "data_fraction": run.fraction if run.fraction < 1 else None,
                              "seed": run.training_seed, "recipe": body.recipe,
                              **_pick(body, PRETRAIN_FIELDS)}
    if run.role == "teacher" and body.teacher_epochs is not None:
        values["epochs"] = body.teacher_epochs
    if teacher is not None:
        values.update(teacher_job_id=teacher.id, after_job_id=teacher.id, **_pick(body, KD_FIELDS))
    return _job_body({k: v for k, v in values.items() if v is not None}, role=run.role)


def finetune_request(body: ExperimentCreate, source: Job, *, name: str, seed: int) -> JobRequest:
    values = {"kind": "finetune", "name": name, "dataset_id": body.dataset_id, "source_job_id": source.id,
              "after_job_id": source.id, "seed": seed, "recipe": body.recipe, **_pick(body, FINETUNE_FIELDS)}
    return _job_body({k: v for k, v in values.items() if v is not None}, role="finetune")


def _label(run: GridRun) -> str:
    pct = f" {run.fraction * 100:g}%" if run.fraction < 1 else ""
    if run.role == "student":
        return f"student {run.teacher_backbone}→{run.backbone}{pct} s{run.seed}"
    return f"{run.role} {run.backbone}{pct} s{run.seed}"


def check_pair(body: ExperimentCreate) -> None:
    """The full grid's fraction rows use the pair, so its backbones must be in the grid."""
    if body.grid == "full" and not set(body.pair) <= set(body.backbones):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=[
            {"loc": ["body", "pair"], "msg": f"pair {list(body.pair)} must be among backbones {body.backbones} "
                                             "for the full grid", "type": "value_error"}])


def check_grid_clip_needs(session: Session, body: ExperimentCreate, runs: list[GridRun]) -> None:
    """422 (naming frames/clip) when the dataset's videos are too short for the grid's PCL tuples: a pretraining
    run needs the most frames (a fine-tune takes one clip of the same size), so the first run decides."""
    dataset = repo.get_dataset(session, body.dataset_id)
    if dataset is None or not runs:
        return
    try:
        request = pretrain_request(body, runs[0], name="plan", teacher=None)
        config = job_config(dataset, request, parent_checkpoint=None)
    except HTTPException:
        return  # another field is invalid: POST /experiments names it; the plan still counts the jobs
    try:
        check_clip_needs(session, dataset, request, config)
    except HTTPException as exc:  # name the ExperimentCreate field that sets the clip
        field = "frames" if body.frames is not None else "clip"
        exc.detail = [{**d, "loc": ["body", field]} for d in exc.detail]  # type: ignore[union-attr]
        raise


def plan_counts(session: Session, body: ExperimentCreate) -> ExperimentPlan:
    """The jobs ``create_experiment`` would write, per role (every pretraining run has a fine-tune)."""
    check_pair(body)
    runs = plan(body)
    check_grid_clip_needs(session, body, runs)
    roles = {role: sum(r.role == role for r in runs) for role in ("teacher", "student", "baseline")}
    return ExperimentPlan(jobs=2 * len(runs), roles={**roles, "finetune": len(runs)})


def create_experiment(session: Session, body: ExperimentCreate, *, settings: Settings) -> tuple[Experiment, list[Job]]:
    """Write the experiment and all its jobs (queued or waiting); the caller commits, then enqueues the queued."""
    if repo.get_dataset(session, body.dataset_id) is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=[
            {"loc": ["body", "dataset_id"], "msg": f"dataset {body.dataset_id} does not exist; GET /datasets lists "
                                                   "them", "type": "value_error"}])
    check_pair(body)
    check_grid_clip_needs(session, body, plan(body))  # one clear 422 before any row is written
    name = body.name or f"{body.grid} grid"
    exp = repo.create_experiment(session, name=name, dataset_id=body.dataset_id, grid=body.grid,
                                 request=body.model_dump(mode="json", exclude_none=True))
    by_key: dict[str, Job] = {}
    jobs: list[Job] = []
    for run in plan(body):
        teacher = by_key[run.teacher_key] if run.teacher_key else None
        job = create_job(session, pretrain_request(body, run, name=f"{name[:140]}: {_label(run)}", teacher=teacher),
                         settings=settings)
        by_key[run.key] = job
        repo.add_experiment_job(session, experiment_id=exp.id, job_id=job.id, role=run.role, backbone=run.backbone,
                                teacher_backbone=run.teacher_backbone, fraction=run.fraction, seed=run.seed)
        tuned = create_job(session, finetune_request(body, job, name=f"{name[:140]}: finetune {_label(run)}",
                                                     seed=run.seed), settings=settings)
        repo.add_experiment_job(session, experiment_id=exp.id, job_id=tuned.id, role="finetune",
                                backbone=run.backbone, teacher_backbone=run.teacher_backbone, fraction=run.fraction,
                                seed=run.seed)
        jobs += [job, tuned]
    return exp, jobs
