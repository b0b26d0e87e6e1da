"""Job requests and responses."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ml.config import BackboneName  # pydantic only; ml.config does not import torch
from api.schemas.datasets import DatasetPublic
from api.schemas.common import Id, JobKind, JobStatusName, Seed


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


class DemoCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    classes: int = Field(4, ge=2, le=10)
    videos_per_class: int = Field(8, ge=4, le=40)
    frames: int = Field(48, ge=32, le=200)
    epochs: int = Field(2, ge=1, le=20)
    width: float = Field(0.125, gt=0, le=1)
    max_steps_per_epoch: int | None = Field(None, ge=1)


class DemoPublic(BaseModel):
    dataset: DatasetPublic
    synthesize: JobPublic = Field(description="the job rendering the dataset; the teacher waits on it")
    jobs: list[JobPublic] = Field(description="teacher, student, fine-tune (each waits on the one before)")


class SyntheticDatasetAccepted(BaseModel):
    dataset: DatasetPublic = Field(description="registered now, pending until the job completes")
    job: JobPublic = Field(description="the worker job rendering and scanning it (progress, cancel)")
