"""Load a job, turn its stored config into the ml config, run ml.engine, record the outcome.

Plain functions (no Celery) so tests call them directly; worker.tasks wraps them.
"""

from __future__ import annotations

import copy
import errno
import json
import logging
import shutil
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from persistence import repo
from persistence.base import utcnow
from persistence.models import Job
from persistence.session import transaction
from persistence.status import JobStatus
from worker.progress import JobCallback, JobHeartbeat, Lease, StopCheck, Superseded
from worker.state import WorkerRuntime
from worker.trackers import MAX_LINEAGE, MlflowTracker, make_tracker

log = logging.getLogger("worker.job")

Enqueue = Callable[[int, float], None]  # (job_id, countdown seconds)

class JobConfigError(Exception):
    """The job cannot run as configured; it fails without retry."""


@dataclass
class Outcome:
    status: str  # completed | cancelled | failed | requeued | skipped | superseded
    detail: str = ""
    enqueued: list[int] = field(default_factory=list)


def build_ml_config(job: Job, parent: Job | None, *, dataset_root: str | None) -> Any:
    """The job's stored ml config, validated, with every path-typed field set by the service itself: the data
    root from the dataset row, the parent's final checkpoint from the parent job, the rest left unset. A path
    stored in the job's config (whatever wrote it) is never used."""
    from ml import kinds as kind_registry
    from ml.config import path_fields

    spec = kind_registry.get(job.kind)
    cls = spec.config_class()
    data = copy.deepcopy(job.config)
    for dotted in path_fields(cls):
        *path, leaf = dotted.split(".")
        node: Any = data
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(leaf, None)
    if dataset_root is None:
        raise JobConfigError(f"job {job.id}: its dataset {job.dataset_id} no longer exists")
    if "data" in cls.model_fields:  # training/evaluation kinds read the dataset
        data.setdefault("data", {})["root"] = dataset_root
    else:  # synthesize writes the dataset's folder
        data["root"] = dataset_root
    if parent is not None and spec.parent_field:
        ckpt = parent.checkpoint_path
        if parent.status != JobStatus.COMPLETED or not ckpt or not Path(ckpt).is_file():
            raise JobConfigError(f"job {parent.id} ({parent.kind}) has no finished checkpoint "
                                 f"(status {parent.status.value})")
        *path, leaf = spec.parent_field.split(".")
        node = data
        for key in path:
            node = node.setdefault(key, {})
        node[leaf] = ckpt
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise JobConfigError(f"invalid {job.kind} config: {exc}") from exc


def is_permanent(exc: BaseException) -> bool:
    """Bad input or config: retrying cannot help. Anything else (I/O, database, CUDA) is retried."""
    try:
        from ml.errors import MLError
    except ImportError:  # pragma: no cover
        MLError = ()  # type: ignore[assignment,misc]
    return isinstance(exc, (JobConfigError, ValidationError, MLError, ValueError, TypeError, KeyError,
                            FileNotFoundError, NotImplementedError, ImportError))


def _engine_run() -> Callable[..., Any]:
    from ml.engine import run

    return run


def execute_job(job_id: int, *, rt: WorkerRuntime, enqueue: Enqueue,
                engine_run: Callable[..., Any] | None = None) -> Outcome:
    """Run job ``job_id`` once if it is queued; safe to call again for the same message (idempotent)."""
    if rt.stopping.is_set():  # a message taken while the worker shuts down: hand it back untouched
        enqueue(job_id, 0)
        return Outcome("skipped", "worker shutting down; message re-sent", enqueued=[job_id])
    with transaction(rt.sessions) as session:
        job = repo.get_job(session, job_id)
        if job is None:
            return Outcome("skipped", f"job {job_id} does not exist")
        if job.status != JobStatus.QUEUED:
            return Outcome("skipped", f"job {job_id} is {job.status.value}")
        attempt = repo.claim_job(session, job_id, worker=rt.hostname, code_version=rt.code_version)
        if attempt is None:
            return Outcome("skipped", f"job {job_id} was taken by another worker")
        out_dir = rt.settings.job_dir(job_id)
        repo.set_job_paths(session, job_id, artifact_dir=str(out_dir))
        repo.upsert_worker(session, hostname=rt.hostname, current_job_id=job_id)
    rt.current = attempt
    lease = Lease(attempt, sessions=rt.sessions, stale_after_s=rt.settings.stale_after_s,
                  retry_s=min(1.0, rt.settings.heartbeat_s), stopping=rt.stopping)
    handler: logging.Handler | None = None
    try:
        try:  # before the engine's own error handling: a failure here is still the job's, with its real reason
            out_dir.mkdir(parents=True, exist_ok=True)
            handler = _attach_log(out_dir / "job.log")
        except OSError as exc:
            return _record_failure(lease, exc, rt=rt, enqueue=enqueue)
        return _run_claimed(lease, out_dir=out_dir, rt=rt, enqueue=enqueue, engine_run=engine_run or _engine_run())
    except Superseded as exc:
        log.warning("job %d: %s; this worker stopped it and wrote nothing after learning so", job_id, exc)
        return Outcome("superseded", str(exc))
    finally:  # every exit path, BaseException included: the worker is no longer on this job
        rt.current = None
        if handler is not None:
            logging.getLogger().removeHandler(handler)
            handler.close()
        try:
            with transaction(rt.sessions) as session:
                repo.upsert_worker(session, hostname=rt.hostname, current_job_id=None)
        except SQLAlchemyError as exc:  # the worker heartbeat writes rt.current (None now) on its next beat
            log.warning("could not clear the worker's current job: %s", exc)


def _fenced(rt: WorkerRuntime, lease: Lease, write: Callable[[Session], bool]) -> bool:
    """Run one fenced write of the attempt (``write`` returns whether the fence matched), retrying through a
    database outage; False (and the lease marked lost) when the attempt no longer owns the job."""
    while True:
        if lease.superseded:
            return False
        try:
            with transaction(rt.sessions) as session:
                ok = write(session)
            return lease.renewed(ok)
        except SQLAlchemyError as exc:
            log.warning("job %d: database unavailable (%s); retrying", lease.attempt.job_id, exc)
            time.sleep(lease.retry_s)


def _run_claimed(lease: Lease, *, out_dir: Path, rt: WorkerRuntime, enqueue: Enqueue,
                 engine_run: Callable[..., Any]) -> Outcome:
    job_id, attempt = lease.attempt.job_id, lease.attempt
    with rt.sessions() as session:
        job = repo.get_job(session, job_id)
        assert job is not None
        parent = repo.get_job(session, job.parent_id) if job.parent_id else None
        dataset = repo.get_dataset(session, job.dataset_id) if job.dataset_id is not None else None
        dataset_root = dataset.path if dataset is not None else None
        ancestors = _ancestors(session, parent) if rt.settings.mlflow_tracking_uri else []
    log.info("job %d (%s) attempt %d/%d on %s, code %s", job_id, job.kind, attempt.number, job.max_attempts,
             rt.hostname, rt.code_version)
    tracker = make_tracker(rt.settings.mlflow_tracking_uri, rt.settings.mlflow_experiment, job, ancestors,
                           attempt=attempt.number)
    callback = JobCallback(lease, settings=rt.settings, tracker=tracker)
    stop = StopCheck(lease, poll_s=rt.settings.cancel_poll_s, stopping=rt.stopping)
    try:
        config = build_ml_config(job, parent, dataset_root=dataset_root)
        (out_dir / "job_config.json").write_text(json.dumps(config.model_dump(mode="json"), indent=2))
        with JobHeartbeat(lease, period_s=rt.settings.heartbeat_s):
            result = engine_run(config, out_dir=out_dir, callback=callback, should_stop=stop, resume=True)
    except Superseded:
        raise
    except Exception as exc:  # noqa: BLE001 - every failure is recorded on the job
        callback.flush()
        return _record_failure(lease, exc, rt=rt, enqueue=enqueue, tracker=tracker)
    callback.flush()
    lease.check()  # raises Superseded: a result of a superseded attempt is never recorded
    checkpoint = getattr(result, "checkpoint", None) or (out_dir / "checkpoint.pt")
    checkpoint_path = str(checkpoint) if Path(checkpoint).is_file() else None
    if result.status == "completed":
        results = json.loads(json.dumps(result.results, default=str))
        released: list[int] = []

        def complete(session: Session) -> bool:
            if not repo.transition(session, job_id, to=JobStatus.COMPLETED, expected=[JobStatus.RUNNING],
                                   attempt=attempt, results=results, checkpoint_path=checkpoint_path, progress=1.0,
                                   error=None, cancel_requested=False):
                return False
            repo.complete_dataset_of_job(session, job_id, results)  # a "synthesize" job's dataset becomes ready
            released[:] = repo.release_successors(session, job_id)
            return True

        if not _fenced(rt, lease, complete):
            raise Superseded(lease.lost or "superseded")
        if tracker is not None:  # only now: the fenced completion matched, this attempt's model is the job's
            tracker.finish("FINISHED", checkpoint=Path(checkpoint_path) if checkpoint_path else None, out_dir=out_dir)
        log.info("job %d completed after %s epochs", job_id, result.epochs_completed)
        for successor in released:
            enqueue(successor, 0)
        return Outcome("completed", enqueued=released)
    # stopped: a cancel request, or this worker is shutting down
    if stop.reason == "shutdown":
        if not _fenced(rt, lease, lambda session: repo.transition(
                session, job_id, to=JobStatus.QUEUED, expected=[JobStatus.RUNNING], attempt=attempt,
                attempts=max(0, attempt.number - 1), checkpoint_path=checkpoint_path,
                error="worker shut down; re-queued to resume from the last checkpoint")):
            raise Superseded(lease.lost or "superseded")
        enqueue(job_id, 0)
        log.info("job %d stopped for worker shutdown; re-queued", job_id)
        return Outcome("requeued", "worker shutdown", enqueued=[job_id])

    _end_attempt(rt, lease, to=JobStatus.CANCELLED, tracker=tracker, checkpoint_path=checkpoint_path,
                 cancel_requested=False,
                 error=f"cancelled at epoch {result.epochs_completed}; POST /jobs/{job_id}/resume to continue")
    log.info("job %d cancelled", job_id)
    return Outcome("cancelled")


def failure_reason(exc: BaseException, out_dir: Path) -> str:
    """What the job's owner reads: the exception, or for a full disk (however deep in the chain, e.g. a
    checkpoint write) "no space left on device in <the job's directory>"."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            try:
                free = f"{shutil.disk_usage(out_dir).free / 2**20:.1f} MiB free now"
            except OSError:
                free = "free space unknown"
            return f"no space left on device in {out_dir} ({free}; {type(exc).__name__})"
        seen = seen.__cause__ or seen.__context__
    return f"{type(exc).__name__}: {exc}"


def _record_failure(lease: Lease, exc: BaseException, *, rt: WorkerRuntime, enqueue: Enqueue,
                    tracker: MlflowTracker | None = None) -> Outcome:
    job_id, attempt = lease.attempt.job_id, lease.attempt
    out_dir = rt.settings.job_dir(job_id)
    reason = failure_reason(exc, out_dir)
    log.error("job %d attempt %d failed: %s\n%s", job_id, attempt.number, reason,
              "".join(traceback.format_exception(exc)))
    with rt.sessions() as session:
        job = repo.get_job(session, job_id)
        max_attempts = job.max_attempts if job is not None else attempt.number
    checkpoint = out_dir / "checkpoint.pt"
    ckpt = str(checkpoint) if checkpoint.is_file() else None
    if not is_permanent(exc) and attempt.number < max_attempts:
        delay = rt.settings.retry_backoff_s * (2 ** (attempt.number - 1))
        due = utcnow() + timedelta(seconds=delay)
        if not _fenced(rt, lease, lambda session: repo.transition(
                session, job_id, to=JobStatus.QUEUED, expected=[JobStatus.RUNNING], attempt=attempt,
                checkpoint_path=ckpt, dispatched_at=due,
                error=f"attempt {attempt.number} failed ({reason}); retrying in {delay:.0f}s")):
            raise Superseded(lease.lost or "superseded")
        enqueue(job_id, delay)
        return Outcome("requeued", reason, enqueued=[job_id])
    why = "bad input or config, not retried" if is_permanent(exc) else f"gave up after {attempt.number} attempts"

    _end_attempt(rt, lease, to=JobStatus.FAILED, tracker=tracker, checkpoint_path=ckpt, error=f"{reason} ({why})")
    return Outcome("failed", reason)


def _end_attempt(rt: WorkerRuntime, lease: Lease, *, to: JobStatus, tracker: MlflowTracker | None,
                 **values: Any) -> None:
    """The attempt ends the job as ``to`` (cancelled or failed) with ``values``, and the jobs waiting on it end
    with the reason, in one fenced transaction; Superseded when another attempt owns the job by now."""
    job_id = lease.attempt.job_id
    cancelled = to == JobStatus.CANCELLED

    def end(session: Session) -> bool:
        if not repo.transition(session, job_id, to=to, expected=[JobStatus.RUNNING], attempt=lease.attempt, **values):
            return False
        if cancelled:
            repo.cancel_successors(session, job_id, reason=repo.dependency_cancelled(job_id))
        else:
            repo.fail_successors(session, job_id, reason=repo.dependency_failed(job_id))
        return True

    if not _fenced(rt, lease, end):
        raise Superseded(lease.lost or "superseded")
    if tracker is not None:
        tracker.finish("KILLED" if cancelled else "FAILED")


def _ancestors(session: Session, parent: Job | None) -> list[Job]:
    """The parent, its parent, ... (teacher, source) up to MAX_LINEAGE jobs; nearest first."""
    chain: list[Job] = []
    while parent is not None and len(chain) < MAX_LINEAGE and parent.id not in {j.id for j in chain}:
        chain.append(parent)
        parent = repo.get_job(session, parent.parent_id) if parent.parent_id else None
    return chain


def _attach_log(path: Path) -> logging.Handler:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    return handler
