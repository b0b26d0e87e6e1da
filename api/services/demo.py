"""The demo: a synthetic set and a chained teacher -> student -> fine-tune run, sized for a CPU."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from api.schemas import DemoCreate, JobRequest, SyntheticDatasetCreate, parse_request
from api.schemas.jobs import DEMO_SET, DEMO_RECIPE
from api.services.datasets import create_synthetic
from api.services.jobspec import PLACEHOLDER_ROOT, build_config
from api.services.submission import create_job, field_error
from ml.data.clip_needs import config_frames_needed
from persistence.models import Dataset, Job
from persistence.settings import Settings


def demo_requests(body: DemoCreate, dataset_id: int) -> list[JobRequest]:
    """Teacher, student and classifier on recipe ``demo``, with the caller's epochs, width and step cap."""
    sections: dict[str, Any] = {"optim": {"epochs": body.epochs}, "model": {"width": body.width}}
    if body.max_steps_per_epoch is not None:
        sections["runtime"] = {"max_steps_per_epoch": body.max_steps_per_epoch}
    common = {"dataset_id": dataset_id, "recipe": DEMO_RECIPE, **sections}
    # teacher_job_id / source_job_id are placeholders: create_demo sets each to the job created before it
    return [parse_request({"kind": "pretrain", "name": "demo teacher", **common}),
            parse_request({"kind": "distill", "name": "demo student", "teacher_job_id": 1, **common}),
            parse_request({"kind": "finetune", "name": "demo classifier", "source_job_id": 1, **common})]


def check_demo_frames(body: DemoCreate) -> None:
    """422 naming ``frames`` when the demo's videos would be too short for its own jobs (every job would fail)."""
    need = 0
    for request in demo_requests(body, dataset_id=1):  # a placeholder id: only the configs are built
        parent = None if request.kind == "pretrain" else PLACEHOLDER_ROOT  # only its name; nothing is read
        config = build_config(request, data_root=PLACEHOLDER_ROOT, split=1, subset=1.0, parent_checkpoint=parent)
        need = max(need, config_frames_needed(config) or 0)
    if body.frames < need:
        raise field_error("frames", f"the demo's teacher and student train on PCL tuples of {need} frames; "
                                    f"frames={body.frames} videos are too short, use frames >= {need}")


def create_demo(session: Session, settings: Settings, body: DemoCreate) -> tuple[Dataset, Job, list[Job]]:
    """The synthesize job (rendering the set on a worker), then teacher -> student -> fine-tune, each waiting on
    the one before; nothing is rendered in the API process."""
    check_demo_frames(body)
    dataset, synthesize = create_synthetic(session, settings, SyntheticDatasetCreate(
        name="demo", classes=body.classes, videos_per_class=body.videos_per_class, frames=body.frames,
        width=DEMO_SET["width"], height=DEMO_SET["height"]))
    jobs: list[Job] = []
    for request in demo_requests(body, dataset.id):
        after = jobs[-1] if jobs else synthesize
        if request.parent_id() is not None:
            setattr(request, request.parent_field(), after.id)
        jobs.append(create_job(session, request, settings=settings, after=after))
    return dataset, synthesize, jobs
