"""Send job runs to the workers by task name; the API never imports worker/ or ml.engine."""

from __future__ import annotations

import logging

from celery import Celery
from fastapi import HTTPException, status
from sqlalchemy.orm import Session

from api.outage import RETRY_AFTER_S
from persistence import repo
from persistence.models import Job
from persistence.queueing import TASK_RUN_JOB, celery_config
from persistence.settings import Settings
from persistence.status import JobStatus

log = logging.getLogger("api.enqueue")


class Enqueuer:
    def __init__(self, settings: Settings) -> None:
        self.queue = settings.queue
        self.app = Celery("kdvideo-api")
        self.app.conf.update(celery_config(settings))

    def send(self, job_id: int, countdown: float = 0) -> None:
        self.app.send_task(TASK_RUN_JOB, args=[job_id], queue=self.queue, countdown=countdown or None,
                           retry=True, retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5})

    def ping(self, *, timeout: float = 3.0) -> None:
        """Raise unless the broker answers."""
        with self.app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)

    def close(self) -> None:
        self.app.close()


def enqueue_or_fail(session: Session, enqueuer: Enqueuer, job_id: int) -> None:
    """Send the job's message after commit; if the broker is down the job fails with a resumable reason."""
    try:
        enqueuer.send(job_id)
    except Exception as exc:  # noqa: BLE001 - any broker error
        log.error("enqueue of job %d failed: %s", job_id, exc)
        repo.transition(session, job_id, to=JobStatus.FAILED, expected=[JobStatus.QUEUED],
                        error=f"could not reach the broker ({type(exc).__name__}); POST /jobs/{job_id}/resume "
                              "when it is back")
        session.commit()
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": str(RETRY_AFTER_S)},
                            detail=f"job {job_id} saved but the broker is unreachable ({type(exc).__name__}); "
                                   f"POST /jobs/{job_id}/resume when it is back") from exc


def send_queued(session: Session, enqueuer: Enqueuer, jobs: list[Job]) -> list[str]:
    """Send the queued ones of ``jobs`` (a grid written in one transaction); a job whose message cannot be sent
    fails with a resumable reason, and so do the jobs chained after it. Answers the ids not sent."""
    unsent: list[str] = []
    for job in jobs:
        if job.status != JobStatus.QUEUED:
            continue
        try:
            enqueuer.send(job.id)
        except Exception as exc:  # noqa: BLE001 - any broker error
            log.error("enqueue of job %d failed: %s", job.id, exc)
            repo.transition(session, job.id, to=JobStatus.FAILED, expected=[JobStatus.QUEUED],
                            error=f"could not reach the broker ({type(exc).__name__}); POST /jobs/{job.id}/resume "
                                  "when it is back")
            repo.fail_successors(session, job.id, reason=repo.dependency_failed(job.id))
            unsent.append(str(job.id))
    return unsent
