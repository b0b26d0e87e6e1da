"""Datasets: register a UCF101-layout folder under the data roots, or generate a synthetic one."""

from __future__ import annotations

import dataclasses
import json
import logging
import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from api.deps import READ, SessionDep, SettingsDep, SubmitAccess
from api.paths import OutsideDataRoots, client_text, resolve_under_roots
from api.responses import errors
from api.schemas import DatasetCreate, DatasetPublic, Id, Offset, Page, SyntheticDatasetCreate
from persistence import repo
from persistence.models import Dataset
from persistence.settings import Settings

router = APIRouter(prefix="/datasets", tags=["datasets"])
log = logging.getLogger("api.datasets")


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
            "problems": [_problem(p) for p in index.problems], "fingerprint": str(index.fingerprint())[:64]}


def register(session: Session, *, path: Path, name: str, split: int, subset: float, scan: bool, min_frames: int,
             synthetic: bool = False, shown_as: str | None = None) -> Dataset:
    """``shown_as``: the client's name for ``path``, used in place of the server path in error messages."""
    from ml.errors import DatasetError

    try:
        info = index_folder(path, split=split, subset=subset, scan=scan, min_frames=min_frames)
    except DatasetError as exc:
        log.warning("dataset %s cannot be registered: %s", path, exc)
        msg = client_text(str(exc), {str(path): shown_as or name})
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            detail=[{"loc": ["body", "path"], "msg": msg, "type": "value_error"}]) from exc
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
             responses=errors(403))
async def create(body: DatasetCreate, session: SessionDep, settings: SettingsDep, _: SubmitAccess) -> DatasetPublic:
    """Register a UCF101-layout folder; answers per-class counts and the problems found."""
    try:
        path = resolve_under_roots(body.path, settings.data_roots)
    except OutsideDataRoots as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=str(exc)) from exc
    if not path.is_dir():
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            detail=[{"loc": ["body", "path"], "msg": f"{body.path!r} is not a folder on the server; "
                                     "give a dataset folder under a data root", "type": "value_error"}])
    row = await run_in_threadpool(register, session, path=path, name=body.name or path.name, split=body.split,
                                  subset=body.subset, scan=body.scan, min_frames=body.min_frames, shown_as=body.path)
    session.commit()
    return DatasetPublic.model_validate(row)


@router.post("/synthetic", status_code=status.HTTP_201_CREATED, response_model=DatasetPublic,
             operation_id="datasets-synthetic")
async def synthetic(body: SyntheticDatasetCreate, session: SessionDep, settings: SettingsDep,
                    _: SubmitAccess) -> DatasetPublic:
    """Generate a small synthetic UCF101-layout set under the first data root and register it."""
    row = await run_in_threadpool(create_synthetic, session, settings, body)
    session.commit()
    return DatasetPublic.model_validate(row)


def create_synthetic(session: Session, settings: Settings, body: SyntheticDatasetCreate) -> Dataset:
    root = generate_synthetic(settings, body)
    return register(session, path=root, name=root.name, split=1, subset=100.0, scan=True, min_frames=8,
                    synthetic=True)


@router.get("", response_model=Page[DatasetPublic], operation_id="datasets-list", dependencies=[READ])
def list_(session: SessionDep, offset: Annotated[Offset, Query()] = 0,
          limit: Annotated[int, Query(ge=1, le=500)] = 100) -> Page[DatasetPublic]:
    rows, count = repo.list_datasets(session, offset=offset, limit=limit)
    return Page[DatasetPublic](data=[DatasetPublic.model_validate(r) for r in rows], count=count)


@router.get("/{dataset_id}", response_model=DatasetPublic, operation_id="datasets-get", dependencies=[READ],
            responses=errors(404))
def get(dataset_id: Id, session: SessionDep) -> DatasetPublic:
    row = repo.get_dataset(session, dataset_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"dataset {dataset_id} not found; GET /datasets")
    return DatasetPublic.model_validate(row)
