"""Metrics (downsampled JSON or CSV) and the server-sent events stream of a job."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response
from fastapi.sse import EventSourceResponse, ServerSentEvent

from api.deps import READ, SessionDep
from api.services.job_events import job_events
from api.services.lookup import get_job_or_404
from api.responses import errors
from api.schemas import Id, Offset
from persistence import repo

router = APIRouter(prefix="/jobs", tags=["metrics"])

LAST_ID_HEADER = "X-Last-Metric-Id"


@router.get("/{job_id}/metrics", operation_id="jobs-metrics", dependencies=[READ],
            responses={200: {"content": {"application/json": {}, "text/csv": {}},
                             "description": "{name: [{step, epoch, value, time}]}, or CSV name,step,epoch,value,time",
                             "headers": {LAST_ID_HEADER: {"description": "the job's last metric row id when read: "
                                                          "pass it as after_id to /events to stream only newer rows",
                                                          "schema": {"type": "integer"}}}}, **errors(404)})
def metrics(job_id: Id, session: SessionDep,
            names: Annotated[str | None, Query(description="comma-separated; default all")] = None,
            since_step: Annotated[Offset, Query()] = 0,
            max_points: Annotated[int, Query(ge=2, le=20000, description="per name, bucketed by step")] = 1000,
            accept: Annotated[str | None, Header()] = None) -> Response:
    """Step metrics under their own name (loss, lr, ...); epoch metrics as ``epoch/<name>``."""
    get_job_or_404(session, job_id)
    last_id = repo.last_metric_id(session, job_id)  # before the series: a row landing in between is sent twice
    headers = {LAST_ID_HEADER: str(last_id)}
    wanted = [n.strip() for n in names.split(",") if n.strip()] if names else None
    series = repo.metric_series(session, job_id, names=wanted, since_step=since_step, max_points=max_points)
    if accept and "text/csv" in accept:
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(["name", "step", "epoch", "value", "time"])
        for name, points in series.items():
            for p in points:
                writer.writerow([name, p["step"], p["epoch"], repr(p["value"]), p["time"].isoformat()])
        return Response(buf.getvalue(), media_type="text/csv",
                        headers={**headers, "Content-Disposition": f'attachment; filename="job-{job_id}-metrics.csv"'})
    body = {n: [{**p, "time": p["time"].isoformat()} for p in pts] for n, pts in series.items()}
    return Response(json.dumps(body), media_type="application/json", headers=headers)


def existing_job(job_id: Id, session: SessionDep) -> int:
    """404 before the stream starts (a generator route's status is sent with its first event); the session's
    connection goes back to the pool at once, not when the stream ends."""
    get_job_or_404(session, job_id)
    session.close()
    return job_id


@router.get("/{job_id}/events", operation_id="jobs-events", dependencies=[READ], response_class=EventSourceResponse,
            responses={200: {"description": "events: status {job fields}, metrics [rows], end; ': keepalive' comments"},
                       **errors(404)})
async def events(request: Request, job_id: Annotated[int, Depends(existing_job)],
                 last_event_id: Annotated[Offset | None, Header()] = None,
                 after_id: Annotated[Offset | None, Query(description="stream metric rows after this id (the "
                                                          f"{LAST_ID_HEADER} header of /metrics); default all")] = None,
                 poll_s: Annotated[float, Query(ge=0.1, le=10)] = 0.5,
                 keepalive_s: Annotated[float, Query(ge=1, le=60)] = 15.0) -> AsyncIterator[ServerSentEvent]:
    """Server-sent events: a ``status`` event on every change (status, progress, epoch, total_epochs,
    steps_per_epoch, queue_position, eta_s, started_at, finished_at...), ``metrics`` batches as rows land (the event
    id is the last metric row id, so a reconnect with Last-Event-ID continues; ``after_id`` skips the history a
    client already fetched from /metrics), ``end`` when the job ends."""
    async for event in job_events(request.app.state.sessions, job_id, cursor=max(after_id or 0, last_event_id or 0),
                                  poll_s=poll_s, keepalive_s=keepalive_s, disconnected=request.is_disconnected):
        yield event
