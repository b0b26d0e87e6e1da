"""The worker's own heartbeat row, plus the periodic stale-job check every worker runs."""

from __future__ import annotations

import logging
import os
import threading

from sqlalchemy.exc import SQLAlchemyError

from persistence import repo
from persistence.session import transaction
from worker.jobs import Enqueue
from worker.runtime import WorkerRuntime

log = logging.getLogger("worker.heartbeat")


def recover_orphans(rt: WorkerRuntime, *, enqueue: Enqueue) -> repo.Reclaimed:
    """Jobs still 'running' under this worker's name belong to its previous life: re-queue or fail them."""
    with transaction(rt.sessions) as session:
        found = repo.reclaim_orphans(session, worker=rt.hostname)
    for job_id in found.requeued:
        enqueue(job_id, 0)
    if found.requeued or found.failed:
        log.warning("recovered orphaned jobs: re-queued %s, failed %s", found.requeued, found.failed)
    return found


def recover_stale(rt: WorkerRuntime, *, enqueue: Enqueue) -> repo.Reclaimed:
    with transaction(rt.sessions) as session:
        found = repo.reclaim_stale(session, stale_after_s=rt.settings.stale_after_s)
    for job_id in found.requeued:
        enqueue(job_id, 0)
    if found.requeued or found.failed:
        log.warning("stale jobs: re-queued %s, failed %s", found.requeued, found.failed)
    return found


class WorkerHeartbeat:
    """Started when the worker is ready: stamps the workers row and reclaims stale jobs every heartbeat_s."""

    def __init__(self, rt: WorkerRuntime, *, enqueue: Enqueue, device: str) -> None:
        self.rt, self.enqueue, self.device = rt, enqueue, device
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="worker-heartbeat", daemon=True)

    def start(self) -> None:
        with transaction(self.rt.sessions) as session:
            repo.upsert_worker(session, hostname=self.rt.hostname, device=self.device, pid=os.getpid(),
                               code_version=self.rt.code_version, current_job_id=None, starting=True)
        recover_orphans(self.rt, enqueue=self.enqueue)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        try:
            with transaction(self.rt.sessions) as session:
                repo.mark_worker_stopped(session, hostname=self.rt.hostname)
        except SQLAlchemyError as exc:
            log.warning("could not mark worker stopped: %s", exc)

    def _run(self) -> None:
        while not self._stop.wait(self.rt.settings.heartbeat_s):
            try:
                with transaction(self.rt.sessions) as session:
                    repo.upsert_worker(session, hostname=self.rt.hostname)
                recover_stale(self.rt, enqueue=self.enqueue)
            except SQLAlchemyError as exc:
                log.warning("worker heartbeat failed: %s", exc)
            except Exception:  # noqa: BLE001 - keep beating whatever happens (e.g. broker down while re-queueing)
                log.exception("worker heartbeat error")
