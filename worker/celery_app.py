"""The Celery app: broker and queue from Settings, heartbeat and shutdown hooks.

Run one per GPU:  celery -A worker.celery_app worker -Q gpu -P solo -c 1 -n worker@%h
(solo: the job runs in the worker's main process, so a warm shutdown reaches should_stop() and the
job checkpoints, stops and is re-queued; torch DataLoader workers may fork freely.)
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery, signals

from persistence.queueing import TASK_RUN_JOB, celery_config
from persistence.settings import get_settings
from worker.state import detect_device, get_runtime

log = logging.getLogger("worker")

app = Celery("kdvideo", include=["worker.tasks"])
app.conf.update(celery_config(get_settings()))

_heartbeat: Any = None


def send_job(job_id: int, countdown: float = 0) -> None:
    """Queue a run of ``job_id`` (by task name, as the API does). The job row's dispatched_at was set in the
    transaction that queued it; a message lost on the way is re-sent by the dispatch sweep."""
    settings = get_settings()
    app.send_task(TASK_RUN_JOB, args=[job_id], queue=settings.queue, countdown=countdown or None)


@signals.worker_ready.connect
def _on_ready(sender: Any = None, **_: Any) -> None:
    global _heartbeat
    from worker.heartbeat import WorkerHeartbeat

    rt = get_runtime()
    if sender is not None and getattr(sender, "hostname", None):
        rt.hostname = sender.hostname
    device = detect_device(rt.settings.device)
    _heartbeat = WorkerHeartbeat(rt, enqueue=send_job, device=device)
    _heartbeat.start()
    log.info("worker %s ready on %s (code %s)", rt.hostname, device, rt.code_version)


@signals.worker_shutting_down.connect
def _on_shutting_down(**_: Any) -> None:
    get_runtime().stopping.set()  # should_stop() turns this into checkpoint + stop + re-queue


@signals.worker_shutdown.connect
def _on_shutdown(**_: Any) -> None:
    if _heartbeat is not None:
        _heartbeat.stop()
