"""The events of one job's server-sent stream, as ``fastapi.sse.ServerSentEvent`` objects (FastAPI frames them).

``status`` {job fields} whenever anything but the ETA changed, ``metrics`` [rows] as rows land (the event id is the
last row's id, so a browser's reconnect with Last-Event-ID continues), ``end`` once the job ended and its rows were
sent (or it was deleted), and a ``: keepalive`` comment after ``keepalive_s`` of silence.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Awaitable
from datetime import datetime
from typing import Any

import anyio
from fastapi.sse import ServerSentEvent
from sqlalchemy.orm import Session, sessionmaker

from api.present import eta_seconds
from persistence import repo
from persistence.status import TERMINAL

RETRY_MS = 2000  # how long a browser waits before reconnecting a dropped stream
FINAL = frozenset(s.value for s in TERMINAL)


def snapshot(sessions: sessionmaker[Session], job_id: int, after_id: int) -> tuple[dict[str, Any] | None, list[Any]]:
    """The job's fields the dashboard shows and its metric rows after ``after_id``; (None, []) once deleted."""
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


async def job_events(sessions: sessionmaker[Session], job_id: int, *, cursor: int, poll_s: float, keepalive_s: float,
                     disconnected: Callable[[], Awaitable[bool]]) -> AsyncIterator[ServerSentEvent]:
    """Poll the job every ``poll_s`` (on a thread: the database is blocking) until it ends or the client leaves."""
    last_state: dict[str, Any] | None = None
    last_sent = time.monotonic()
    yield ServerSentEvent(retry=RETRY_MS)
    while True:
        state, rows = await anyio.to_thread.run_sync(snapshot, sessions, job_id, cursor)
        if state is None:
            yield ServerSentEvent(event="end", data={"reason": "job deleted"})
            return
        if rows:
            cursor = rows[-1]["id"]
            yield ServerSentEvent(event="metrics", data=rows, id=str(cursor))
            last_sent = time.monotonic()
        if _changed(state, last_state):
            last_state = state
            yield ServerSentEvent(event="status", data=state)
            last_sent = time.monotonic()
        if state["status"] in FINAL and not rows:
            yield ServerSentEvent(event="end", data={"status": state["status"]})
            return
        if time.monotonic() - last_sent >= keepalive_s:
            yield ServerSentEvent(comment="keepalive")
            last_sent = time.monotonic()
        if await disconnected():
            return
        await asyncio.sleep(poll_s)
