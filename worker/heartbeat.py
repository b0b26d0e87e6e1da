"""The worker's own heartbeat row, plus the periodic stale-job check every worker runs."""

from __future__ import annotations

import logging
import os
import threading

from sqlalchemy.exc import SQLAlchemyError

from persistence import repo
from persistence.session import transaction
from worker.jobs import Enqueue
from worker.state import WorkerRuntime

log = logging.getLogger("worker.heartbeat")


def recover_stale(rt: WorkerRuntime, *, enqueue: Enqueue) -> repo.Reclaimed:
    """Re-queue (or fail) running jobs whose heartbeat is older than STALE_AFTER_S, whoever ran them. Never by
    worker name (a second worker started under the same name must not take a job that is still training), and
    never the attempt this process runs itself (after a pause its own heartbeat is late, not lost)."""
    keep = [rt.current] if rt.current is not None else []
    with transaction(rt.sessions) as session:
        found = repo.reclaim_stale(session, stale_after_s=rt.settings.stale_after_s, keep=keep)
    for job_id in found.requeued:
        enqueue(job_id, 0)
    if found.requeued or found.failed:
        log.warning("stale jobs: re-queued %s, failed %s", found.requeued, found.failed)
    return found


def redispatch_lost(rt: WorkerRuntime, *, enqueue: Enqueue) -> list[int]:
    """Re-send the message of queued jobs the broker lost (see repo.redispatch_lost)."""
    with transaction(rt.sessions) as session:
        ids = repo.redispatch_lost(session, grace_s=rt.settings.dispatch_grace_s,
                                   stale_after_s=rt.settings.stale_after_s)
    for job_id in ids:
        enqueue(job_id, 0)
    if ids:
        log.warning("queued jobs with no message taken for %.0fs while a worker is idle: re-sent %s",
                    rt.settings.dispatch_grace_s, ids)
    return ids


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
        self._check()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        try:
            with transaction(self.rt.sessions) as session:
                repo.mark_worker_stopped(session, hostname=self.rt.hostname)
        except SQLAlchemyError as exc:
            log.warning("could not mark worker stopped: %s", exc)

    def _check(self) -> None:
        try:
            recover_stale(self.rt, enqueue=self.enqueue)
            redispatch_lost(self.rt, enqueue=self.enqueue)
        except SQLAlchemyError as exc:
            log.warning("stale/lost job check failed: %s", exc)
        except Exception:  # noqa: BLE001 - keep beating whatever happens (e.g. broker down while re-queueing)
            log.exception("stale/lost job check error")

    def _run(self) -> None:
        while not self._stop.wait(self.rt.settings.heartbeat_s):
            current = self.rt.current
            try:
                with transaction(self.rt.sessions) as session:  # current_job_id as this process knows it
                    repo.upsert_worker(session, hostname=self.rt.hostname,
                                       current_job_id=current.job_id if current is not None else None)
            except SQLAlchemyError as exc:
                log.warning("worker heartbeat failed: %s", exc)
                continue
            self._check()
