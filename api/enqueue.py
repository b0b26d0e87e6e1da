"""Send job runs to the workers by task name; the API never imports worker/ or ml.engine."""

from __future__ import annotations

import logging

from celery import Celery

from persistence.queueing import TASK_RUN_JOB, celery_config
from persistence.settings import Settings

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
