"""Metrics (downsampled JSON or CSV) and the server-sent events stream of a job."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy.orm import Session, sessionmaker

from api.deps import READ, SessionDep
from api.present import eta_seconds
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


def _snapshot(sessions: sessionmaker[Session], job_id: int, after_id: int) -> tuple[dict[str, Any] | None, list[Any]]:
    with sessions() as session:
        job = repo.get_job(session, job_id)
        if job is None:
            return None, []
        state = {"id": job.id, "status": job.status.value, "progress": round(job.progress, 4), "epoch": job.epoch,
                 "total_epochs": job.total_epochs, "step": job.step, "steps_per_epoch": job.steps_per_epoch,
                 "queue_position": repo.queue_position(session, job), "eta_s": eta_seconds(job),
                 "attempts": job.attempts, "error": job.error, "worker": job.worker, "device": job.device,
                 "cancel_requested": job.cancel_requested, "started_at": _iso(job.started_at),
                 "finished_at": _iso(job.finished_at)}
        rows = [{"id": m.id, "name": m.name, "step": m.step, "epoch": m.epoch, "value": m.value,
                 "time": m.time.isoformat()} for m in repo.metrics_after(session, job_id, after_id=after_id)]
        return state, rows


def _iso(t: datetime | None) -> str | None:
    return t.isoformat().replace("+00:00", "Z") if t is not None else None


def _changed(state: dict[str, Any], last: dict[str, Any] | None) -> bool:
    """The ETA moves with the clock; a status event is due only when anything else changed."""
    return last is None or any(state[k] != last[k] for k in state if k != "eta_s")


def _sse(event: str, data: Any, *, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data)}\n\n"


@router.get("/{job_id}/events", operation_id="jobs-events", dependencies=[READ],
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "events: status {job fields}, metrics [rows], end; ': keepalive' comments"},
                       **errors(404)})
async def events(job_id: Id, request: Request, session: SessionDep,
                 last_event_id: Annotated[Offset | None, Header()] = None,
                 after_id: Annotated[Offset | None, Query(description="stream metric rows after this id (the "
                                                          f"{LAST_ID_HEADER} header of /metrics); default all")] = None,
                 poll_s: Annotated[float, Query(ge=0.1, le=10)] = 0.5,
                 keepalive_s: Annotated[float, Query(ge=1, le=60)] = 15.0) -> StreamingResponse:
    """Server-sent events: a ``status`` event on every change (status, progress, epoch, total_epochs,
    steps_per_epoch, queue_position, eta_s, started_at, finished_at...), ``metrics`` batches as rows land (the event
    id is the last metric row id, so a reconnect with Last-Event-ID continues; ``after_id`` skips the history a
    client already fetched from /metrics), ``end`` when the job ends."""
    get_job_or_404(session, job_id)
    session.close()
    sessions = request.app.state.sessions

    async def stream() -> AsyncIterator[str]:
        cursor = max(after_id or 0, last_event_id or 0)
        last_state: dict[str, Any] | None = None
        last_sent = time.monotonic()
        yield "retry: 2000\n\n"
        while True:
            state, rows = await anyio.to_thread.run_sync(_snapshot, sessions, job_id, cursor)
            if state is None:
                yield _sse("end", {"reason": "job deleted"})
                return
            if rows:
                cursor = rows[-1]["id"]
                yield _sse("metrics", rows, event_id=cursor)
                last_sent = time.monotonic()
            if _changed(state, last_state):
                last_state = state
                yield _sse("status", state)
                last_sent = time.monotonic()
            if state["status"] in ("completed", "failed", "cancelled") and not rows:
                yield _sse("end", {"status": state["status"]})
                return
            if time.monotonic() - last_sent >= keepalive_s:
                yield ": keepalive\n\n"
                last_sent = time.monotonic()
            if await request.is_disconnected():
                return
            await asyncio.sleep(poll_s)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
