"""The engine callback: buffers metrics and writes them in batches, keeps the job row's progress current,
and the should_stop() poll that turns a cancel request or a worker shutdown into a checkpointed stop."""

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


class JobCallback:
    """Implements ml.engine.Callback's methods (duck-typed so this module imports without torch)."""

    def __init__(self, job_id: int, *, sessions: sessionmaker[Session], settings: Settings) -> None:
        self.job_id = job_id
        self.sessions = sessions
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

    def flush(self) -> None:
        """Write buffered metrics and progress in one transaction; on a database error keep them for next time."""
        with self._lock:
            rows, progress = self._buffer, self._progress
            self._buffer, self._progress = [], {}
        try:
            with transaction(self.sessions) as session:
                repo.add_metrics(session, self.job_id, rows)
                if progress:
                    repo.update_progress(session, self.job_id, **progress)
        except SQLAlchemyError as exc:
            log.warning("metrics flush failed (%s); %d rows kept for the next flush", exc, len(rows))
            with self._lock:
                self._buffer[:0] = rows
                self._progress = {**progress, **self._progress}
        self._last_flush = time.monotonic()


class StopCheck:
    """should_stop(): True once the job's cancel flag is set (read every cancel_poll_s) or the worker stops."""

    def __init__(self, job_id: int, *, sessions: sessionmaker[Session], poll_s: float,
                 stopping: threading.Event) -> None:
        self.job_id = job_id
        self.sessions = sessions
        self.poll_s = poll_s
        self.stopping = stopping
        self.reason: str | None = None
        self._next = 0.0

    def __call__(self) -> bool:
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
                    if repo.cancel_requested(session, self.job_id):
                        self.reason = "cancel"
            except SQLAlchemyError as exc:
                log.warning("cancel poll failed: %s", exc)
        return self.reason is not None


class JobHeartbeat:
    """A thread that stamps the job's heartbeat every ``period_s`` while the job runs in this process."""

    def __init__(self, job_id: int, *, sessions: sessionmaker[Session], worker: str, period_s: float) -> None:
        self.job_id, self.sessions, self.worker, self.period_s = job_id, sessions, worker, period_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-job-{job_id}", daemon=True)

    def __enter__(self) -> "JobHeartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            try:
                with transaction(self.sessions) as session:
                    repo.heartbeat_job(session, self.job_id, worker=self.worker)
            except SQLAlchemyError as exc:
                log.warning("job heartbeat failed: %s", exc)


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
