"""Datasets: index and register a UCF101-layout folder; the synthesize job that renders a synthetic one (within
the work bound and the disk budget)."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from fastapi import HTTPException, status
from sqlalchemy.orm import Session

from api.paths import client_text
from api.schemas import SyntheticDatasetCreate
from persistence import repo
from persistence.models import Dataset, Job
from persistence.settings import Settings

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
            "frames": index.frame_summary() if scan else None,
            "problems": [_problem(p) for p in index.problems], "fingerprint": str(index.fingerprint())[:64]}


def register(session: Session, *, path: Path, name: str, split: int, subset: float, scan: bool, min_frames: int,
             synthetic: bool = False, shown_as: str | None = None) -> tuple[Dataset, bool]:
    """A dataset row for ``path`` and whether it is new: the existing one when the folder is already registered
    with the same split, subset, listing and scan findings. ``shown_as``: the client's name for ``path``, used in
    place of the server path in error messages."""
    from ml.errors import DatasetError

    try:
        info = index_folder(path, split=split, subset=subset, scan=scan, min_frames=min_frames)
    except DatasetError as exc:
        log.warning("dataset %s cannot be registered: %s", path, exc)
        msg = client_text(str(exc), {str(path): shown_as or name})
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            detail=[{"loc": ["body", "path"], "msg": msg, "type": "value_error"}]) from exc
    existing = repo.same_dataset(session, path=str(path), split=split, subset=subset,
                                 fingerprint=info.get("fingerprint"))
    unchanged = existing is not None and existing.problems == info["problems"] and \
        (not scan or existing.frames == info["frames"])
    if existing is not None and unchanged:  # the same folder again, as it was: that dataset, not a copy
        return existing, False
    return repo.create_dataset(session, name=name, path=str(path), split=split, subset=subset, synthetic=synthetic,
                               **info), True


def _synthetic_bytes_in_use(folder: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


def synthesize_config(settings: Settings, body: SyntheticDatasetCreate, *, session: Session) -> Any:
    """The job config for ``body``, after the work bound (422) and the disk budget and free space (422/507)."""
    from ml.synthetic_spec import SynthesizeConfig

    name = body.name or "synthetic"
    folder = settings.data_roots[0] / "synthetic"
    config = SynthesizeConfig(root=folder / f"{name}-{uuid.uuid4().hex[:8]}", classes=body.classes,
                              videos_per_class=body.videos_per_class, frames=body.frames, width=body.width,
                              height=body.height, seed=body.seed)
    fields = "classes x videos_per_class x frames x width x height"
    megapixels = config.pixels / 1e6
    if megapixels > settings.synthetic_max_megapixels:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=[{
            "loc": ["body"], "type": "value_error",
            "msg": f"{fields} = {body.classes} x {body.videos_per_class} x {body.frames} x {body.width} x "
                   f"{body.height} = {megapixels:,.0f} megapixels to render, over the server's limit of "
                   f"{settings.synthetic_max_megapixels:,.0f} (SYNTHETIC_MAX_MEGAPIXELS); lower one of them"}])
    need = config.estimated_bytes()
    budget = int(settings.synthetic_disk_budget_mb * 2**20)
    mib = 2**20
    if need > budget:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=[{
            "loc": ["body"], "type": "value_error",
            "msg": f"these videos would take about {need / mib:,.0f} MiB ({fields}), over the "
                   f"{budget / mib:,.0f} MiB budget for synthetic data (SYNTHETIC_DISK_BUDGET_MB); lower one of them"}])
    used = _synthetic_bytes_in_use(folder) + _pending_synthetic_bytes(session)
    if used + need > budget:
        raise HTTPException(507, detail=f"synthetic datasets already take (or will take) {used / mib:,.0f} MiB of the "
                                        f"{budget / mib:,.0f} MiB budget (SYNTHETIC_DISK_BUDGET_MB); this one needs about "
                                        f"{need / mib:,.0f} MiB. Delete unused synthetic datasets or ask for a larger "
                                        "budget")
    free = shutil.disk_usage(settings.data_roots[0]).free
    if need > free:
        raise HTTPException(507, detail=f"the data disk has {free / mib:,.0f} MiB free and these videos need about "
                                        f"{need / mib:,.0f} MiB; generate fewer or smaller videos")
    return config


def _pending_synthetic_bytes(session: Session) -> int:
    """Estimated bytes of synthesize jobs not yet finished (their folders are still growing)."""
    from ml.synthetic_spec import SYNTHESIZE, SynthesizeConfig

    total = 0
    for job in repo.unfinished_jobs_of_kind(session, SYNTHESIZE):
        try:
            total += SynthesizeConfig.model_validate(job.config).estimated_bytes()
        except ValueError:
            continue
    return total


def create_synthetic(session: Session, settings: Settings, body: SyntheticDatasetCreate) -> tuple[Dataset, Job]:
    """A pending dataset row and the queued "synthesize" job that renders and scans it on a worker."""
    from ml.config import config_hash
    from ml.synthetic_spec import SYNTHESIZE

    config = synthesize_config(settings, body, session=session)
    dataset = repo.create_dataset(session, name=config.root.name, path=str(config.root), split=1, subset=100.0,
                                  synthetic=True)
    job = repo.create_job(session, kind=SYNTHESIZE, name=f"synthesize {config.root.name}",
                          request=body.model_dump(mode="json", exclude_none=True),
                          config=config.model_dump(mode="json"), config_hash=config_hash(config),
                          dataset_id=dataset.id, max_attempts=settings.max_attempts)
    dataset.job_id = job.id
    repo.set_job_paths(session, job.id, artifact_dir=str(settings.job_dir(job.id)))
    session.flush()
    return dataset, job
