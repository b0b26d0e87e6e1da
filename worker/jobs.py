"""Load a job, turn its stored config into the ml config, run ml.engine, record the outcome.

Plain functions (no Celery) so tests call them directly; worker.tasks wraps them.
"""

from __future__ import annotations

import copy
import json
import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from persistence import repo
from persistence.models import Job
from persistence.session import transaction
from persistence.status import JobStatus
from worker.progress import JobCallback, JobHeartbeat, StopCheck
from worker.runtime import WorkerRuntime

log = logging.getLogger("worker.job")

Enqueue = Callable[[int, float], None]  # (job_id, countdown seconds)

# where a parent's checkpoint goes in each kind's ml config
PARENT_FIELD: dict[str, tuple[str, ...]] = {
    "distill": ("distill", "teacher_checkpoint"),
    "finetune": ("source_checkpoint",),
    "evaluate": ("checkpoint",),
}


class JobConfigError(Exception):
    """The job cannot run as configured; it fails without retry."""


@dataclass
class Outcome:
    status: str  # completed | cancelled | failed | requeued | skipped
    detail: str = ""
    enqueued: list[int] = field(default_factory=list)


def config_class(kind: str) -> Any:
    from ml.config import FinetuneConfig, PretrainConfig, RetrieveConfig
    from ml.synthetic_spec import SYNTHESIZE, SynthesizeConfig

    return {"pretrain": PretrainConfig, "distill": PretrainConfig, "finetune": FinetuneConfig,
            "evaluate": RetrieveConfig, SYNTHESIZE: SynthesizeConfig}[kind]


def build_ml_config(job: Job, parent: Job | None) -> Any:
    """The job's stored ml config with the parent's final checkpoint filled in, validated."""
    data = copy.deepcopy(job.config)
    if parent is not None and job.kind in PARENT_FIELD:
        ckpt = parent.checkpoint_path
        if parent.status != JobStatus.COMPLETED or not ckpt or not Path(ckpt).is_file():
            raise JobConfigError(f"job {parent.id} ({parent.kind}) has no finished checkpoint "
                                 f"(status {parent.status.value}, checkpoint {ckpt!r})")
        *path, leaf = PARENT_FIELD[job.kind]
        node = data
        for key in path:
            node = node.setdefault(key, {})
        node[leaf] = ckpt
    try:
        return config_class(job.kind).model_validate(data)
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
        if not repo.claim_job(session, job_id, worker=rt.hostname, code_version=rt.code_version):
            return Outcome("skipped", f"job {job_id} was taken by another worker")
        out_dir = rt.settings.job_dir(job_id)
        repo.set_job_paths(session, job_id, artifact_dir=str(out_dir))
        repo.upsert_worker(session, hostname=rt.hostname, current_job_id=job_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    handler = _attach_log(out_dir / "job.log")
    try:
        return _run_claimed(job_id, out_dir=out_dir, rt=rt, enqueue=enqueue, engine_run=engine_run or _engine_run())
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
        with transaction(rt.sessions) as session:
            repo.upsert_worker(session, hostname=rt.hostname, current_job_id=None)


def _run_claimed(job_id: int, *, out_dir: Path, rt: WorkerRuntime, enqueue: Enqueue,
                 engine_run: Callable[..., Any]) -> Outcome:
    with rt.sessions() as session:
        job = repo.get_job(session, job_id)
        assert job is not None
        parent = repo.get_job(session, job.parent_id) if job.parent_id else None
        attempt, max_attempts = job.attempts, job.max_attempts
    log.info("job %d (%s) attempt %d/%d on %s, code %s", job_id, job.kind, attempt, max_attempts,
             rt.hostname, rt.code_version)
    callback = JobCallback(job_id, sessions=rt.sessions, settings=rt.settings)
    stop = StopCheck(job_id, sessions=rt.sessions, poll_s=rt.settings.cancel_poll_s, stopping=rt.stopping)
    try:
        config = build_ml_config(job, parent)
        (out_dir / "job_config.json").write_text(json.dumps(config.model_dump(mode="json"), indent=2))
        with JobHeartbeat(job_id, sessions=rt.sessions, worker=rt.hostname, period_s=rt.settings.heartbeat_s):
            result = engine_run(config, out_dir=out_dir, callback=callback, should_stop=stop, resume=True)
    except Exception as exc:  # noqa: BLE001 - every failure is recorded on the job
        callback.flush()
        return _record_failure(job_id, exc, attempt=attempt, max_attempts=max_attempts, rt=rt, enqueue=enqueue)
    callback.flush()
    checkpoint = getattr(result, "checkpoint", None) or (out_dir / "checkpoint.pt")
    checkpoint_path = str(checkpoint) if Path(checkpoint).is_file() else None
    if result.status == "completed":
        results = json.loads(json.dumps(result.results, default=str))
        with transaction(rt.sessions) as session:
            repo.transition(session, job_id, to=JobStatus.COMPLETED, expected=[JobStatus.RUNNING], results=results,
                            checkpoint_path=checkpoint_path, progress=1.0, error=None, cancel_requested=False)
            repo.complete_dataset_of_job(session, job_id, results)  # a "synthesize" job's dataset becomes ready
            released = repo.release_successors(session, job_id)
        log.info("job %d completed after %s epochs", job_id, result.epochs_completed)
        for successor in released:
            enqueue(successor, 0)
        return Outcome("completed", enqueued=released)
    # stopped: a cancel request, or this worker is shutting down
    if stop.reason == "shutdown":
        with transaction(rt.sessions) as session:
            repo.transition(session, job_id, to=JobStatus.QUEUED, expected=[JobStatus.RUNNING],
                            attempts=max(0, attempt - 1), checkpoint_path=checkpoint_path,
                            error="worker shut down; re-queued to resume from the last checkpoint")
        enqueue(job_id, 0)
        log.info("job %d stopped for worker shutdown; re-queued", job_id)
        return Outcome("requeued", "worker shutdown", enqueued=[job_id])
    with transaction(rt.sessions) as session:
        repo.transition(session, job_id, to=JobStatus.CANCELLED, expected=[JobStatus.RUNNING],
                        checkpoint_path=checkpoint_path, cancel_requested=False,
                        error=f"cancelled at epoch {result.epochs_completed}; POST /jobs/{job_id}/resume to continue")
        repo.cancel_successors(session, job_id, reason=repo.dependency_cancelled(job_id))
    log.info("job %d cancelled", job_id)
    return Outcome("cancelled")


def _record_failure(job_id: int, exc: BaseException, *, attempt: int, max_attempts: int, rt: WorkerRuntime,
                    enqueue: Enqueue) -> Outcome:
    reason = f"{type(exc).__name__}: {exc}"
    log.error("job %d attempt %d failed: %s\n%s", job_id, attempt, reason, traceback.format_exc())
    checkpoint = rt.settings.job_dir(job_id) / "checkpoint.pt"
    ckpt = str(checkpoint) if checkpoint.is_file() else None
    if not is_permanent(exc) and attempt < max_attempts:
        delay = rt.settings.retry_backoff_s * (2 ** (attempt - 1))
        with transaction(rt.sessions) as session:
            repo.transition(session, job_id, to=JobStatus.QUEUED, expected=[JobStatus.RUNNING], checkpoint_path=ckpt,
                            error=f"attempt {attempt} failed ({reason}); retrying in {delay:.0f}s")
        enqueue(job_id, delay)
        return Outcome("requeued", reason, enqueued=[job_id])
    why = "bad input or config, not retried" if is_permanent(exc) else f"gave up after {attempt} attempts"
    with transaction(rt.sessions) as session:
        repo.transition(session, job_id, to=JobStatus.FAILED, expected=[JobStatus.RUNNING], checkpoint_path=ckpt,
                        error=f"{reason} ({why})")
        repo.fail_successors(session, job_id, reason=repo.dependency_failed(job_id))
    return Outcome("failed", reason)


def _attach_log(path: Path) -> logging.Handler:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    return handler
