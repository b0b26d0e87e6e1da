"""Per-job artifacts: log tail and checkpoint download."""

from __future__ import annotations

import logging
from collections import deque
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse

from api.deps import READ, SessionDep, SettingsDep
from api.services.lookup import get_job_or_404
from api.responses import errors
from api.schemas import Id, LogsPublic

router = APIRouter(prefix="/jobs", tags=["artifacts"])
log = logging.getLogger("api.artifacts")


@router.get("/{job_id}/logs", response_model=LogsPublic, operation_id="jobs-logs", dependencies=[READ],
            responses=errors(404))
def logs(job_id: Id, session: SessionDep, settings: SettingsDep,
         tail: Annotated[int, Query(ge=1, le=10000)] = 200) -> LogsPublic:
    """The last ``tail`` lines of the job's log (all attempts, appended)."""
    get_job_or_404(session, job_id)
    path = settings.job_dir(job_id) / "job.log"
    if not path.is_file():
        return LogsPublic(job_id=job_id, path=None, lines=[])
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        lines = [line.rstrip("\n") for line in deque(fh, maxlen=tail)]
    return LogsPublic(job_id=job_id, path="job.log", lines=lines)  # relative to the job's folder: no server path


def weights_file(checkpoint: Path, job_dir: Path) -> Path:
    """The job's weights-only export (``weights.pt``), rewritten when the checkpoint is newer."""
    from ml.engine.checkpoint import WEIGHTS_NAME, export_weights

    dest = job_dir / WEIGHTS_NAME
    if dest.is_file() and dest.stat().st_mtime_ns >= checkpoint.stat().st_mtime_ns:
        return dest
    return export_weights(checkpoint, dest)


@router.get("/{job_id}/checkpoint", response_class=FileResponse, operation_id="jobs-checkpoint", dependencies=[READ],
            responses={200: {"content": {"application/octet-stream": {}}}, **errors(404, 409)})
async def checkpoint(job_id: Id, session: SessionDep, settings: SettingsDep) -> FileResponse:
    """The job's final (or, while it runs or after a failure, latest) model as a weights-only file: the
    network's state dict and JSON-able metadata (backbone, width, modality, clip, classes, results).
    Load it with ``torch.load(path, weights_only=True)``; optimizer and RNG state stay on the server."""
    from ml.engine.checkpoint import CHECKPOINT_NAME
    from ml.errors import CheckpointError

    job = get_job_or_404(session, job_id)
    job_dir = settings.job_dir(job_id)
    candidates = [job_dir / CHECKPOINT_NAME]
    if job.checkpoint_path and Path(job.checkpoint_path).resolve().is_relative_to(job_dir.resolve()):
        candidates.insert(0, Path(job.checkpoint_path))
    kind, state = job.kind, job.status.value
    session.close()
    for path in candidates:
        if path.is_file():
            try:
                export = await run_in_threadpool(weights_file, path, job_dir)
            except CheckpointError as exc:
                log.error("job %d: cannot export %s: %s", job_id, path, exc)
                raise HTTPException(status.HTTP_409_CONFLICT,
                                    detail=f"job {job_id}'s checkpoint cannot be exported as weights (it is not a "
                                           "safe weights-only checkpoint); retry the job to write a new one") from None
            return FileResponse(export, media_type="application/octet-stream",
                                filename=f"job-{job_id}-{kind}-weights.pt")
    raise HTTPException(status.HTTP_404_NOT_FOUND,
                        detail=f"job {job_id} ({state}) has no checkpoint yet; one is written each epoch")
