"""Use-case functions over the tables. Keyword-only past the session; the caller owns the transaction.

Status changes go through guarded ``UPDATE ... WHERE status IN (...)`` so two processes racing on a job
(a redelivered message, two workers reclaiming the same stale job) cannot both win. Every write a worker
makes for a running job is fenced by its :class:`Attempt` (job id, attempt number, worker name) in the same
statement or transaction: once a job is reclaimed and started again, the old attempt's writes match nothing.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar, cast

from sqlalchemy import Table, and_, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from persistence.base import utcnow
from persistence.models import (TOKEN_SCOPES, ApiToken, Dataset, Experiment, ExperimentJob, Job, Metric, TokenScope,
                                Worker)
from persistence.status import TERMINAL, JobStatus, check_transition, sources_for

_Row = TypeVar("_Row", Dataset, Experiment)

# ---------------------------------------------------------------- datasets


def create_dataset(session: Session, *, name: str, path: str, split: int = 1, subset: float = 1.0,
                   synthetic: bool = False, classes: Sequence[str] = (), counts: dict[str, Any] | None = None,
                   problems: Sequence[dict[str, Any]] = (), fingerprint: str | None = None,
                   frames: dict[str, Any] | None = None, job_id: int | None = None) -> Dataset:
    row = Dataset(name=name, path=path, split=split, subset=subset, synthetic=synthetic, classes=list(classes),
                  counts=dict(counts or {}), problems=list(problems), fingerprint=fingerprint, frames=frames,
                  job_id=job_id)
    session.add(row)
    session.flush()
    return row


def get_dataset(session: Session, dataset_id: int) -> Dataset | None:
    return session.get(Dataset, dataset_id)


def same_dataset(session: Session, *, path: str, split: int, subset: float, fingerprint: str | None) -> Dataset | None:
    """The dataset already registered for this folder with the same split, subset and contents (fingerprint)."""
    if fingerprint is None:
        return None
    return session.scalars(select(Dataset).where(Dataset.path == path, Dataset.split == split,
                                                 Dataset.subset == subset, Dataset.fingerprint == fingerprint)
                           .order_by(Dataset.id).limit(1)).first()


def unfinished_jobs_of_kind(session: Session, kind: str) -> list[Job]:
    return list(session.scalars(select(Job).where(Job.kind == kind, Job.status.in_(
        [JobStatus.QUEUED, JobStatus.WAITING, JobStatus.RUNNING]))))


def complete_dataset_of_job(session: Session, job_id: int, results: dict[str, Any]) -> Dataset | None:
    """Fill in the dataset a job generated (created up front, pending) from the job's results; None if none."""
    row = session.scalar(select(Dataset).where(Dataset.job_id == job_id))
    if row is None:
        return None
    row.classes = list(results.get("classes", []))
    row.counts = dict(results.get("counts", {}))
    row.frames = results.get("frames")
    row.problems = list(results.get("problems", []))
    row.fingerprint = results.get("fingerprint")
    session.flush()
    return row


def _newest_first(session: Session, model: type[_Row], *, offset: int, limit: int) -> tuple[list[_Row], int]:
    """One page of ``model`` rows, newest first, and the total count."""
    count = session.scalar(select(func.count()).select_from(model)) or 0
    rows = session.scalars(select(model).order_by(model.id.desc()).offset(offset).limit(limit)).all()
    return list(rows), count


def list_datasets(session: Session, *, offset: int = 0, limit: int = 100) -> tuple[list[Dataset], int]:
    return _newest_first(session, Dataset, offset=offset, limit=limit)


# ---------------------------------------------------------------- jobs


def create_job(session: Session, *, kind: str, request: dict[str, Any], config: dict[str, Any], config_hash: str,
               dataset_id: int | None, name: str | None = None, parent_id: int | None = None,
               after_id: int | None = None, retry_of: int | None = None, idempotency_key: str | None = None,
               max_attempts: int = 3, status: JobStatus = JobStatus.QUEUED) -> Job:
    now = utcnow()
    row = Job(kind=kind, name=name, status=status, request=request, config=config, config_hash=config_hash,
              dataset_id=dataset_id, parent_id=parent_id, after_id=after_id, retry_of=retry_of,
              idempotency_key=idempotency_key, max_attempts=max_attempts, attempts=0, cancel_requested=False,
              progress=0.0, epoch=0, step=0, created_at=now, updated_at=now,
              queued_at=now if status == JobStatus.QUEUED else None,
              dispatched_at=now if status == JobStatus.QUEUED else None)
    session.add(row)
    session.flush()
    return row


def set_job_paths(session: Session, job_id: int, *, artifact_dir: str, config: dict[str, Any] | None = None) -> None:
    values: dict[str, Any] = {"artifact_dir": artifact_dir, "updated_at": utcnow()}
    if config is not None:
        values["config"] = config
    session.execute(update(Job).where(Job.id == job_id).values(**values).execution_options(synchronize_session=False))


def get_job(session: Session, job_id: int) -> Job | None:
    return session.get(Job, job_id, populate_existing=True)


def job_children(session: Session, job_id: int) -> list[Job]:
    """Jobs that take ``job_id`` as their parent (teacher/source) or wait on it, oldest first."""
    return list(session.scalars(select(Job).where((Job.parent_id == job_id) | (Job.after_id == job_id))
                                .order_by(Job.id)))


def completed_jobs_of_kind(session: Session, kind: str) -> list[Job]:
    return list(session.scalars(select(Job).where(Job.kind == kind, Job.status == JobStatus.COMPLETED)))


def ping(session: Session) -> None:
    """One round trip to the database (raises when it is unreachable)."""
    session.execute(text("SELECT 1"))


def job_by_idempotency_key(session: Session, key: str) -> Job | None:
    return session.scalar(select(Job).where(Job.idempotency_key == key))


def list_jobs(session: Session, *, kind: str | None = None, status: JobStatus | None = None,
              dataset_id: int | None = None, offset: int = 0, limit: int = 50) -> tuple[list[Job], int]:
    conds = []
    if kind:
        conds.append(Job.kind == kind)
    if status:
        conds.append(Job.status == status)
    if dataset_id is not None:
        conds.append(Job.dataset_id == dataset_id)
    count = session.scalar(select(func.count()).select_from(Job).where(*conds)) or 0
    rows = session.scalars(select(Job).where(*conds).order_by(Job.id.desc()).offset(offset).limit(limit)).all()
    return list(rows), count


def queue_position(session: Session, job: Job) -> int | None:
    """1 for the next job a free worker takes; None unless queued."""
    if job.status != JobStatus.QUEUED or job.queued_at is None:
        return None
    ahead = session.scalar(
        select(func.count()).select_from(Job).where(
            Job.status == JobStatus.QUEUED,
            or_(Job.queued_at < job.queued_at, and_(Job.queued_at == job.queued_at, Job.id < job.id)),
        )
    ) or 0
    return ahead + 1


def transition(session: Session, job_id: int, *, to: JobStatus, expected: Iterable[JobStatus] | None = None,
               attempt: Attempt | None = None, where: Sequence[Any] = (), **values: Any) -> bool:
    """Move a job to ``to`` if its status is in ``expected`` (default: every status allowed to reach ``to``),
    and, given ``attempt``, only while that attempt owns it; ``where``: more guard conditions.

    Returns False when another process changed it first. Extra keyword arguments are column values.
    """
    sources = frozenset(expected) if expected is not None else sources_for(to)
    for old in sources:
        check_transition(old, to)
    now = utcnow()
    values.setdefault("updated_at", now)
    if to == JobStatus.QUEUED:
        values.setdefault("queued_at", now)
        values.setdefault("dispatched_at", now)  # the caller sends the message right after commit
    if to.is_terminal:
        values.setdefault("finished_at", now)
    fence = attempt.owns() if attempt is not None else []
    if attempt is not None and attempt.job_id != job_id:
        raise ValueError(f"attempt of job {attempt.job_id} used on job {job_id}")
    stmt = (update(Job).where(Job.id == job_id, Job.status.in_(sources), *fence, *where).values(status=to, **values)
            .execution_options(synchronize_session=False))
    return bool(session.execute(stmt).rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Attempt:
    """The fencing token of one run of a job: valid while the job is running as this attempt on this worker."""

    job_id: int
    number: int
    worker: str

    def owns(self) -> list[Any]:
        """WHERE conditions that hold only while this attempt still owns the job."""
        return [Job.id == self.job_id, Job.status == JobStatus.RUNNING, Job.attempts == self.number,
                Job.worker == self.worker]


def claim_job(session: Session, job_id: int, *, worker: str, code_version: str | None) -> Attempt | None:
    """queued -> running, one attempt more; None when the job is not queued (already taken, finished...).

    The previous attempt's error (a lost worker, a retried failure) is cleared: this attempt is the news now."""
    now = utcnow()
    if not transition(session, job_id, to=JobStatus.RUNNING, expected=[JobStatus.QUEUED], worker=worker,
                      code_version=code_version, started_at=now, heartbeat_at=now, finished_at=None, error=None,
                      attempts=Job.attempts + 1):
        return None
    number = session.scalar(select(Job.attempts).where(Job.id == job_id))
    return Attempt(job_id, int(number or 0), worker)


def owner(session: Session, job_id: int) -> tuple[JobStatus, int, str | None] | None:
    """(status, attempts, worker) of a job: who holds it now, for the log of a superseded attempt."""
    row = session.execute(select(Job.status, Job.attempts, Job.worker).where(Job.id == job_id)).first()
    return (JobStatus(row[0]), int(row[1]), row[2]) if row is not None else None


def heartbeat_job(session: Session, attempt: Attempt) -> bool:
    """Stamp the job's heartbeat; False when ``attempt`` no longer owns the job (it must stop)."""
    res = session.execute(update(Job).where(*attempt.owns()).values(heartbeat_at=utcnow())
                          .execution_options(synchronize_session=False))
    return bool(res.rowcount)  # type: ignore[attr-defined]


def update_progress(session: Session, attempt: Attempt, **values: Any) -> bool:
    """Progress, epoch, step, device, total_epochs, steps_per_epoch, checkpoint_path... of a running job;
    False (nothing written) when ``attempt`` no longer owns it. Also stamps the heartbeat."""
    values["heartbeat_at"] = values["updated_at"] = utcnow()
    res = session.execute(update(Job).where(*attempt.owns()).values(**values)
                          .execution_options(synchronize_session=False))
    return bool(res.rowcount)  # type: ignore[attr-defined]


def record_progress(session: Session, attempt: Attempt, rows: Sequence[dict[str, Any]], **progress: Any) -> bool:
    """One fenced write of a running attempt: progress (and heartbeat) first, then its metric rows, only if the
    attempt still owns the job. The UPDATE locks the job row until commit, so a reclaim cannot slip between
    the check and the insert. False: superseded, nothing written."""
    if not update_progress(session, attempt, **progress):
        return False
    add_metrics(session, attempt.job_id, rows, attempt=attempt.number)
    return True


def cancel_requested(session: Session, job_id: int) -> bool:
    return bool(session.scalar(select(Job.cancel_requested).where(Job.id == job_id)))


def poll_attempt(session: Session, attempt: Attempt) -> tuple[bool, bool]:
    """(still owns the job, cancel requested) for a running attempt, in one read."""
    flag = session.scalar(select(Job.cancel_requested).where(*attempt.owns()))
    return flag is not None, bool(flag)


def request_cancel(session: Session, job_id: int) -> JobStatus | None:
    """Queued/waiting jobs are cancelled now; a running job gets the cooperative flag. Returns the new status."""
    job = get_job(session, job_id)
    if job is None:
        return None
    if transition(session, job_id, to=JobStatus.CANCELLED, expected=[JobStatus.QUEUED, JobStatus.WAITING],
                  error="cancelled before it started"):
        cancel_successors(session, job_id, reason=dependency_cancelled(job_id))
        return JobStatus.CANCELLED
    session.execute(update(Job).where(Job.id == job_id, Job.status == JobStatus.RUNNING)
                    .values(cancel_requested=True, updated_at=utcnow()).execution_options(synchronize_session=False))
    job = get_job(session, job_id)
    return job.status if job else None


def resume_job(session: Session, job_id: int, *, extra_attempts: int) -> bool:
    """failed/cancelled -> queued; the worker resumes from the last checkpoint."""
    job = get_job(session, job_id)
    if job is None:
        return False
    return transition(session, job_id, to=JobStatus.QUEUED, expected=[JobStatus.FAILED, JobStatus.CANCELLED],
                      cancel_requested=False, error=None, finished_at=None,
                      max_attempts=job.attempts + extra_attempts)


def successors(session: Session, job_id: int, *, status: JobStatus = JobStatus.WAITING) -> list[Job]:
    return list(session.scalars(select(Job).where(Job.after_id == job_id, Job.status == status).order_by(Job.id)))


def release_successors(session: Session, job_id: int) -> list[int]:
    """waiting -> queued for the jobs chained after ``job_id``; returns the ids to enqueue."""
    return [j.id for j in successors(session, job_id)
            if transition(session, j.id, to=JobStatus.QUEUED, expected=[JobStatus.WAITING])]


def abandon_successors(session: Session, job_id: int, *, to: JobStatus, reason: str) -> list[int]:
    """Waiting jobs that depend on ``job_id`` (and theirs, transitively) become ``to`` (failed or cancelled)
    with ``reason``; returns their ids. Called when the dependency fails or is cancelled."""
    what = "failed" if to == JobStatus.FAILED else "was cancelled"
    done: list[int] = []
    for j in successors(session, job_id):
        if transition(session, j.id, to=to, expected=[JobStatus.WAITING], error=reason):
            done.append(j.id)
            done += abandon_successors(session, j.id, to=to, reason=f"dependency job {j.id} {what} "
                                                                   f"(it waited on job {job_id}: {reason})")
    return done


def revive_successors(session: Session, job_id: int) -> list[int]:
    """Undo :func:`abandon_successors` when ``job_id`` is resumed: jobs that never started and ended only because
    it failed or was cancelled wait on it again (and theirs, transitively); returns their ids."""
    done: list[int] = []
    for ended in (JobStatus.FAILED, JobStatus.CANCELLED):
        for j in successors(session, job_id, status=ended):
            abandoned = j.attempts == 0 and (j.error or "").startswith(f"dependency job {job_id} ")
            if abandoned and transition(session, j.id, to=JobStatus.WAITING, expected=[ended], error=None, finished_at=None):
                done.append(j.id)
                done += revive_successors(session, j.id)
    return done


def cancel_successors(session: Session, job_id: int, *, reason: str) -> list[int]:
    return abandon_successors(session, job_id, to=JobStatus.CANCELLED, reason=reason)


def fail_successors(session: Session, job_id: int, *, reason: str) -> list[int]:
    return abandon_successors(session, job_id, to=JobStatus.FAILED, reason=reason)


def dependency_failed(job_id: int) -> str:
    return (f"dependency job {job_id} failed; resume it (POST /jobs/{job_id}/resume) and this job waits on it "
            f"again, or retry this job after fixing it")


def dependency_cancelled(job_id: int) -> str:
    return f"dependency job {job_id} was cancelled; resume it (POST /jobs/{job_id}/resume) and this job waits on it again"


@dataclass
class Reclaimed:
    requeued: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


def _reclaim(session: Session, jobs: Sequence[Job], *, why: str, cutoff: Any) -> Reclaimed:
    out = Reclaimed()
    for job in jobs:
        # fenced by what was read: the same attempt of the same worker, still without a fresh heartbeat
        same = Job.worker == job.worker if job.worker is not None else Job.worker.is_(None)
        guard: dict[str, Any] = {"expected": [JobStatus.RUNNING], "where": [
            Job.attempts == job.attempts, same, or_(Job.heartbeat_at < cutoff, Job.heartbeat_at.is_(None))]}
        if job.attempts >= job.max_attempts:
            if transition(session, job.id, to=JobStatus.FAILED, **guard,
                          error=f"{why} on attempt {job.attempts} of {job.max_attempts}; "
                                f"POST /jobs/{job.id}/resume to continue from the last checkpoint"):
                fail_successors(session, job.id, reason=dependency_failed(job.id))
                out.failed.append(job.id)
        elif transition(session, job.id, to=JobStatus.QUEUED, **guard,
                        error=f"{why} on attempt {job.attempts}; re-queued to resume from the last checkpoint"):
            out.requeued.append(job.id)
    return out


def reclaim_stale(session: Session, *, stale_after_s: float, keep: Iterable[Attempt] = (),
                  worker: str | None = None) -> Reclaimed:
    """Running jobs whose heartbeat stopped: re-queue them, or fail them after max_attempts starts.

    Never by worker name alone: only a heartbeat older than ``stale_after_s`` makes a job reclaimable.
    ``keep``: attempts the caller is running itself (a worker never reclaims its own job, however late its
    heartbeat after a pause); ``worker``: only that worker's jobs (a restarted worker's previous life)."""
    cutoff = utcnow() - timedelta(seconds=stale_after_s)
    conds = [Job.status == JobStatus.RUNNING, or_(Job.heartbeat_at < cutoff, Job.heartbeat_at.is_(None))]
    if worker is not None:
        conds.append(Job.worker == worker)
    mine = {(a.job_id, a.number, a.worker) for a in keep}
    jobs = [j for j in session.scalars(select(Job).where(*conds)).all() if (j.id, j.attempts, j.worker) not in mine]
    return _reclaim(session, jobs, why=f"worker lost (no heartbeat for {stale_after_s:.0f}s)", cutoff=cutoff)


def redispatch_lost(session: Session, *, grace_s: float, stale_after_s: float) -> list[int]:
    """Queued jobs whose message was sent over ``grace_s`` ago while a live worker sits idle: the broker lost it
    (a Redis restart without persistence, an API killed between commit and send). Marks them sent again and
    returns their ids; the caller re-sends after commit. A duplicate message is harmless: the claim is a
    guarded queued -> running UPDATE, so a second message for the same job finds it taken and does nothing."""
    now = utcnow()
    idle = (select(Worker.hostname).where(Worker.current_job_id.is_(None), Worker.stopped_at.is_(None),
                                          Worker.heartbeat_at >= now - timedelta(seconds=stale_after_s))
            .limit(1))
    if session.scalar(idle) is None:
        return []  # every live worker is busy (its queue is simply waiting), or none is alive to run anything
    cutoff = now - timedelta(seconds=grace_s)
    sent = func.coalesce(Job.dispatched_at, Job.queued_at, Job.created_at)
    ids = session.scalars(select(Job.id).where(Job.status == JobStatus.QUEUED, sent < cutoff)
                          .order_by(Job.queued_at, Job.id)).all()
    out: list[int] = []
    for job_id in ids:  # guarded so two sweepers do not both re-send
        res = session.execute(update(Job).where(Job.id == job_id, Job.status == JobStatus.QUEUED, sent < cutoff)
                              .values(dispatched_at=now).execution_options(synchronize_session=False))
        if res.rowcount:  # type: ignore[attr-defined]
            out.append(job_id)
    return out


# ---------------------------------------------------------------- experiments


def create_experiment(session: Session, *, name: str, dataset_id: int, grid: str,
                      request: dict[str, Any]) -> Experiment:
    row = Experiment(name=name, dataset_id=dataset_id, grid=grid, request=request, created_at=utcnow())
    session.add(row)
    session.flush()
    return row


def add_experiment_job(session: Session, *, experiment_id: int, job_id: int, role: str, backbone: str,
                       teacher_backbone: str | None = None, fraction: float = 1.0, seed: int = 0) -> ExperimentJob:
    row = ExperimentJob(experiment_id=experiment_id, job_id=job_id, role=role, backbone=backbone,
                        teacher_backbone=teacher_backbone, fraction=fraction, seed=seed)
    session.add(row)
    session.flush()
    return row


def get_experiment(session: Session, experiment_id: int) -> Experiment | None:
    return session.get(Experiment, experiment_id)


def list_experiments(session: Session, *, offset: int = 0, limit: int = 50) -> tuple[list[Experiment], int]:
    return _newest_first(session, Experiment, offset=offset, limit=limit)


def experiment_jobs(session: Session, experiment_id: int) -> list[tuple[ExperimentJob, Job]]:
    """The experiment's jobs in submission order, each with its role row."""
    rows = session.execute(select(ExperimentJob, Job).join(Job, Job.id == ExperimentJob.job_id)
                           .where(ExperimentJob.experiment_id == experiment_id).order_by(Job.id))
    return [(e, j) for e, j in rows.tuples()]


def cancel_experiment(session: Session, experiment_id: int) -> dict[int, JobStatus | None]:
    """``request_cancel`` for every unfinished job of the experiment; returns {job id: its status now}.

    Latest job first: a job's dependents (students, fine-tunes) were created after it, so they are cancelled
    before it and a job that completes meanwhile finds no waiting successor to release.
    """
    ids = session.scalars(select(Job.id).join(ExperimentJob, ExperimentJob.job_id == Job.id)
                          .where(ExperimentJob.experiment_id == experiment_id, Job.status.not_in(TERMINAL))
                          .order_by(Job.id.desc())).all()
    return {job_id: request_cancel(session, job_id) for job_id in ids}


def experiment_status_counts(session: Session, experiment_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """{experiment id: {job status: count}} in one query."""
    out: dict[int, dict[str, int]] = {i: {} for i in experiment_ids}
    if not experiment_ids:
        return out
    rows = session.execute(select(ExperimentJob.experiment_id, Job.status, func.count())
                           .join(Job, Job.id == ExperimentJob.job_id)
                           .where(ExperimentJob.experiment_id.in_(list(experiment_ids)))
                           .group_by(ExperimentJob.experiment_id, Job.status))
    for exp_id, st, n in rows:
        out[exp_id][JobStatus(st).value] = int(n)
    return out


# ---------------------------------------------------------------- metrics


def add_metrics(session: Session, job_id: int, rows: Sequence[dict[str, Any]], *, attempt: int = 0) -> None:
    """Upsert ``{name, step, epoch, value, time}`` rows: one row per (job, name, step), the latest value wins, so
    a flush retried after an error whose commit did land, or a step re-run after a resume, never doubles a row.
    Unfenced: workers go through :func:`record_progress`."""
    latest: dict[tuple[str, int], dict[str, Any]] = {}
    for r in rows:
        latest[(r["name"], int(r["step"]))] = {**r, "job_id": job_id, "attempt": attempt}
    if not latest:
        return
    table = cast(Table, Metric.__table__)
    dialect = session.get_bind().dialect.name
    stmt: Any
    if dialect == "postgresql":
        stmt = pg_insert(table)
    elif dialect == "sqlite":
        stmt = sqlite_insert(table)
    else:  # pragma: no cover - the two supported databases
        raise NotImplementedError(f"metrics upsert on {dialect}")
    stmt = stmt.on_conflict_do_update(
        index_elements=["job_id", "name", "step"],
        set_={"epoch": stmt.excluded.epoch, "value": stmt.excluded.value, "time": stmt.excluded.time,
              "attempt": stmt.excluded.attempt})
    session.execute(stmt, list(latest.values()))


def epochs_with_metrics(session: Session, job_id: int, *, prefix: str) -> set[int]:
    """Epochs that have at least one metric named ``prefix...`` stored for the job."""
    return set(session.scalars(select(Metric.epoch).where(Metric.job_id == job_id, Metric.name.startswith(prefix))
                               .distinct()))


def metric_series(session: Session, job_id: int, *, names: Sequence[str] | None = None, since_step: int = 0,
                  max_points: int = 1000) -> dict[str, list[dict[str, Any]]]:
    """Per name at most ``max_points`` points: steps bucketed evenly over the name's range, last point kept.

    One SQL statement; integer bucket arithmetic renders alike on SQLite and PostgreSQL.
    """
    m = Metric.__table__
    x = m.alias("x")
    rng_conds = [m.c.job_id == job_id, m.c.step >= since_step]
    if names:
        rng_conds.append(m.c.name.in_(list(names)))
    r = (select(m.c.name, func.min(m.c.step).label("lo"), func.max(m.c.step).label("hi"))
         .where(*rng_conds).group_by(m.c.name).subquery("r"))
    bucket = ((x.c.step - r.c.lo) * max_points) // (r.c.hi - r.c.lo + 1)
    last_ids = (select(func.max(x.c.id)).select_from(x.join(r, r.c.name == x.c.name))
                .where(x.c.job_id == job_id, x.c.step >= since_step).group_by(x.c.name, bucket))
    rows = session.execute(select(m.c.name, m.c.step, m.c.epoch, m.c.value, m.c.time)
                           .where(m.c.id.in_(last_ids)).order_by(m.c.name, m.c.step, m.c.id))
    out: dict[str, list[dict[str, Any]]] = {}
    for name, step, epoch, value, t in rows:
        out.setdefault(name, []).append({"step": step, "epoch": epoch, "value": value, "time": t})
    return out


def last_metric_id(session: Session, job_id: int) -> int:
    """The job's newest metric row id (0 when none): a cursor for metrics_after."""
    return int(session.scalar(select(func.max(Metric.id)).where(Metric.job_id == job_id)) or 0)


def metrics_after(session: Session, job_id: int, *, after_id: int, limit: int = 500) -> list[Metric]:
    return list(session.scalars(select(Metric).where(Metric.job_id == job_id, Metric.id > after_id)
                                .order_by(Metric.id).limit(limit)))


# ---------------------------------------------------------------- workers


_KEEP: Any = object()


def upsert_worker(session: Session, *, hostname: str, device: str | None = None, pid: int | None = None,
                  code_version: str | None = None, current_job_id: int | None = _KEEP, starting: bool = False) -> None:
    """Stamp a worker's heartbeat (creating its row); ``current_job_id`` is left alone unless given."""
    now = utcnow()
    row = session.get(Worker, hostname)
    if row is None:
        session.add(Worker(hostname=hostname, device=device, pid=pid, code_version=code_version,
                           current_job_id=None if current_job_id is _KEEP else current_job_id,
                           started_at=now, heartbeat_at=now))
        session.flush()
        return
    row.heartbeat_at = now
    if current_job_id is not _KEEP:
        row.current_job_id = current_job_id
    row.stopped_at = None
    if device is not None:
        row.device = device
    if pid is not None:
        row.pid = pid
    if code_version is not None:
        row.code_version = code_version
    if starting:
        row.started_at = now
    session.flush()


def mark_worker_stopped(session: Session, *, hostname: str) -> None:
    session.execute(update(Worker).where(Worker.hostname == hostname)
                    .values(stopped_at=utcnow(), current_job_id=None).execution_options(synchronize_session=False))


def live_workers(session: Session, *, stale_after_s: float) -> list[Worker]:
    cutoff = utcnow() - timedelta(seconds=stale_after_s)
    return list(session.scalars(select(Worker).where(Worker.heartbeat_at >= cutoff, Worker.stopped_at.is_(None))
                                .order_by(Worker.hostname)))


# ---------------------------------------------------------------- api tokens


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def create_token(session: Session, *, name: str, scope: TokenScope = "submit",
                 expires_at: datetime | None = None) -> tuple[ApiToken, str]:
    """A new token; the raw value is returned once and only its sha256 is stored."""
    if scope not in TOKEN_SCOPES:
        raise ValueError(f"scope must be one of {', '.join(TOKEN_SCOPES)}, not {scope!r}")
    raw = "kdv_" + secrets.token_urlsafe(32)
    row = ApiToken(name=name, token_hash=hash_token(raw), scope=scope, expires_at=expires_at, revoked=False)
    session.add(row)
    session.flush()
    return row, raw


TokenState = Literal["active", "revoked", "expired"]


def token_state(token: ApiToken, now: datetime | None = None) -> TokenState:
    if token.revoked:
        return "revoked"
    if token.expires_at is not None and token.expires_at <= (now or utcnow()):
        return "expired"
    return "active"


def scope_allows(granted: str, needed: str) -> bool:
    """admin includes submit includes read (TOKEN_SCOPES is ordered); an unknown scope allows nothing."""
    if granted not in TOKEN_SCOPES or needed not in TOKEN_SCOPES:
        return False
    return TOKEN_SCOPES.index(granted) >= TOKEN_SCOPES.index(needed)


def find_token(session: Session, raw: str) -> ApiToken | None:
    """The token with this value in any state (the caller tells revoked and expired apart with token_state)."""
    return session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(raw)))


def touch_token(session: Session, token: ApiToken, *, every_s: float = 60.0) -> bool:
    """Record a use, at most once a minute per token (reads would otherwise write on every request)."""
    now = utcnow()
    if token.last_used_at is not None and (now - token.last_used_at).total_seconds() < every_s:
        return False
    token.last_used_at = now
    return True


def verify_token(session: Session, raw: str) -> ApiToken | None:
    """The active token with this value (not revoked, not expired), its use recorded; else None."""
    row = find_token(session, raw)
    if row is None or token_state(row) != "active":
        return None
    touch_token(session, row)
    return row


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.id)))


def revoke_token(session: Session, *, name: str | None = None, token_id: int | None = None) -> int:
    """Revoke every token with this name, or the one with this id; returns how many."""
    if (name is None) == (token_id is None):
        raise ValueError("give a name or an id")
    which = ApiToken.name == name if name is not None else ApiToken.id == token_id
    res = session.execute(update(ApiToken).where(which).values(revoked=True)
                          .execution_options(synchronize_session=False))
    return int(res.rowcount)  # type: ignore[attr-defined]
