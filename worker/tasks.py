"""Thin Celery tasks: take a job id, hand it to worker.jobs."""

from __future__ import annotations

from typing import Any

from persistence.queueing import TASK_RUN_JOB
from worker.celery_app import app, send_job
from worker.jobs import execute_job
from worker.state import get_runtime


@app.task(bind=True, name=TASK_RUN_JOB, acks_late=True, ignore_result=True)
def run_job(self: Any, job_id: int) -> str:
    rt = get_runtime()
    if self.request.hostname and rt.hostname != self.request.hostname:
        rt.hostname = self.request.hostname
    outcome = execute_job(int(job_id), rt=rt, enqueue=send_job)
    return f"{outcome.status}: {outcome.detail}" if outcome.detail else outcome.status
