"""Dataset requests and responses."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import Seed


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
