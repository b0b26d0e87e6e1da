"""Datasets: register a UCF101-layout folder under the data roots, or generate a synthetic one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status
from fastapi.concurrency import run_in_threadpool

from api.deps import READ, EnqueuerDep, SessionDep, SettingsDep, SubmitAccess
from api.paths import OutsideDataRoots, resolve_under_roots
from api.present import dataset_public, job_public
from api.responses import errors
from api.schemas import (DatasetCreate, DatasetPublic, Id, Offset, Page, SyntheticDatasetAccepted,
                         SyntheticDatasetCreate)
from api.services.datasets import create_synthetic, register
from api.services.enqueue import enqueue_or_fail
from api.services.lookup import get_dataset_or_404
from persistence import repo

router = APIRouter(prefix="/datasets", tags=["datasets"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=DatasetPublic, operation_id="datasets-create",
             responses={200: {"model": DatasetPublic, "description": "the folder is already registered with the same "
                                                                    "split, subset and contents: that dataset"},
                        **errors(403)})
async def create(body: DatasetCreate, session: SessionDep, settings: SettingsDep, response: Response,
                 _: SubmitAccess) -> DatasetPublic:
    """Register a UCF101-layout folder; answers per-class counts and the problems found. The same folder registered
    again with the same split, subset and contents answers 200 with the existing dataset."""
    try:
        path = resolve_under_roots(body.path, settings.data_roots)
    except OutsideDataRoots as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=str(exc)) from exc
    if not path.is_dir():
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            detail=[{"loc": ["body", "path"], "msg": f"{body.path!r} is not a folder on the server; "
                                     "give a dataset folder under a data root", "type": "value_error"}])
    row, created = await run_in_threadpool(register, session, path=path, name=body.name or path.name,
                                           split=body.split, subset=body.subset, scan=body.scan,
                                           min_frames=body.min_frames, shown_as=body.path)
    session.commit()
    if not created:
        response.status_code = status.HTTP_200_OK
    return dataset_public(session, row)


@router.post("/synthetic", status_code=status.HTTP_202_ACCEPTED, response_model=SyntheticDatasetAccepted,
             operation_id="datasets-synthetic",
             responses=errors(422, 503, 507))
def synthetic(body: SyntheticDatasetCreate, session: SessionDep, settings: SettingsDep, enqueuer: EnqueuerDep,
              _: SubmitAccess) -> SyntheticDatasetAccepted:
    """Queue a worker job that renders a synthetic UCF101-layout set under the first data root and scans it; the
    dataset is registered now (status pending) and ready when the job completes (follow the job's progress)."""
    dataset, job = create_synthetic(session, settings, body)
    session.commit()
    enqueue_or_fail(session, enqueuer, job.id)
    return SyntheticDatasetAccepted(dataset=dataset_public(session, dataset), job=job_public(session, job))


@router.get("", response_model=Page[DatasetPublic], operation_id="datasets-list", dependencies=[READ])
def list_(session: SessionDep, offset: Annotated[Offset, Query()] = 0,
          limit: Annotated[int, Query(ge=1, le=500)] = 100) -> Page[DatasetPublic]:
    rows, count = repo.list_datasets(session, offset=offset, limit=limit)
    return Page[DatasetPublic](data=[dataset_public(session, r) for r in rows], count=count)


@router.get("/{dataset_id}", response_model=DatasetPublic, operation_id="datasets-get", dependencies=[READ],
            responses=errors(404))
def get(dataset_id: Id, session: SessionDep) -> DatasetPublic:
    return dataset_public(session, get_dataset_or_404(session, dataset_id))
