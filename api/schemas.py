"""Request and response schemas, one per direction (``*Create`` in, ``*Public`` out)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar, get_args

from annotated_types import Ge, Le
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ml.config import BackboneName  # pydantic only; ml.config does not import torch

T = TypeVar("T")
JobKind = Literal["pretrain", "distill", "finetune", "evaluate"]
JOB_KINDS: tuple[str, ...] = get_args(JobKind)  # what POST /jobs accepts (a "synthesize" job comes from /datasets)
JobStatusName = Literal["waiting", "queued", "running", "completed", "failed", "cancelled"]

MAX_INT64 = 2**63 - 1
Id = Annotated[int, Ge(1), Le(MAX_INT64)]
"""A row id (job, dataset, experiment, model, metric row) in a path, query or body: 1 .. 2**63-1, so a
larger number is a 422 naming the field instead of an integer overflow in the database driver."""
Offset = Annotated[int, Ge(0), Le(MAX_INT64)]
"""A non-negative position: list offset, metric cursor, step."""
Seed = Annotated[int, Ge(0), Le(2**31 - 1)]
"""A random seed: what numpy, torch and a 32-bit database column all accept."""


class Page(BaseModel, Generic[T]):
    data: list[T]
    count: int


# ------------------------------------------------------------------ datasets


class DatasetCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(description="UCF101-layout folder on the server, under one of DATA_ROOTS "
                                  "(absolute, or relative to the first data root)")
    name: str | None = Field(None, max_length=200)
    split: int = Field(1, ge=1, le=3, description="UCF101 split 1, 2 or 3")
    subset: float = Field(100.0, ge=0.01, le=100, description="percent of the training list kept (class-balanced; at least 0.01)")
    scan: bool = Field(True, description="open every video and report unreadable or too-short ones")
    min_frames: int = Field(16, ge=1, description="videos with fewer frames are reported as problems")


class SyntheticDatasetCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")
    classes: int = Field(6, ge=2, le=50)
    videos_per_class: int = Field(12, ge=2, le=200)
    frames: int = Field(48, ge=8, le=600)
    width: int = Field(64, ge=16, le=640)
    height: int = Field(48, ge=16, le=480)
    seed: Seed = 0


class DatasetPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    path: str
    split: int
    subset: float
    synthetic: bool
    classes: list[str]
    counts: dict[str, Any]
    frames: dict[str, dict[str, int]] | None = Field(
        None, description="scanned frame counts per split (min, max, videos); null when registered without a scan")
    problems: list[dict[str, Any]]
    fingerprint: str | None
    created_at: datetime
    job_id: int | None = Field(None, description="the job generating this dataset (POST /datasets/synthetic)")
    status: Literal["ready", "pending", "failed"] = Field(
        "ready", description="pending while its job renders it; failed if that job failed or was cancelled")


# ------------------------------------------------------------------ jobs


class JobCreate(BaseModel):
    """A flat, friendly job request; the server turns it into the ml config (``ml.config.*``).

    Unset fields keep the ml defaults (or, for finetune/evaluate, the source job's model and clip).
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"kind": "pretrain", "dataset_id": 1, "backbone": "r3d", "width": 0.125, "clip": "tiny", "epochs": 2,
         "batch_size": 4},
        {"kind": "distill", "dataset_id": 1, "teacher_job_id": 1, "width": 0.125, "clip": "tiny", "alpha": 1.0,
         "temperature": 4.0, "distill_target": "pretext", "epochs": 2},
        {"kind": "finetune", "dataset_id": 1, "source_job_id": 2, "epochs": 2, "lr": 0.001},
    ]})

    kind: JobKind
    dataset_id: Id = Field(description="GET /datasets lists them")
    name: str | None = Field(None, max_length=200)
    # model
    backbone: BackboneName | None = Field(None, description="default r3d; finetune/evaluate: the source's")
    width: float | None = Field(None, gt=0, le=4, description="channel width multiplier (0.125 for CPU)")
    modality: Literal["res", "rgb"] | None = None
    # clip
    clip: Literal["default", "tiny"] | None = Field(None, description="default: 16x112 crop; tiny: 8x32 (CPU)")
    frames: int | None = Field(None, ge=2, le=128)
    crop: int | None = Field(None, ge=8, le=512)
    # optimisation
    epochs: int | None = Field(None, ge=1, le=10000)
    batch_size: int | None = Field(None, ge=1, le=4096)
    lr: float | None = Field(None, gt=0, le=10, description="learning rate (> 0)")
    momentum: float | None = Field(None, ge=0, lt=1)
    weight_decay: float | None = Field(None, ge=0)
    scheduler: Literal["plateau", "cosine", "none"] | None = None
    max_steps_per_epoch: int | None = Field(None, ge=1)
    # PCL loss weights
    contrast_weight: float | None = Field(None, ge=0, description="w_con: L = CE_pretext + w_con * L_nce")
    nce_negatives: int | None = Field(None, ge=1)
    nce_temperature: float | None = Field(None, gt=0)
    # distillation
    teacher_job_id: Id | None = Field(None, description="distill: a completed pretrain/distill job")
    alpha: float | None = Field(None, ge=0, description="distill: KD weight (0 = no-KD baseline)")
    temperature: float | None = Field(None, gt=0, description="distill: softmax temperature T")
    distill_target: Literal["pretext", "contrastive", "both"] | None = Field(None, description="what is distilled")
    # fine-tuning / evaluation
    source_job_id: Id | None = Field(None, description="finetune/evaluate: a completed job whose checkpoint is used")
    mode: Literal["full", "linear"] | None = None
    dropout: float | None = Field(None, ge=0, lt=1)
    val_videos: int | None = Field(None, ge=0)
    retrieval: bool | None = Field(None, description="run nearest-neighbour retrieval at the end")
    retrieval_every: int | None = Field(None, ge=0, description="pretrain/distill: epochs between retrieval "
                                                                "evaluations (1: a convergence curve; 0: end only)")
    test_clips: int | None = Field(None, ge=1, le=100)
    data_fraction: float | None = Field(None, gt=0, le=1, description="class-balanced fraction of the dataset's "
                                                                      "training list (e.g. 0.25)")
    # scheduling
    after_job_id: Id | None = Field(None, description="wait until this job completes, then queue; failed or "
                                                       "cancelled with a reason if it fails or is cancelled")
    # runtime
    seed: Seed | None = None
    device: str | None = Field(None, pattern=r"^(auto|cpu|cuda(:\d+)?)$")
    data_workers: int | None = Field(None, ge=0, le=64)
    max_attempts: int | None = Field(None, ge=1, le=20)
    overrides: dict[str, Any] = Field(default_factory=dict,
                                      description="advanced: dotted ml-config paths, e.g. {'pretext.interval': 4}")

    @model_validator(mode="after")
    def _fields_fit_kind(self) -> "JobCreate":
        only = {"teacher_job_id": {"distill"}, "alpha": {"distill"}, "temperature": {"distill"},
                "distill_target": {"distill"}, "source_job_id": {"finetune", "evaluate"},
                "mode": {"finetune"}, "dropout": {"finetune"}, "val_videos": {"finetune"},
                "contrast_weight": {"pretrain", "distill"}, "nce_negatives": {"pretrain", "distill"},
                "nce_temperature": {"pretrain", "distill"}, "retrieval_every": {"pretrain", "distill"},
                "data_fraction": {"pretrain", "distill", "finetune"}}
        for name, kinds in only.items():
            if getattr(self, name) is not None and self.kind not in kinds:
                raise ValueError(f"{name} applies to kind {' or '.join(sorted(kinds))}, not {self.kind}; remove it")
        return self


class JobDefaults(BaseModel):
    kind: JobKind
    values: dict[str, Any] = Field(description="what each unset JobCreate field of this kind becomes")
    inherited: list[str] = Field(description="fields a finetune/evaluate job takes from its source job when unset")
    clips: dict[str, dict[str, int]] = Field(description="frames and crop of each clip preset")


class JobRef(BaseModel):
    id: int
    kind: str
    name: str | None
    status: JobStatusName


class Lineage(BaseModel):
    teacher: JobRef | None = None
    source: JobRef | None = None
    after: JobRef | None = None
    children: list[JobRef] = []


class JobPublic(BaseModel):
    id: int
    kind: str
    name: str | None
    status: JobStatusName
    progress: float
    queue_position: int | None = None
    eta_s: float | None = None
    dataset_id: int | None
    parent_id: int | None
    after_id: int | None
    retry_of: int | None
    lineage: Lineage | None = None
    request: dict[str, Any]
    config: dict[str, Any]
    config_hash: str
    code_version: str | None
    error: str | None
    attempts: int
    max_attempts: int
    cancel_requested: bool
    worker: str | None
    device: str | None
    epoch: int
    total_epochs: int | None
    step: int
    steps_per_epoch: int | None
    checkpoint_available: bool
    results: dict[str, Any] | None
    created_at: datetime
    queued_at: datetime | None
    started_at: datetime | None
    heartbeat_at: datetime | None
    finished_at: datetime | None


class DemoPublic(BaseModel):
    dataset: DatasetPublic
    synthesize: JobPublic = Field(description="the job rendering the dataset; the teacher waits on it")
    jobs: list[JobPublic] = Field(description="teacher, student, fine-tune (each waits on the one before)")


class SyntheticDatasetAccepted(BaseModel):
    dataset: DatasetPublic = Field(description="registered now, pending until the job completes")
    job: JobPublic = Field(description="the worker job rendering and scanning it (progress, cancel)")


# ------------------------------------------------------------------ experiments

ExperimentRole = Literal["teacher", "student", "baseline", "finetune"]


def _grid_backbones() -> list[BackboneName]:
    return ["r3d", "c3d", "r21d"]


class ExperimentCreate(BaseModel):
    """A research grid as jobs. Every pretraining run (teacher, KD student, no-KD baseline) shares one budget;
    unset budget fields keep the JobCreate/ml defaults. Retrieval is evaluated every epoch."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"dataset_id": 1, "grid": "pair", "pair": ["r3d", "r3d"], "width": 0.125, "clip": "tiny", "epochs": 2,
         "seeds": [0], "finetune_epochs": 1},
    ]})

    name: str | None = Field(None, max_length=200)
    dataset_id: Id = Field(description="GET /datasets lists them")
    grid: Literal["pair", "full"] = Field("pair", description="pair: one teacher -> KD student + no-KD baseline; "
                                          "full: teachers x students over backbones, baselines, data fractions")
    backbones: list[BackboneName] = Field(default_factory=_grid_backbones, min_length=1,
                                          description="full grid: teachers, students and baselines",
                                          json_schema_extra={"default": ["r3d", "c3d", "r21d"]})
    pair: tuple[BackboneName, BackboneName] = Field(("r3d", "r3d"), description="(teacher, student) of the pair "
                                                    "grid and of the data-fraction rows")
    fractions: list[float] | None = Field(None, min_length=1, description="data fractions for the pair's student "
                                          "and baseline; default full: 1, .5, .25, .02; pair: 1")
    seeds: list[Seed] = Field(default_factory=lambda: [0], min_length=1, max_length=10,
                             description="each seed repeats the grid; baselines train with seed + 1000",
                             json_schema_extra={"default": [0]})
    # the shared budget (as in JobCreate)
    width: float | None = None
    modality: Literal["res", "rgb"] | None = None
    clip: Literal["default", "tiny"] | None = None
    frames: int | None = None
    crop: int | None = None
    epochs: int | None = None
    teacher_epochs: int | None = Field(None, ge=1, description="teachers' pretraining epochs (default: epochs); "
                                       "students and baselines always share one budget")
    batch_size: int | None = None
    lr: float | None = None
    momentum: float | None = None
    weight_decay: float | None = None
    scheduler: Literal["plateau", "cosine", "none"] | None = None
    max_steps_per_epoch: int | None = None
    contrast_weight: float | None = None
    nce_negatives: int | None = None
    nce_temperature: float | None = None
    # distillation (students only)
    alpha: float = Field(1.0, gt=0, description="KD weight of the students (baselines have none)")
    temperature: float | None = None
    distill_target: Literal["pretext", "contrastive", "both"] = Field(
        "both", description="what the students distil; default both (pretext logits + in-batch contrastive "
        "distribution), as experiments/reproduce.py; a single distill job defaults to pretext")
    # fine-tuning after every pretraining run
    finetune_epochs: int | None = None
    finetune_lr: float | None = None
    finetune_batch_size: int | None = None
    finetune_mode: Literal["full", "linear"] | None = None
    val_videos: int | None = None
    test_clips: int | None = None
    # runtime
    device: str | None = None
    data_workers: int | None = None
    max_attempts: int | None = None

    @field_validator("backbones", "seeds")
    @classmethod
    def _unique(cls, value: list[Any]) -> list[Any]:
        if len(set(value)) != len(value):
            raise ValueError(f"{value} repeats a value; list each once")
        return value

    @field_validator("fractions")
    @classmethod
    def _fractions(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and any(not 0 < f <= 1 for f in value):
            raise ValueError(f"{value}: each fraction must be in (0, 1]")
        return value

    def resolved_fractions(self) -> list[float]:
        if self.fractions is not None:
            return sorted(set(self.fractions), reverse=True)
        return [1.0, 0.5, 0.25, 0.02] if self.grid == "full" else [1.0]


class ExperimentPlan(BaseModel):
    """What POST /experiments would submit for a request, without writing anything."""

    jobs: int = Field(description="pretraining runs and their fine-tunes")
    roles: dict[str, int] = Field(description="jobs per role: teacher, student, baseline, finetune")


class ExperimentRun(BaseModel):
    """One pretraining run of the grid with its fine-tune and its numbers (None until they exist)."""

    job_id: int
    name: str | None
    role: ExperimentRole
    kind: str
    backbone: str
    teacher_backbone: str | None
    teacher_job_id: int | None
    fraction: float
    seed: int
    status: JobStatusName
    error: str | None
    retrieval_top1: float | None
    retrieval_curve: list[float | None] = Field(description="retrieval top-1 per epoch")
    reference_job_id: int | None = Field(description="the teacher whose final retrieval top-1 is the target")
    reference_top1: float | None
    epochs_to_reference: int | None = Field(description="first epoch reaching reference_top1; None if not (yet)")
    finetune_job_id: int | None
    finetune_status: JobStatusName | None
    finetune_top1: float | None = Field(description="video-level top-1 of the fine-tuned classifier")
    baseline_job_id: int | None = Field(None, description="students: the no-KD baseline of the same backbone, data "
                                        "fraction and seed")
    kd_gain_retrieval: float | None = Field(None, description="students: retrieval top-1 minus the baseline's")
    kd_gain_finetune: float | None = Field(None, description="students: fine-tuned top-1 minus the baseline's")


class ExperimentSummary(BaseModel):
    id: int
    name: str
    dataset_id: int
    grid: str
    status: JobStatusName
    jobs: int
    counts: dict[str, int] = Field(description="jobs per status")
    created_at: datetime


class ExperimentPublic(ExperimentSummary):
    request: dict[str, Any]
    runs: list[ExperimentRun]


# ------------------------------------------------------------------ models, prediction, health


class ModelPublic(BaseModel):
    id: int = Field(description="the job id: a finetune's is `model` for POST /predict; an import's is a "
                                "`teacher_job_id` / `source_job_id`")
    kind: str = Field("finetune", description="finetune (a classifier) or import (an external checkpoint)")
    name: str | None
    backbone: str | None
    width: float | None
    dataset_id: int | None
    source_job_id: int | None
    labels: int
    test: dict[str, Any]
    protocol: str | None
    finished_at: datetime | None
    origin: dict[str, Any] | None = Field(None, description="an import's source: format, file name, sha256")


class LabelScore(BaseModel):
    label: str
    score: float


class PredictionPublic(BaseModel):
    model: int
    top_k: list[LabelScore]
    clips: int
    frames_sampled: list[list[int]]
    num_frames: int | None = None
    latency_ms: float
    thumbnails: list[str] = []
    """PNG data URIs, the middle frame of each clip, when requested with ``thumbnails``."""


class WorkerPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    hostname: str
    device: str | None
    pid: int | None
    code_version: str | None
    current_job_id: int | None
    started_at: datetime
    heartbeat_at: datetime


class Check(BaseModel):
    ok: bool
    detail: str | None = None


class HealthPublic(BaseModel):
    """ok (200): database, broker and a live worker; degraded (200): no live worker, jobs wait; unavailable (503):
    the database or the broker is down. Without a read token (when auth is on) only status and problems."""

    status: Literal["ok", "degraded", "unavailable"]
    problems: list[str] = Field(description="what is wrong, in words (empty when ok)")
    auth_required: bool
    database: Check | None = None
    broker: Check | None = None
    workers: list[WorkerPublic] | None = None


class TokenPublic(BaseModel):
    """An API token as GET /tokens lists it; the token itself is never stored or shown."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    scope: Literal["read", "submit", "admin"]
    state: Literal["active", "revoked", "expired"]
    expires_at: datetime | None
    created_at: datetime
    last_used_at: datetime | None


class LogsPublic(BaseModel):
    job_id: int
    path: str | None
    lines: list[str]
