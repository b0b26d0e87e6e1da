"""Experiment (research grid) requests and responses."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ml.config import BackboneName  # pydantic only; ml.config does not import torch
from api.schemas.common import Id, JobStatusName, Seed
from api.schemas.job_request import RecipeName


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
    recipe: RecipeName | None = Field(None, description="a recipe (GET /recipes; a grid recipe such as "  # type: ignore[valid-type]
                                      "'grid/tiny' also sets each role's budget); the fields below override it")
    # the shared budget (deprecated flat job fields, as the old JobCreate)
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
