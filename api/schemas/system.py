"""Models, prediction, health, tokens and logs responses."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


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


class RecipePublic(BaseModel):
    """A recipe file under configs/ and what it resolves to for each kind it serves."""

    name: str = Field(description="pass as `recipe` to POST /jobs or POST /experiments")
    description: str
    kinds: list[str]
    grid: bool = Field(description="a grid recipe (experiments/reproduce.py, POST /experiments): roles' budgets")
    defaults: dict[str, dict[str, Any]] = Field(description="per kind: the settings a job on this recipe gets "
                                                "when its request leaves them unset (nested as in the request)")
