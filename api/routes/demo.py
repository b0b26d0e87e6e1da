"""POST /demo: a synthetic set and a chained teacher -> student -> fine-tune run, sized for a CPU."""

from __future__ import annotations

from fastapi import APIRouter, status

from api.deps import EnqueuerDep, SessionDep, SettingsDep, SubmitAccess
from api.present import dataset_public, job_public
from api.responses import errors
from api.schemas import DemoCreate, DemoPublic
from api.services.demo import create_demo
from api.services.enqueue import enqueue_or_fail

router = APIRouter(tags=["demo"])


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
