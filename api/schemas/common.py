"""Shared request/response pieces: ids, offsets, seeds, pages, job status names."""

from __future__ import annotations

from typing import Annotated, Generic, Literal, TypeVar

from annotated_types import Ge, Le
from pydantic import BaseModel


T = TypeVar("T")
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
