"""Request and response schemas, one per direction (``*Create`` in, ``*Public`` out)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ml.config import BackboneName  # pydantic only; ml.config does not import torch

T = TypeVar("T")
JobKind = Literal["pretrain", "distill", "finetune", "evaluate"]
JobStatusName = Literal["waiting", "queued", "running", "completed", "failed", "cancelled"]


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
    subset: float = Field(100.0, gt=0, le=100, description="percent of the training list kept (class-balanced)")
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
    seed: int = 0


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
    problems: list[dict[str, Any]]
    fingerprint: str | None
    created_at: datetime


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
    dataset_id: int = Field(description="GET /datasets lists them")
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
    teacher_job_id: int | None = Field(None, description="distill: a completed pretrain/distill job")
    alpha: float | None = Field(None, ge=0, description="distill: KD weight (0 = no-KD baseline)")
    temperature: float | None = Field(None, gt=0, description="distill: softmax temperature T")
    distill_target: Literal["pretext", "contrastive", "both"] | None = Field(None, description="what is distilled")
    # fine-tuning / evaluation
    source_job_id: int | None = Field(None, description="finetune/evaluate: a completed job whose checkpoint is used")
    mode: Literal["full", "linear"] | None = None
    dropout: float | None = Field(None, ge=0, lt=1)
    val_videos: int | None = Field(None, ge=0)
    retrieval: bool | None = Field(None, description="run nearest-neighbour retrieval at the end")
    test_clips: int | None = Field(None, ge=1, le=100)
    # runtime
    seed: int | None = None
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
                "nce_temperature": {"pretrain", "distill"}}
        for name, kinds in only.items():
            if getattr(self, name) is not None and self.kind not in kinds:
                raise ValueError(f"{name} applies to kind {' or '.join(sorted(kinds))}, not {self.kind}; remove it")
        return self


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
    jobs: list[JobPublic]


# ------------------------------------------------------------------ models, prediction, health


class ModelPublic(BaseModel):
    id: int = Field(description="the fine-tune job id; pass as `model` to POST /predict")
    name: str | None
    backbone: str | None
    width: float | None
    dataset_id: int | None
    source_job_id: int | None
    labels: int
    test: dict[str, Any]
    protocol: str | None
    finished_at: datetime | None


class LabelScore(BaseModel):
    label: str
    score: float


class PredictionPublic(BaseModel):
    model: int
    top_k: list[LabelScore]
    clips: int
    frames_sampled: list[list[int]]
    latency_ms: float


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
    status: Literal["ok", "degraded"]
    database: Check
    broker: Check
    workers: list[WorkerPublic]
    auth_required: bool


class LogsPublic(BaseModel):
    job_id: int
    path: str | None
    lines: list[str]
