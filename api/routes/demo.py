"""POST /demo: a synthetic set and a chained teacher -> student -> fine-tune run, sized for a CPU."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from api.deps import EnqueuerDep, SessionDep, SettingsDep, SubmitAccess
from api.present import dataset_public, job_public
from api.responses import errors
from api.routes.datasets import create_synthetic
from api.routes.jobs import enqueue_or_fail
from api.schemas import DemoPublic, JobCreate, SyntheticDatasetCreate
from api.jobspec import build_config
from api.submit import create_job, field_error
from ml.data.clip_needs import config_frames_needed
from persistence.models import Dataset, Job
from persistence.settings import Settings

router = APIRouter(tags=["demo"])


class DemoCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    classes: int = Field(4, ge=2, le=10)
    videos_per_class: int = Field(8, ge=4, le=40)
    frames: int = Field(48, ge=32, le=200)
    epochs: int = Field(2, ge=1, le=20)
    width: float = Field(0.125, gt=0, le=1)
    max_steps_per_epoch: int | None = Field(None, ge=1)


def demo_requests(body: DemoCreate, dataset_id: int) -> list[JobCreate]:
    common = dict(dataset_id=dataset_id, width=body.width, clip="tiny", epochs=body.epochs, batch_size=8,
                  data_workers=0, max_steps_per_epoch=body.max_steps_per_epoch, test_clips=2)
    pcl = dict(nce_negatives=32, retrieval=True)
    # teacher_job_id / source_job_id are placeholders: create_demo sets each to the job created before it
    return [
        JobCreate(kind="pretrain", name="demo teacher", backbone="r3d", **pcl, **common),
        JobCreate(kind="distill", name="demo student", backbone="r3d", teacher_job_id=1, alpha=1.0,
                  temperature=4.0, distill_target="pretext", **pcl, **common),
        JobCreate(kind="finetune", name="demo classifier", source_job_id=1, val_videos=4, lr=1e-3,
                  **common),
    ]


def check_demo_frames(body: DemoCreate) -> None:
    """422 naming ``frames`` when the demo's videos would be too short for its own jobs (every job would fail)."""
    need = 0
    for request in demo_requests(body, dataset_id=1):  # a placeholder id: only the configs are built
        parent = None if request.kind == "pretrain" else Path("parent.pt")  # only its name; nothing is read
        config = build_config(request, data_root=Path("."), split=1, subset=1.0, parent_checkpoint=parent)
        need = max(need, config_frames_needed(config) or 0)
    if body.frames < need:
        raise field_error("frames", f"the demo's teacher and student train on PCL tuples of {need} frames; "
                                    f"frames={body.frames} videos are too short, use frames >= {need}")


def create_demo(session: Session, settings: Settings, body: DemoCreate) -> tuple[Dataset, Job, list[Job]]:
    """The synthesize job (rendering the set on a worker), then teacher -> student -> fine-tune, each waiting on
    the one before; nothing is rendered in the API process."""
    check_demo_frames(body)
    dataset, synthesize = create_synthetic(session, settings, SyntheticDatasetCreate(
        name="demo", classes=body.classes, videos_per_class=body.videos_per_class, frames=body.frames))
    jobs: list[Job] = []
    for request in demo_requests(body, dataset.id):
        after = jobs[-1] if jobs else synthesize
        if request.kind == "distill":
            request = request.model_copy(update={"teacher_job_id": after.id})
        elif request.kind == "finetune":
            request = request.model_copy(update={"source_job_id": after.id})
        jobs.append(create_job(session, request, settings=settings, after=after))
    return dataset, synthesize, jobs


@router.post("/demo", status_code=status.HTTP_201_CREATED, response_model=DemoPublic, operation_id="demo-create",
             responses=errors(422, 503, 507))
def demo(session: SessionDep, settings: SettingsDep, enqueuer: EnqueuerDep, _: SubmitAccess,
         body: DemoCreate | None = None) -> DemoPublic:
    """Queue a worker job that renders a small synthetic set, then teacher pretraining, the distilled student
    and the fine-tune: each starts when the one before completes."""
    dataset, synthesize, jobs = create_demo(session, settings, body or DemoCreate())
    session.commit()
    enqueue_or_fail(session, enqueuer, synthesize.id)
    return DemoPublic(dataset=dataset_public(session, dataset), synthesize=job_public(session, synthesize),
                      jobs=[job_public(session, j) for j in jobs])
