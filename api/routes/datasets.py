"""Datasets: register a UCF101-layout folder under the data roots, or generate a synthetic one."""

from __future__ import annotations

import dataclasses
import json
import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from api.deps import SessionDep, SettingsDep, TokenDep
from api.paths import OutsideDataRoots, resolve_under_roots
from api.schemas import DatasetCreate, DatasetPublic, Page, SyntheticDatasetCreate
from persistence import repo
from persistence.models import Dataset
from persistence.settings import Settings

router = APIRouter(prefix="/datasets", tags=["datasets"])


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=_encode))


def _encode(o: Any) -> Any:
    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        return dataclasses.asdict(o)
    return o.model_dump(mode="json") if hasattr(o, "model_dump") else str(o)


def _problem(p: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(p) and not isinstance(p, type):
        return _jsonable(dataclasses.asdict(p))  # type: ignore[no-any-return]
    if isinstance(p, dict):
        return _jsonable(p)  # type: ignore[no-any-return]
    if isinstance(p, (tuple, list)) and len(p) == 2:
        return {"path": str(p[0]), "reason": str(p[1])}
    return {"problem": str(p)}


def index_folder(root: Path, *, split: int, subset: float, scan: bool, min_frames: int) -> dict[str, Any]:
    """Index (and optionally scan) with ml.data; imported here so the API starts without it."""
    from ml.config import DataConfig
    from ml.data import index_dataset, scan_index

    index = index_dataset(DataConfig(root=root, split=split, subset=subset / 100))
    if scan:
        index = scan_index(index, min_frames=min_frames, workers=2)
    counts = index.counts()
    return {"classes": [str(c) for c in index.classes], "counts": _jsonable(counts),
            "frames": _frame_summary(index) if scan else None,
            "problems": [_problem(p) for p in index.problems], "fingerprint": str(index.fingerprint())[:64]}


def _frame_summary(index: Any) -> dict[str, dict[str, int]]:
    """Per split, the usable videos' frame counts (min, max, videos): what a job's clip needs are checked against."""
    out: dict[str, dict[str, int]] = {}
    for split, items in (("train", index.train), ("test", index.test)):
        counts = [int(index.frames[item.rel]) for item in items if item.rel in index.frames]
        out[split] = {"min": min(counts), "max": max(counts), "videos": len(counts)} if counts else \
            {"min": 0, "max": 0, "videos": 0}
    return out


def register(session: Session, *, path: Path, name: str, split: int, subset: float, scan: bool, min_frames: int,
             synthetic: bool = False) -> Dataset:
    from ml.errors import DatasetError

    try:
        info = index_folder(path, split=split, subset=subset, scan=scan, min_frames=min_frames)
    except DatasetError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            detail=[{"loc": ["body", "path"], "msg": str(exc), "type": "value_error"}]) from exc
    return repo.create_dataset(session, name=name, path=str(path), split=split, subset=subset, synthetic=synthetic,
                               **info)


def generate_synthetic(settings: Settings, body: SyntheticDatasetCreate) -> Path:
    from ml.synthetic import generate_dataset

    name = body.name or "synthetic"
    root = settings.data_roots[0] / "synthetic" / f"{name}-{uuid.uuid4().hex[:8]}"
    generate_dataset(root, classes=body.classes, videos_per_class=body.videos_per_class, frames=body.frames,
                     width=body.width, height=body.height, seed=body.seed)
    return root


@router.post("", status_code=status.HTTP_201_CREATED, response_model=DatasetPublic, operation_id="datasets-create",
             responses={403: {"description": "path outside DATA_ROOTS"}})
async def create(body: DatasetCreate, session: SessionDep, settings: SettingsDep, _: TokenDep) -> DatasetPublic:
    """Register a UCF101-layout folder; answers per-class counts and the problems found."""
    try:
        path = resolve_under_roots(body.path, settings.data_roots)
    except OutsideDataRoots as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=str(exc)) from exc
    if not path.is_dir():
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            detail=[{"loc": ["body", "path"], "msg": f"{path} is not a folder", "type": "value_error"}])
    row = await run_in_threadpool(register, session, path=path, name=body.name or path.name, split=body.split,
                                  subset=body.subset, scan=body.scan, min_frames=body.min_frames)
    session.commit()
    return DatasetPublic.model_validate(row)


@router.post("/synthetic", status_code=status.HTTP_201_CREATED, response_model=DatasetPublic,
             operation_id="datasets-synthetic")
async def synthetic(body: SyntheticDatasetCreate, session: SessionDep, settings: SettingsDep,
                    _: TokenDep) -> DatasetPublic:
    """Generate a small synthetic UCF101-layout set under the first data root and register it."""
    row = await run_in_threadpool(create_synthetic, session, settings, body)
    session.commit()
    return DatasetPublic.model_validate(row)


def create_synthetic(session: Session, settings: Settings, body: SyntheticDatasetCreate) -> Dataset:
    root = generate_synthetic(settings, body)
    return register(session, path=root, name=root.name, split=1, subset=100.0, scan=True, min_frames=8,
                    synthetic=True)


@router.get("", response_model=Page[DatasetPublic], operation_id="datasets-list")
def list_(session: SessionDep, offset: Annotated[int, Query(ge=0)] = 0,
          limit: Annotated[int, Query(ge=1, le=500)] = 100) -> Page[DatasetPublic]:
    rows, count = repo.list_datasets(session, offset=offset, limit=limit)
    return Page[DatasetPublic](data=[DatasetPublic.model_validate(r) for r in rows], count=count)


@router.get("/{dataset_id}", response_model=DatasetPublic, operation_id="datasets-get")
def get(dataset_id: int, session: SessionDep) -> DatasetPublic:
    row = repo.get_dataset(session, dataset_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"dataset {dataset_id} not found; GET /datasets")
    return DatasetPublic.model_validate(row)
