"""Job requests and responses."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.datasets import DatasetPublic
from ml import recipes
from api.schemas.common import JobStatusName


class JobDefaults(BaseModel):
    kind: str = Field(description="a kind of ml.kinds (GET /recipes lists what each recipe sets per kind)")
    recipe: str | None = Field(None, description="the recipe the defaults are resolved under (none: the kind's own)")
    config: dict[str, Any] = Field(description="what each unset setting of the request's sections becomes, nested "
                                   "as in the request")
    values: dict[str, Any] = Field(description="deprecated: the same for the old flat fields (epochs, lr, ...)")
    inherited: list[str] = Field(description="settings a source-taking job (finetune, retrieve) takes from its "
                                 "source job when unset")
    clips: dict[str, dict[str, int]] = Field(description="deprecated: frames and crop of the old clip presets")
    recipes: list[str] = Field(description="recipes that resolve for this kind")
    parent_field: str | None = Field(description="the request field naming this kind's parent job, if it takes one")
    legacy: dict[str, str] = Field(description="deprecated flat field -> the setting it stands for (e.g. epochs -> "
                                   "optim.epochs)")


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


DEMO_RECIPE = "demo"
DEMO_SET = recipes.resolve_dict(DEMO_RECIPE, "synthesize")
DEMO_RUN = recipes.resolve_dict(DEMO_RECIPE, "pretrain")


class DemoCreate(BaseModel):
    """POST /demo: the sizes a caller may change; every other setting is recipe ``demo`` (configs/demo.yaml)."""

    model_config = ConfigDict(extra="forbid")
    classes: int = Field(DEMO_SET["classes"], ge=2, le=10)
    videos_per_class: int = Field(DEMO_SET["videos_per_class"], ge=4, le=40)
    frames: int = Field(DEMO_SET["frames"], ge=32, le=200)
    epochs: int = Field(DEMO_RUN["optim"]["epochs"], ge=1, le=20)
    width: float = Field(DEMO_RUN["model"]["width"], gt=0, le=1)
    max_steps_per_epoch: int | None = Field(None, ge=1, le=100_000)


class DemoPublic(BaseModel):
    dataset: DatasetPublic
    synthesize: JobPublic = Field(description="the job rendering the dataset; the teacher waits on it")
    jobs: list[JobPublic] = Field(description="teacher, student, fine-tune (each waits on the one before)")


class SyntheticDatasetAccepted(BaseModel):
    dataset: DatasetPublic = Field(description="registered now, pending until the job completes")
    job: JobPublic = Field(description="the worker job rendering and scanning it (progress, cancel)")
