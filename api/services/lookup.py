"""Rows by id for the routes, a 404 naming the list route when there is none."""

from __future__ import annotations

from fastapi import HTTPException, status
from sqlalchemy.orm import Session

from persistence import repo
from persistence.models import Dataset, Experiment, Job


def get_job_or_404(session: Session, job_id: int) -> Job:
    job = repo.get_job(session, job_id)
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"job {job_id} not found; GET /jobs lists jobs")
    return job


def get_experiment_or_404(session: Session, experiment_id: int) -> Experiment:
    exp = repo.get_experiment(session, experiment_id)
    if exp is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            detail=f"experiment {experiment_id} not found; GET /experiments lists them")
    return exp


def get_dataset_or_404(session: Session, dataset_id: int) -> Dataset:
    row = repo.get_dataset(session, dataset_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"dataset {dataset_id} not found; GET /datasets")
    return row
