"""Tables: datasets, jobs, metrics, workers (heartbeats), api_tokens, experiments and their jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from sqlalchemy import JSON, BigInteger, Boolean, Enum, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from persistence.base import Base, UTCDateTime, utcnow
from persistence.status import JobStatus

# BIGINT on PostgreSQL, INTEGER (rowid alias, autoincrement) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Dataset(Base):
    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    path: Mapped[str] = mapped_column(Text)
    split: Mapped[int] = mapped_column(Integer, default=1)
    subset: Mapped[float] = mapped_column(Float, default=1.0)
    synthetic: Mapped[bool] = mapped_column(Boolean, default=False)
    classes: Mapped[list[str]] = mapped_column(JSON, default=list)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # scanned frame counts per split: {"train": {"min", "max", "videos"}, "test": {...}}; None if not scanned
    frames: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # the job that generates this dataset (kind "synthesize"): pending until it completes; no FK (jobs -> datasets
    # already has one, and a cycle would complicate create/drop order)
    job_id: Mapped[int | None] = mapped_column(Integer, index=True)
    problems: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    fingerprint: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_status_queued_at", "status", "queued_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # a name in ml.kinds.KINDS
    name: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[JobStatus] = mapped_column(
        Enum(JobStatus, name="job_status", native_enum=False, create_constraint=True, length=20,
             values_callable=lambda e: [m.value for m in e]),
        default=JobStatus.QUEUED,
        index=True,
    )
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id"), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"))  # teacher (distill) or source (finetune/retrieve)
    after_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"), index=True)  # chained: start when it completes
    retry_of: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"))
    request: Mapped[dict[str, Any]] = mapped_column(JSON)  # the job request as submitted (nested sections; api.schemas.job_request)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)  # the ml.config.* it became
    config_hash: Mapped[str] = mapped_column(String(32))
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    artifact_dir: Mapped[str | None] = mapped_column(Text)
    checkpoint_path: Mapped[str | None] = mapped_column(Text)
    results: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    worker: Mapped[str | None] = mapped_column(String(200))
    device: Mapped[str | None] = mapped_column(String(64))
    code_version: Mapped[str | None] = mapped_column(String(100))
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    epoch: Mapped[int] = mapped_column(Integer, default=0)
    step: Mapped[int] = mapped_column(Integer, default=0)
    total_epochs: Mapped[int | None] = mapped_column(Integer)
    steps_per_epoch: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # when the broker message that runs this queued job was last sent (or becomes due, for a delayed retry);
    # the dispatch sweep re-sends it when it is older than DISPATCH_GRACE_S while a worker sits idle
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # current attempt
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Metric(Base):
    __tablename__ = "metrics"
    # one row per (job, name, step) whatever the attempt: a re-run step overwrites, a retried flush is a no-op
    __table_args__ = (UniqueConstraint("job_id", "name", "step", name="uq_metrics_job_id_name_step"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    step: Mapped[int] = mapped_column(Integer)
    epoch: Mapped[int] = mapped_column(Integer)
    value: Mapped[float] = mapped_column(Float)
    time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempt: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # the job attempt that wrote it


class Worker(Base):
    __tablename__ = "workers"

    hostname: Mapped[str] = mapped_column(String(200), primary_key=True)
    device: Mapped[str | None] = mapped_column(String(200))
    pid: Mapped[int | None] = mapped_column(Integer)
    code_version: Mapped[str | None] = mapped_column(String(100))
    current_job_id: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


TokenScope = Literal["read", "submit", "admin"]
TOKEN_SCOPES: tuple[TokenScope, ...] = ("read", "submit", "admin")
"""Each scope includes the ones before it: admin > submit (create, cancel, resume, retry, predict) > read (GETs)."""


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex; the token itself is never stored
    scope: Mapped[str] = mapped_column(String(10), default="submit")  # one of TOKEN_SCOPES
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # None: never
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class Experiment(Base):
    """A research grid submitted in one call: its jobs are listed in experiment_jobs with their role."""

    __tablename__ = "experiments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), index=True)
    grid: Mapped[str] = mapped_column(String(20))  # pair | full
    request: Mapped[dict[str, Any]] = mapped_column(JSON)  # the ExperimentCreate as submitted
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ExperimentJob(Base):
    """One job of an experiment: teacher, student, baseline (pretraining runs) or finetune (of one of them)."""

    __tablename__ = "experiment_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), unique=True)
    role: Mapped[str] = mapped_column(String(20))  # teacher | student | baseline | finetune
    backbone: Mapped[str] = mapped_column(String(20))
    teacher_backbone: Mapped[str | None] = mapped_column(String(20))
    fraction: Mapped[float] = mapped_column(Float, default=1.0)
    seed: Mapped[int] = mapped_column(Integer)  # the grid seed (baselines train with seed + 1000)
