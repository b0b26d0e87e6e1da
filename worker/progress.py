"""The engine callback: buffers metrics and writes them in batches, keeps the job row's progress current,
and the should_stop() poll that turns a cancel request or a worker shutdown into a checkpointed stop.

Every write goes through a :class:`Lease` on the job's current attempt: once the job was reclaimed and started
again elsewhere (this worker was paused or cut off from the database longer than STALE_AFTER_S), nothing more
is written and the engine is stopped by :class:`Superseded` raised from should_stop() or before a checkpoint."""

from __future__ import annotations

import logging
import math
import threading
import time
from pathlib import Path
from typing import Any, Callable

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from persistence import repo
from persistence.base import utcnow
from persistence.session import transaction
from persistence.settings import Settings

log = logging.getLogger("worker.job")

EPOCH_PREFIX = "epoch/"  # epoch-level metrics are stored as epoch/<name>; step metrics under their own name


class Superseded(Exception):
    """This attempt no longer owns its job (it was reclaimed and started again): stop, write nothing more."""


class Lease:
    """This process's hold on one attempt of a job.

    ``confirmed`` is the monotonic time the database last agreed the attempt owns the job (a fenced write
    matched). Past half of STALE_AFTER_S without that, another worker may already have reclaimed the job, so
    :meth:`check` verifies before anything is written, waiting through a database outage (retrying every
    ``retry_s``) until it knows: still ours (go on) or superseded (raise)."""

    def __init__(self, attempt: repo.Attempt, *, sessions: sessionmaker[Session], stale_after_s: float,
                 retry_s: float = 1.0, stopping: threading.Event | None = None) -> None:
        self.attempt, self.sessions = attempt, sessions
        self.max_age_s = stale_after_s / 2
        self.retry_s = retry_s
        self.stopping = stopping
        self.confirmed = time.monotonic()
        self.lost: str | None = None  # why it was superseded, once known
        self._lock = threading.Lock()

    @property
    def superseded(self) -> bool:
        return self.lost is not None

    def renewed(self, ok: bool) -> bool:
        """Record the result of a fenced write: True (it matched) renews the lease, False marks it lost."""
        if ok:
            self.confirmed = time.monotonic()
        else:
            self._mark_lost()
        return ok

    def _mark_lost(self) -> None:
        with self._lock:
            if self.lost is not None:
                return
            a = self.attempt
            why = f"attempt {a.number} of job {a.job_id} on {a.worker} was superseded"
            try:
                with self.sessions() as session:
                    now = repo.owner(session, a.job_id)
                if now is not None:
                    why += f" (the job is {now[0].value}, attempt {now[1]} on {now[2]})"
            except SQLAlchemyError:
                pass
            self.lost = why
        log.warning("%s; stopping without writing anything more", why)

    def renew(self) -> bool:
        """One fenced heartbeat; False when superseded. Database errors propagate."""
        if self.superseded:
            return False
        with transaction(self.sessions) as session:
            ok = repo.heartbeat_job(session, self.attempt)
        return self.renewed(ok)

    def check(self) -> None:
        """Raise :class:`Superseded` if the attempt lost the job; when ownership was last confirmed too long ago,
        confirm it first (blocking through a database outage)."""
        waited = 0
        while not self.superseded and time.monotonic() - self.confirmed > self.max_age_s:
            try:
                self.renew()
            except SQLAlchemyError as exc:
                if waited % 30 == 0:  # the first failure, then every 30th: an outage does not flood the log
                    log.warning("cannot confirm job %d attempt %d is still ours (%s); paused, waiting for the "
                                "database", self.attempt.job_id, self.attempt.number, _short(exc))
                waited += 1
                time.sleep(self.retry_s)
        if self.lost is not None:
            raise Superseded(self.lost)


class JobCallback:
    """Implements ml.engine.Callback's methods (duck-typed so this module imports without torch)."""

    def __init__(self, lease: Lease, *, settings: Settings, tracker: Any = None) -> None:
        self.lease = lease
        self.tracker = tracker  # worker.trackers.MlflowTracker: gets the rows a fenced flush stored, nothing else
        self.job_id = lease.attempt.job_id
        self.sessions = lease.sessions
        self.flush_rows = settings.metrics_flush_rows
        self.flush_s = settings.metrics_flush_s
        self._buffer: list[dict[str, Any]] = []
        self._progress: dict[str, Any] = {}
        self._last_flush = time.monotonic()
        self._lock = threading.Lock()
        self.total_epochs: int | None = None
        self.steps_per_epoch: int | None = None
        self.step = 0
        self.epoch = 0
        self._warned: set[str] = set()

    # ---- engine hooks
    def on_start(self, info: dict[str, Any]) -> None:
        self.total_epochs = _int(info.get("total_epochs"))
        self.steps_per_epoch = _int(info.get("steps_per_epoch"))
        start_epoch = _int(info.get("start_epoch")) or 0
        self.epoch = start_epoch
        self.step = start_epoch * (self.steps_per_epoch or 0)
        self._progress.update(total_epochs=self.total_epochs, steps_per_epoch=self.steps_per_epoch,
                              device=str(info.get("device", ""))[:64] or None, epoch=start_epoch,
                              progress=self._fraction())
        log.info("start: %s", info)
        self.flush()

    def on_resume(self, *, history: list[dict[str, float]]) -> None:
        """Restore epoch metrics a previous attempt checkpointed but never stored (killed in between)."""
        with self.sessions() as session:
            stored = repo.epochs_with_metrics(session, self.job_id, prefix=EPOCH_PREFIX)
        missing = [h for h in history if int(h.get("epoch", 0)) not in stored]
        for entry in missing:
            epoch = int(entry["epoch"])
            metrics = {k: v for k, v in entry.items() if k != "epoch"}
            self._add(metrics, step=epoch * (self.steps_per_epoch or 0), epoch=epoch, prefix=EPOCH_PREFIX)
        if missing:
            log.info("restored the metrics of epoch(s) %s from the checkpoint", [int(h["epoch"]) for h in missing])
            self.flush()

    def on_step(self, *, epoch: int, step: int, metrics: dict[str, float]) -> None:
        self.step = step
        self._add(metrics, step=step, epoch=epoch, prefix="")
        self._progress.update(step=step, progress=self._fraction())
        self._maybe_flush()

    def on_epoch(self, *, epoch: int, metrics: dict[str, float]) -> None:
        self.epoch = epoch
        if self.steps_per_epoch:
            self.step = max(self.step, epoch * self.steps_per_epoch)
        self._add(metrics, step=self.step, epoch=epoch, prefix=EPOCH_PREFIX)
        self._progress.update(epoch=epoch, step=self.step, progress=self._fraction())
        log.info("epoch %d: %s", epoch, {k: round(v, 5) for k, v in metrics.items() if _finite(v)})
        self.flush()

    def on_log(self, message: str) -> None:
        log.info("%s", message)

    def on_before_checkpoint(self, *, epoch: int) -> None:
        """Veto a checkpoint of an attempt that no longer owns the job (raises Superseded)."""
        self.lease.check()

    def on_checkpoint(self, *, path: Path, epoch: int) -> None:
        self._progress.update(checkpoint_path=str(path))
        log.info("checkpoint epoch %d: %s", epoch, path)
        self.flush()

    def __getattr__(self, name: str) -> Callable[..., None]:
        if name.startswith("on_"):  # hooks the engine may add later are no-ops, as in ml.engine.Callback
            return lambda *a, **k: None
        raise AttributeError(name)

    # ---- buffering
    def _fraction(self) -> float:
        if self.total_epochs and self.steps_per_epoch:
            return min(1.0, self.step / (self.total_epochs * self.steps_per_epoch))
        if self.total_epochs:
            return min(1.0, self.epoch / self.total_epochs)
        return 0.0

    def _add(self, metrics: dict[str, float], *, step: int, epoch: int, prefix: str) -> None:
        now = utcnow()
        with self._lock:
            for name, value in metrics.items():
                if not _finite(value):
                    if name not in self._warned:
                        self._warned.add(name)
                        log.warning("metric %s is %r at step %d (not stored)", name, value, step)
                    continue
                self._buffer.append({"name": (prefix + name)[:100], "step": int(step), "epoch": int(epoch),
                                     "value": float(value), "time": now})

    def _maybe_flush(self) -> None:
        if len(self._buffer) >= self.flush_rows or time.monotonic() - self._last_flush >= self.flush_s:
            self.flush()

    def flush(self) -> bool:
        """Write buffered metrics and progress in one fenced transaction; on a database error keep them for the
        next flush (the upsert makes a retry of a commit that did land harmless). A superseded attempt drops
        them. Returns True when everything was written."""
        with self._lock:
            rows, progress = self._buffer, self._progress
            self._buffer, self._progress = [], {}
        self._last_flush = time.monotonic()
        if self.lease.superseded:
            return False
        try:
            with transaction(self.sessions) as session:
                ok = repo.record_progress(session, self.lease.attempt, rows, **progress)
        except SQLAlchemyError as exc:
            log.warning("metrics flush failed (%s); %d rows kept for the next flush", _short(exc), len(rows))
            with self._lock:
                self._buffer[:0] = rows
                self._progress = {**progress, **self._progress}
            return False
        if not self.lease.renewed(ok):
            log.warning("%d metric rows of a superseded attempt dropped", len(rows))
        elif self.tracker is not None:
            self.tracker.log_rows(rows)
        return ok


class StopCheck:
    """should_stop(): True once the job's cancel flag is set (read every cancel_poll_s) or the worker stops;
    raises Superseded when the attempt lost the job (a checkpoint now would overwrite the new attempt's)."""

    def __init__(self, lease: Lease, *, poll_s: float, stopping: threading.Event) -> None:
        self.lease = lease
        self.job_id = lease.attempt.job_id
        self.sessions = lease.sessions
        self.poll_s = poll_s
        self.stopping = stopping
        self.reason: str | None = None
        self._next = 0.0

    def __call__(self) -> bool:
        self.lease.check()
        if self.reason:
            return True
        if self.stopping.is_set():
            self.reason = "shutdown"
            return True
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self.poll_s
            try:
                with self.sessions() as session:
                    owned, cancel = repo.poll_attempt(session, self.lease.attempt)
            except SQLAlchemyError as exc:
                log.warning("cancel poll failed: %s", _short(exc))
            else:
                self.lease.renewed(owned)
                self.lease.check()  # superseded: raise now, before another step is trained or saved
                if cancel:
                    self.reason = "cancel"
        return self.reason is not None


class JobHeartbeat:
    """A thread that renews the lease (stamps the job's heartbeat, fenced) every ``period_s`` while the job runs;
    a renewal that matches nothing marks the lease superseded, which stops the engine at its next check."""

    def __init__(self, lease: Lease, *, period_s: float) -> None:
        self.lease, self.period_s = lease, period_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-job-{lease.attempt.job_id}", daemon=True)

    def __enter__(self) -> "JobHeartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.period_s) and not self.lease.superseded:
            try:
                self.lease.renew()
            except SQLAlchemyError as exc:
                log.warning("job heartbeat failed: %s", _short(exc))


def _short(exc: BaseException) -> str:
    """The first line of a database error (SQLAlchemy appends the statement and a link)."""
    return str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None
