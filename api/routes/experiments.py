"""Experiments: a research grid submitted as jobs in one call, and its summary."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from api.deps import EnqueuerDep, SessionDep, SettingsDep, TokenDep
from api.experiment_view import experiment_public, summary
from api.grid import create_experiment
from api.schemas import ExperimentCreate, ExperimentPublic, ExperimentSummary, Page
from persistence import repo
from persistence.status import JobStatus

router = APIRouter(prefix="/experiments", tags=["experiments"])
log = logging.getLogger("api.experiments")


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ExperimentPublic,
             operation_id="experiments-create")
def create(body: ExperimentCreate, session: SessionDep, settings: SettingsDep, enqueuer: EnqueuerDep,
           _: TokenDep) -> ExperimentPublic:
    """Queue the whole grid in one transaction: teachers and baselines now; students when their teacher
    completes; a fine-tune when each pretraining run completes."""
    exp, jobs = create_experiment(session, body, settings=settings)
    session.commit()
    unsent: list[str] = []
    for job in jobs:
        if job.status != JobStatus.QUEUED:
            continue
        try:
            enqueuer.send(job.id)
        except Exception as exc:  # noqa: BLE001 - any broker error
            log.error("enqueue of job %d failed: %s", job.id, exc)
            repo.transition(session, job.id, to=JobStatus.FAILED, expected=[JobStatus.QUEUED],
                            error=f"could not reach the broker ({exc}); POST /jobs/{job.id}/resume when it is back")
            repo.fail_successors(session, job.id, reason=repo.dependency_failed(job.id))
            unsent.append(str(job.id))
    if unsent:
        session.commit()
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                            detail=f"experiment {exp.id} saved but the broker is unreachable; jobs {', '.join(unsent)} "
                                   "failed and can be resumed when it is back")
    return experiment_public(session, exp)


@router.get("", response_model=Page[ExperimentSummary], operation_id="experiments-list")
def list_(session: SessionDep, offset: Annotated[int, Query(ge=0)] = 0,
          limit: Annotated[int, Query(ge=1, le=200)] = 50) -> Page[ExperimentSummary]:
    rows, count = repo.list_experiments(session, offset=offset, limit=limit)
    counts = repo.experiment_status_counts(session, [e.id for e in rows])
    return Page[ExperimentSummary](data=[summary(e, counts[e.id]) for e in rows], count=count)


@router.get("/{experiment_id}", response_model=ExperimentPublic, operation_id="experiments-get")
def get(experiment_id: int, session: SessionDep) -> ExperimentPublic:
    exp = repo.get_experiment(session, experiment_id)
    if exp is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            detail=f"experiment {experiment_id} not found; GET /experiments lists them")
    return experiment_public(session, exp)
