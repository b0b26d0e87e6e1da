"""Per-job artifacts: log tail and checkpoint download."""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import FileResponse

from api.deps import READ, SessionDep, SettingsDep
from api.routes.jobs import get_job_or_404
from api.responses import errors
from api.schemas import Id, LogsPublic

router = APIRouter(prefix="/jobs", tags=["artifacts"])


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
    return LogsPublic(job_id=job_id, path=str(path), lines=lines)


@router.get("/{job_id}/checkpoint", response_class=FileResponse, operation_id="jobs-checkpoint", dependencies=[READ],
            responses={200: {"content": {"application/octet-stream": {}}}, **errors(404)})
def checkpoint(job_id: Id, session: SessionDep, settings: SettingsDep) -> FileResponse:
    """The job's final (or, while it runs or after a failure, latest) checkpoint."""
    job = get_job_or_404(session, job_id)
    candidates = [Path(job.checkpoint_path)] if job.checkpoint_path else []
    candidates.append(settings.job_dir(job_id) / "checkpoint.pt")
    for path in candidates:
        if path.is_file():
            return FileResponse(path, media_type="application/octet-stream",
                                filename=f"job-{job_id}-{job.kind}-{path.name}")
    raise HTTPException(status.HTTP_404_NOT_FOUND,
                        detail=f"job {job_id} ({job.status.value}) has no checkpoint yet; one is written each epoch")
