"""Experiments: a research grid submitted as jobs in one call, and its summary."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from api.deps import READ, EnqueuerDep, SessionDep, SettingsDep, SubmitAccess
from api.services.experiments import create_experiment, plan_counts
from api.outage import RETRY_AFTER_S
from api.present import experiment_public, summary
from api.responses import errors
from api.services.enqueue import send_queued
from api.services.lookup import get_experiment_or_404
from api.schemas import ExperimentCreate, ExperimentPlan, ExperimentPublic, ExperimentSummary, Id, Offset, Page
from persistence import repo

router = APIRouter(prefix="/experiments", tags=["experiments"])
log = logging.getLogger("api.experiments")


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ExperimentPublic,
             operation_id="experiments-create")
def create(body: ExperimentCreate, session: SessionDep, settings: SettingsDep, enqueuer: EnqueuerDep,
           _: SubmitAccess) -> ExperimentPublic:
    """Queue the whole grid in one transaction: teachers and baselines now; students when their teacher
    completes; a fine-tune when each pretraining run completes."""
    exp, jobs = create_experiment(session, body, settings=settings)
    session.commit()
    unsent = send_queued(session, enqueuer, jobs)
    if unsent:
        session.commit()
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": str(RETRY_AFTER_S)},
                            detail=f"experiment {exp.id} saved but the broker is unreachable; jobs {', '.join(unsent)} "
                                   "failed and can be resumed when it is back")
    return experiment_public(session, exp)


@router.post("/plan", response_model=ExperimentPlan, operation_id="experiments-plan", dependencies=[READ])
def plan(body: ExperimentCreate, session: SessionDep) -> ExperimentPlan:
    """How many jobs POST /experiments would submit for this body (validated the same way, including the
    dataset's frame counts against the clip when the dataset exists; nothing is written)."""
    return plan_counts(session, body)


@router.get("", response_model=Page[ExperimentSummary], operation_id="experiments-list", dependencies=[READ])
def list_(session: SessionDep, offset: Annotated[Offset, Query()] = 0,
          limit: Annotated[int, Query(ge=1, le=200)] = 50) -> Page[ExperimentSummary]:
    rows, count = repo.list_experiments(session, offset=offset, limit=limit)
    counts = repo.experiment_status_counts(session, [e.id for e in rows])
    return Page[ExperimentSummary](data=[summary(e, counts[e.id]) for e in rows], count=count)


@router.get("/{experiment_id}", response_model=ExperimentPublic, operation_id="experiments-get", dependencies=[READ],
            responses=errors(404))
def get(experiment_id: Id, session: SessionDep) -> ExperimentPublic:
    return experiment_public(session, get_experiment_or_404(session, experiment_id))


@router.post("/{experiment_id}/cancel", response_model=ExperimentPublic, operation_id="experiments-cancel",
             responses=errors(404, 409))
def cancel(experiment_id: Id, session: SessionDep, _: SubmitAccess) -> ExperimentPublic:
    """Cancel every unfinished job of the experiment, as POST /jobs/{id}/cancel does: queued and waiting jobs
    now; running ones checkpoint and stop within a step or two (their status turns cancelled then)."""
    exp = get_experiment_or_404(session, experiment_id)
    changed = repo.cancel_experiment(session, exp.id)
    if not changed:
        counts = repo.experiment_status_counts(session, [exp.id])[exp.id]
        done = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        raise HTTPException(status.HTTP_409_CONFLICT,
                            detail=f"experiment {experiment_id} has no unfinished jobs ({done}); POST "
                                   "/jobs/ID/resume runs a cancelled or failed job again")
    session.commit()
    log.info("experiment %d: cancel requested for jobs %s", exp.id, sorted(changed))
    return experiment_public(session, exp)
