"""What the operations view (Prometheus /metrics) reads from the database: three cheap queries at scrape time.

* job counts by kind and status (a GROUP BY on the indexed status column);
* the running jobs with their progress and latest training throughput (the newest ``clips_per_s`` metric row
  of each, found through the (job_id, name, step) unique index, newest step first);
* the workers that have not stopped, with their heartbeat and current job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from persistence.models import Job, Metric, Worker
from persistence.status import JobStatus

THROUGHPUT_METRIC = "clips_per_s"  # the step metric ml.engine logs (training clips per second)
MAX_ROWS = 500  # running jobs / workers listed at most (the scrape stays bounded however many there are)


@dataclass(frozen=True)
class RunningJob:
    id: int
    kind: str
    worker: str | None
    progress: float
    epoch: int
    clips_per_s: float | None


@dataclass(frozen=True)
class WorkerRow:
    hostname: str
    heartbeat_at: datetime
    current_job_id: int | None


@dataclass
class OpsSnapshot:
    jobs: dict[tuple[str, str], int] = field(default_factory=dict)  # (kind, status) -> count
    running: list[RunningJob] = field(default_factory=list)
    workers: list[WorkerRow] = field(default_factory=list)

    @property
    def queue_depth(self) -> int:
        return sum(n for (_, status), n in self.jobs.items() if status == JobStatus.QUEUED.value)


def ops_snapshot(session: Session, *, statement_timeout_s: float | None = None) -> OpsSnapshot:
    """Read the snapshot in one transaction; on PostgreSQL each statement is cut off after
    ``statement_timeout_s`` (the scrape must not wait on a slow or locked table)."""
    if statement_timeout_s is not None and session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"SET LOCAL statement_timeout = {max(1, int(statement_timeout_s * 1000))}"))
    snap = OpsSnapshot()
    for kind, status, count in session.execute(select(Job.kind, Job.status, func.count()).group_by(Job.kind, Job.status)):
        snap.jobs[(kind, JobStatus(status).value)] = int(count)
    latest = (select(Metric.value).where(Metric.job_id == Job.id, Metric.name == THROUGHPUT_METRIC)
              .order_by(Metric.step.desc()).limit(1).correlate(Job).scalar_subquery())
    rows = session.execute(select(Job.id, Job.kind, Job.worker, Job.progress, Job.epoch, latest)
                           .where(Job.status == JobStatus.RUNNING).order_by(Job.id).limit(MAX_ROWS))
    snap.running = [RunningJob(id=i, kind=k, worker=w, progress=float(p or 0.0), epoch=int(e or 0),
                               clips_per_s=float(c) if c is not None else None) for i, k, w, p, e, c in rows]
    workers = session.execute(select(Worker.hostname, Worker.heartbeat_at, Worker.current_job_id)
                              .where(Worker.stopped_at.is_(None)).order_by(Worker.hostname).limit(MAX_ROWS))
    snap.workers = [WorkerRow(hostname=h, heartbeat_at=t, current_job_id=j) for h, t, j in workers]
    return snap
