"""Celery settings shared by the API (which only sends) and the worker (which consumes), as plain data.

Kept here so both processes agree on queue, routing and broker options without importing each other.
"""

from __future__ import annotations

from typing import Any

from persistence.settings import Settings

TASK_RUN_JOB = "worker.tasks.run_job"


def broker_transport_options(settings: Settings) -> dict[str, Any]:
    url = settings.broker_url
    if url.startswith(("sqla+", "sqlalchemy+")):
        # kombu passes these to sqlalchemy.create_engine: a busy timeout so api and worker can share the file
        return {"connect_args": {"timeout": 30}} if "sqlite" in url else {}
    if url.startswith(("redis", "rediss")):
        # an unacked (acks_late) message is redelivered after this: longer than any job, else it runs twice
        return {"visibility_timeout": settings.visibility_timeout_s}
    return {}


def celery_config(settings: Settings) -> dict[str, Any]:
    return {
        "broker_url": settings.broker_url,
        "broker_transport_options": broker_transport_options(settings),
        "broker_connection_retry_on_startup": True,
        "task_default_queue": settings.queue,
        "task_routes": {TASK_RUN_JOB: {"queue": settings.queue}},
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_ignore_result": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "worker_send_task_events": False,
        "enable_utc": True,
    }
