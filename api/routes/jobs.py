"""Jobs: submit, list, inspect, cancel, resume, retry."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, HTTPException, Query, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError

from api.services.defaults import job_defaults
from api.deps import READ, EnqueuerDep, SessionDep, SettingsDep, SubmitAccess
from api.services.enqueue import enqueue_or_fail
from api.services.lookup import get_job_or_404
from api.present import job_public
from api.responses import errors
from api.schemas import (Id, JobCreate, JobDefaults, JobKindName, JobPublic, JobStatusName, Offset, Page,
                         SubmittableKind, parse_request)
from api.schemas.job_request import REQUESTS, RecipeName, canonical_kind
from api.services.submission import check_replay, create_job, stored_request
from persistence import repo
from persistence.status import JobStatus

router = APIRouter(prefix="/jobs", tags=["jobs"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=JobPublic, operation_id="jobs-create",
             responses={200: {"description": "an earlier job with the same Idempotency-Key and the same body"}})
def create(body: JobCreate, session: SessionDep, settings: SettingsDep, enqueuer: EnqueuerDep, _: SubmitAccess,
           response: Response,
           idempotency_key: Annotated[str | None, Header(max_length=200)] = None) -> JobPublic:
    """Validate and queue a job of a kind in ml.kinds: its config sections, nested as in the CLI's YAML, override
    the recipe named by ``recipe``, which overrides the kind's defaults (GET /jobs/defaults shows them)."""
    request = body.root
    if idempotency_key:
        existing = repo.job_by_idempotency_key(session, idempotency_key)
        if existing is not None:
            check_replay(existing, request, idempotency_key=idempotency_key)
            response.status_code = status.HTTP_200_OK
            return job_public(session, existing)
    try:
        job = create_job(session, request, settings=settings, idempotency_key=idempotency_key)
        session.commit()
    except IntegrityError:
        session.rollback()
        existing = repo.job_by_idempotency_key(session, idempotency_key or "")
        if existing is None:
            raise
        check_replay(existing, request, idempotency_key=idempotency_key or "")
        response.status_code = status.HTTP_200_OK
        return job_public(session, existing)
    enqueue_or_fail(session, enqueuer, job.id)
    return job_public(session, job)


@router.get("", response_model=Page[JobPublic], operation_id="jobs-list", dependencies=[READ])
def list_(session: SessionDep, kind: JobKindName | Literal["evaluate"] | None = None, status_: Annotated[JobStatusName | None,
          Query(alias="status")] = None, dataset_id: Id | None = None,
          offset: Annotated[Offset, Query()] = 0, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> Page[JobPublic]:
    rows, count = repo.list_jobs(session, kind=canonical_kind(kind) if kind else None, status=JobStatus(status_) if status_ else None,
                                 dataset_id=dataset_id, offset=offset, limit=limit)
    return Page[JobPublic](data=[job_public(session, j, with_lineage=False) for j in rows], count=count)


@router.get("/defaults", response_model=JobDefaults, operation_id="jobs-defaults", dependencies=[READ])
def defaults(settings: SettingsDep, kind: SubmittableKind = "pretrain", recipe: RecipeName | None = None) -> JobDefaults:
    """What each unset setting of a ``kind`` job becomes (the ml config defaults, then ``recipe``'s values)."""
    return job_defaults(kind, settings=settings, recipe=recipe)


@router.get("/{job_id}", response_model=JobPublic, operation_id="jobs-get", dependencies=[READ], responses=errors(404))
def get(job_id: Id, session: SessionDep) -> JobPublic:
    return job_public(session, get_job_or_404(session, job_id))


@router.post("/{job_id}/cancel", response_model=JobPublic, operation_id="jobs-cancel", responses=errors(404, 409))
def cancel(job_id: Id, session: SessionDep, _: SubmitAccess) -> JobPublic:
    """Queued/waiting: cancelled now. Running: the worker checkpoints and stops within a step or two."""
    job = get_job_or_404(session, job_id)
    if job.status.is_terminal:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"job {job_id} is already {job.status.value}")
    repo.request_cancel(session, job_id)
    session.commit()
    return job_public(session, get_job_or_404(session, job_id))


@router.post("/{job_id}/resume", response_model=JobPublic, operation_id="jobs-resume", responses=errors(404, 409))
def resume(job_id: Id, session: SessionDep, settings: SettingsDep, enqueuer: EnqueuerDep, _: SubmitAccess) -> JobPublic:
    """Continue a cancelled or failed job from its last checkpoint (same job id, attempts keep counting); the jobs
    chained after it that ended only because it did (never started) wait on it again."""
    job = get_job_or_404(session, job_id)
    if job.status not in (JobStatus.CANCELLED, JobStatus.FAILED):
        raise HTTPException(status.HTTP_409_CONFLICT,
                            detail=f"job {job_id} is {job.status.value}; only cancelled or failed jobs resume")
    if not repo.resume_job(session, job_id, extra_attempts=settings.max_attempts):
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"job {job_id} changed status; try again")
    repo.revive_successors(session, job_id)  # its abandoned dependents (students, fine-tunes) wait on it again
    session.commit()
    enqueue_or_fail(session, enqueuer, job_id)
    return job_public(session, get_job_or_404(session, job_id))


@router.post("/{job_id}/retry", status_code=status.HTTP_201_CREATED, response_model=JobPublic,
             operation_id="jobs-retry", responses=errors(404, 409))
def retry(job_id: Id, session: SessionDep, settings: SettingsDep, enqueuer: EnqueuerDep, _: SubmitAccess) -> JobPublic:
    """A fresh attempt from scratch: a NEW job with the same request (``retry_of`` points back); the old job,
    its logs, metrics and checkpoint stay as they were."""
    old = get_job_or_404(session, job_id)
    if not old.status.is_terminal:
        raise HTTPException(status.HTTP_409_CONFLICT,
                            detail=f"job {job_id} is {old.status.value}; cancel it first or wait for it to end")
    if canonical_kind(old.kind) not in REQUESTS:  # a synthesize job re-renders with resume; no request to repeat
        raise HTTPException(status.HTTP_409_CONFLICT,
                            detail=f"job {job_id} is a {old.kind} job; POST /jobs/{job_id}/resume runs it again")
    try:
        body = parse_request(stored_request(old))
    except ValidationError as exc:  # a request stored before a rule existed (e.g. one naming a path)
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from exc
    job = create_job(session, body, settings=settings)
    job.retry_of = old.id
    session.commit()
    enqueue_or_fail(session, enqueuer, job.id)
    return job_public(session, job)
