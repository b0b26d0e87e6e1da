"""Validate a JobCreate against the database (dataset, teacher/source jobs) and write the job row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import HTTPException, status
from sqlalchemy.orm import Session

from api.jobspec import JobSpecError, build_config, hash_config
from api.schemas import JobCreate
from persistence import repo
from ml.data.clip_needs import config_frames_needed
from ml.import_spec import IMPORT
from persistence.models import Dataset, Job
from persistence.settings import Settings
from persistence.status import JobStatus

INHERITED = ("backbone", "width", "modality", "clip", "frames", "crop")  # finetune/evaluate: from the source job
PARENT_KINDS = {"distill": {"pretrain", "distill", IMPORT}, "finetune": {"pretrain", "distill", IMPORT},
                "evaluate": {"pretrain", "distill", "finetune", IMPORT}}  # IMPORT: POST /models/import


def field_error(field: str, msg: str, *, code: int = status.HTTP_422_UNPROCESSABLE_CONTENT) -> HTTPException:
    """The same shape FastAPI uses for validation errors: detail = [{loc, msg, type}]."""
    return HTTPException(code, detail=[{"loc": ["body", field], "msg": msg, "type": "value_error"}])


def _parent(session: Session, body: JobCreate, *, after: Job | None) -> tuple[Job | None, str | None]:
    field = "teacher_job_id" if body.kind == "distill" else "source_job_id"
    parent_id = body.teacher_job_id if body.kind == "distill" else body.source_job_id
    if parent_id is None:
        if body.kind == "distill" and (body.alpha is None or body.alpha > 0):
            raise field_error(field, "a distill job needs teacher_job_id (a completed pretrain job); "
                                     "or set alpha=0 for the no-KD baseline")
        return None, None
    parent = repo.get_job(session, parent_id)
    if parent is None:
        raise field_error(field, f"job {parent_id} does not exist; GET /jobs lists jobs")
    allowed = PARENT_KINDS[body.kind]
    if parent.kind not in allowed:
        raise field_error(field, f"job {parent_id} is a {parent.kind} job; {field} must be a "
                                 f"{' or '.join(sorted(allowed))} job")
    chained = after is not None and after.id == parent.id
    if not chained and parent.status != JobStatus.COMPLETED:
        raise field_error(field, f"job {parent_id} is {parent.status.value}, not completed; submit this "
                                 f"{body.kind} job after it completes")
    if not chained and not (parent.checkpoint_path and Path(parent.checkpoint_path).is_file()):
        raise field_error(field, f"job {parent_id} completed without a checkpoint; retry it")
    return parent, field


def _inherit(body: JobCreate, parent: Job | None) -> JobCreate:
    """finetune/evaluate reuse the source's backbone, width, modality and clip unless given."""
    if parent is None or body.kind not in ("finetune", "evaluate"):
        return body
    src = parent.request
    updates: dict[str, Any] = {}
    for name in INHERITED:
        if getattr(body, name) is None and src.get(name) is not None:
            updates[name] = src[name]
        elif name in ("backbone", "width") and getattr(body, name) is not None and src.get(name) is not None \
                and getattr(body, name) != src[name]:
            raise field_error(name, f"source job {parent.id} has {name}={src[name]!r}; "
                                    f"leave {name} unset or use the same value")
    return body.model_copy(update=updates)


def _dependency(session: Session, body: JobCreate, after: Job | None) -> Job | None:
    """The job this one waits on (``after``, else ``after_job_id``); None once that job has completed."""
    if after is None and body.after_job_id is not None:
        after = repo.get_job(session, body.after_job_id)
        if after is None:
            raise field_error("after_job_id", f"job {body.after_job_id} does not exist; GET /jobs lists jobs")
    if after is None or after.status == JobStatus.COMPLETED:
        return None
    if after.status in (JobStatus.FAILED, JobStatus.CANCELLED):
        raise field_error("after_job_id", f"job {after.id} is {after.status.value}; resume it "
                                          f"(POST /jobs/{after.id}/resume) before chaining on it")
    return after


def _clip_field(body: JobCreate) -> str:
    """The request field that sets how many frames a sample takes (for the error's loc)."""
    for key in body.overrides:
        if key.startswith(("pretext.", "clip.")):
            return f"overrides.{key}"
    if body.frames is not None:
        return "frames"
    return "clip"


def longest_training_video(session: Session, dataset: Dataset) -> int | None:
    """Frames of the dataset's longest usable training video: from its scan, or, while a synthesize job is still
    rendering it, the frames that job renders; None when unknown (registered without a scan)."""
    train = (dataset.frames or {}).get("train")
    if train:
        return int(train.get("max", 0))
    if dataset.job_id is not None:
        maker = repo.get_job(session, dataset.job_id)
        frames = (maker.config or {}).get("frames") if maker is not None else None
        return int(frames) if isinstance(frames, int) else None
    return None


def check_clip_needs(session: Session, dataset: Dataset, body: JobCreate, config: Any) -> None:
    """422 when no training video of ``dataset`` is long enough for one sample of ``config`` (the run would
    drop every video and fail); unknown when the dataset was registered without a scan."""
    need = config_frames_needed(config)
    longest = longest_training_video(session, dataset)
    if need is None or longest is None or need <= longest:
        return
    what = "a PCL tuple (clip frames x tuple_len + interval x (tuple_len - 1))" if body.kind in ("pretrain", "distill") \
        else "one clip"
    raise field_error(_clip_field(body), f"a {body.kind} job with this clip needs {need} frames per video for {what}; "
                                         f"the longest usable training video of dataset {dataset.id} has {longest}. "
                                         "Use fewer frames (frames, clip='tiny') or a dataset with longer videos")


def check_replay(existing: Job, body: JobCreate, *, idempotency_key: str) -> None:
    """A reused Idempotency-Key must come with the same request (IETF Idempotency-Key draft: 422 otherwise).

    Compared field by field with the request stored on the job; fields a finetune/evaluate job inherited from
    its source (absent from the new body) do not count as differences."""
    sent = body.model_dump(mode="json", exclude_none=True)
    stored = existing.request or {}
    inherits = existing.kind in ("finetune", "evaluate")
    differ = sorted(name for name in set(sent) | set(stored) if sent.get(name) != stored.get(name)
                    and not (inherits and name in INHERITED and name not in sent))
    if differ:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=[{
            "loc": ["header", "idempotency-key"], "type": "idempotency_key_reused",
            "msg": f"Idempotency-Key {idempotency_key!r} was already used for job {existing.id} with a different "
                   f"request (differs in: {', '.join(differ)}); send the same body to get that job again, or use a "
                   "new key for a new job"}])


def _dataset_maker(session: Session, dataset: Dataset) -> Job | None:
    """The unfinished job still generating ``dataset`` (a job on it waits for that one); None once it is ready."""
    if dataset.job_id is None:
        return None
    maker = repo.get_job(session, dataset.job_id)
    if maker is None or maker.status == JobStatus.COMPLETED:
        return None
    if maker.status in (JobStatus.FAILED, JobStatus.CANCELLED):
        raise field_error("dataset_id", f"dataset {dataset.id} was never generated: job {maker.id} that renders it "
                                        f"is {maker.status.value}; resume it (POST /jobs/{maker.id}/resume) or "
                                        "generate a new set")
    return maker


def job_config(dataset: Dataset, body: JobCreate, *, parent_checkpoint: Path | None) -> Any:
    """The ml config ``body`` becomes on ``dataset``; 422 naming the request field when it cannot."""
    try:
        return build_config(body, data_root=Path(dataset.path), split=dataset.split,
                            subset=dataset.subset / 100 * (body.data_fraction or 1.0), parent_checkpoint=parent_checkpoint)
    except JobSpecError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            detail=[{"loc": list(exc.loc), "msg": exc.msg, "type": "value_error"}]) from exc


def create_job(session: Session, body: JobCreate, *, settings: Settings, idempotency_key: str | None = None,
               after: Job | None = None) -> Job:
    """Write a queued job, or a waiting one when it depends on an unfinished job (``after`` or
    ``body.after_job_id``): the worker queues it when that job completes. The caller commits, then enqueues."""
    dataset = repo.get_dataset(session, body.dataset_id)
    if dataset is None:
        raise field_error("dataset_id", f"dataset {body.dataset_id} does not exist; POST /datasets registers one")
    after = _dependency(session, body, after)
    if after is None:
        after = _dataset_maker(session, dataset)
    parent, _ = _parent(session, body, after=after)
    body = _inherit(body, parent)
    checkpoint = None
    if parent is not None:
        checkpoint = Path(parent.checkpoint_path) if parent.checkpoint_path else settings.job_dir(parent.id) / \
            "checkpoint.pt"
    config = job_config(dataset, body, parent_checkpoint=checkpoint)
    check_clip_needs(session, dataset, body, config)
    job = repo.create_job(session, kind=body.kind, name=body.name, request=body.model_dump(mode="json",
                          exclude_none=True), config=config.model_dump(mode="json"), config_hash=hash_config(config),
                          dataset_id=dataset.id, parent_id=parent.id if parent else None,
                          after_id=after.id if after else None, idempotency_key=idempotency_key,
                          max_attempts=body.max_attempts or settings.max_attempts,
                          status=JobStatus.WAITING if after is not None else JobStatus.QUEUED)
    repo.set_job_paths(session, job.id, artifact_dir=str(settings.job_dir(job.id)))
    return job
