"""Validate a job request against the database (dataset, parent and dependency jobs) and write the job row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import HTTPException, status
from sqlalchemy.orm import Session

from api.schemas.job_request import JobRequest, parse_request
from api.services.jobspec import JobSpecError, build_config, hash_config
from ml import kinds as kind_registry
from ml.data.clip_needs import config_frames_needed
from persistence import repo
from persistence.models import Dataset, Job
from persistence.settings import Settings
from persistence.status import JobStatus


def field_error(field: str, msg: str, *, code: int = status.HTTP_422_UNPROCESSABLE_CONTENT) -> HTTPException:
    """The same shape FastAPI uses for validation errors: detail = [{loc, msg, type}]."""
    return HTTPException(code, detail=[{"loc": ["body", field], "msg": msg, "type": "value_error"}])


def _parent(session: Session, body: JobRequest, *, after: Job | None) -> Job | None:
    spec = kind_registry.get(body.kind)  # type: ignore[attr-defined]
    if spec.needs is None:
        return None
    field = spec.parent_request
    parent_id = body.parent_id()
    if parent_id is None:
        alpha = (body.sections().get("distill") or {}).get("alpha")
        if spec.parent_required and (alpha is None or alpha > 0):
            raise field_error(field, f"a {spec.name} job needs {field} (a completed "
                                     f"{' or '.join(spec.parent_kinds())} job); or set distill.alpha=0 for the "
                                     "no-KD baseline")
        return None
    parent = repo.get_job(session, parent_id)
    if parent is None:
        raise field_error(field, f"job {parent_id} does not exist; GET /jobs lists jobs")
    allowed = spec.parent_kinds()
    if parent.kind not in allowed:
        raise field_error(field, f"job {parent_id} is a {parent.kind} job; {field} must be a "
                                 f"{' or '.join(allowed)} job")
    chained = after is not None and after.id == parent.id
    if not chained and parent.status != JobStatus.COMPLETED:
        raise field_error(field, f"job {parent_id} is {parent.status.value}, not completed; submit this "
                                 f"{spec.name} job after it completes")
    if not chained and not (parent.checkpoint_path and Path(parent.checkpoint_path).is_file()):
        raise field_error(field, f"job {parent_id} completed without a checkpoint; retry it")
    return parent


def _dependency(session: Session, body: JobRequest, after: Job | None) -> Job | None:
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


def _clip_field(body: JobRequest) -> str:
    """The request section that sets how many frames a sample takes (for the error's loc)."""
    sent = body.sections()
    return "pretext" if "pretext" in sent else "clip"


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


def check_clip_needs(session: Session, dataset: Dataset, body: JobRequest, config: Any) -> None:
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
                                         "Use fewer frames (clip.frames, recipe 'tiny') or a dataset with longer videos")


def _leaves(data: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(data, dict) or not data:
        return {prefix.rstrip("."): data} if prefix else {}
    out: dict[str, Any] = {}
    for key, value in data.items():
        out.update(_leaves(value, f"{prefix}{key}."))
    return out


def stored_request(job: Job) -> dict[str, Any]:
    """A job's stored request in today's form (an old flat request, or kind 'evaluate', upgraded)."""
    try:
        return parse_request(job.request or {}).stored()
    except ValueError:
        return dict(job.request or {})


def check_replay(existing: Job, body: JobRequest, *, idempotency_key: str) -> None:
    """A reused Idempotency-Key must come with the same request (IETF Idempotency-Key draft: 422 otherwise).

    Compared setting by setting (dotted) with the request stored on the job, both in today's nested form."""
    sent, stored = _leaves(body.stored()), _leaves(stored_request(existing))
    differ = sorted(name for name in set(sent) | set(stored) if sent.get(name) != stored.get(name))
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


def job_config(dataset: Dataset, body: JobRequest, *, parent_checkpoint: Path | None,
               parent_config: dict[str, Any] | None = None) -> Any:
    """The ml config ``body`` becomes on ``dataset``; 422 naming the request field when it cannot."""
    try:
        return build_config(body, data_root=Path(dataset.path), split=dataset.split, subset=dataset.subset / 100,
                            parent_checkpoint=parent_checkpoint, parent_config=parent_config)
    except JobSpecError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            detail=[{"loc": list(exc.loc), "msg": exc.msg, "type": "value_error"}]) from exc


def create_job(session: Session, body: JobRequest, *, settings: Settings, idempotency_key: str | None = None,
               after: Job | None = None) -> Job:
    """Write a queued job, or a waiting one when it depends on an unfinished job (``after`` or
    ``body.after_job_id``): the worker queues it when that job completes. The caller commits, then enqueues."""
    dataset = repo.get_dataset(session, body.dataset_id)
    if dataset is None:
        raise field_error("dataset_id", f"dataset {body.dataset_id} does not exist; POST /datasets registers one")
    after = _dependency(session, body, after)
    if after is None:
        after = _dataset_maker(session, dataset)
    parent = _parent(session, body, after=after)
    checkpoint = None
    if parent is not None:
        checkpoint = Path(parent.checkpoint_path) if parent.checkpoint_path else settings.job_dir(parent.id) / \
            "checkpoint.pt"
    config = job_config(dataset, body, parent_checkpoint=checkpoint, parent_config=parent.config if parent else None)
    check_clip_needs(session, dataset, body, config)
    job = repo.create_job(session, kind=body.kind, name=body.name, request=body.stored(),  # type: ignore[attr-defined]
                          config=config.model_dump(mode="json"), config_hash=hash_config(config),
                          dataset_id=dataset.id, parent_id=parent.id if parent else None,
                          after_id=after.id if after else None, idempotency_key=idempotency_key,
                          max_attempts=body.max_attempts or settings.max_attempts,
                          status=JobStatus.WAITING if after is not None else JobStatus.QUEUED)
    repo.set_job_paths(session, job.id, artifact_dir=str(settings.job_dir(job.id)))
    return job
