"""Health: database, broker, and the workers seen through their heartbeat rows.

200 ``ok`` or ``degraded`` (no live worker: jobs wait, nothing is broken), 503 ``unavailable`` when the database
or the broker is down, so a probe that reads only status codes sees an outage. Anyone may ask; the checks'
details and the workers are shown only to a caller with a read token (or when auth is off).
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status
from fastapi.concurrency import run_in_threadpool

from api.deps import PUBLIC, EnqueuerDep, Principal, SessionDep, SettingsDep, optional_principal
from api.outage import RETRY_AFTER_S
from api.schemas import Check, HealthPublic, WorkerPublic
from persistence import repo

router = APIRouter(tags=["health"])
log = logging.getLogger("api.health")


@router.get("/health", response_model=HealthPublic, operation_id="health-get", dependencies=[PUBLIC],
            responses={503: {"model": HealthPublic, "description": "the database or the broker is down"}},
            openapi_extra={"security": [{}, {"token": ["read"]}]})  # a read token shows the details
async def health(session: SessionDep, settings: SettingsDep, enqueuer: EnqueuerDep, response: Response,
                 caller: Annotated[Principal | None, Depends(optional_principal)]) -> HealthPublic:
    workers: list[WorkerPublic] = []
    problems: list[str] = []
    try:
        await run_in_threadpool(repo.ping, session)
        rows = await run_in_threadpool(repo.live_workers, session, stale_after_s=settings.stale_after_s)
        workers = [WorkerPublic.model_validate(w) for w in rows]
        database = Check(ok=True)
    except Exception as exc:  # noqa: BLE001
        log.warning("health: database check failed: %s", exc)
        database = Check(ok=False, detail=f"{type(exc).__name__} (details in the server log)")
        problems.append("database unreachable")
    try:
        await run_in_threadpool(enqueuer.ping)
        broker = Check(ok=True)
    except Exception as exc:  # noqa: BLE001
        log.warning("health: broker check failed: %s", exc)
        broker = Check(ok=False, detail=f"{type(exc).__name__} (details in the server log)")
        problems.append("broker unreachable")
    if database.ok and not workers:
        problems.append("no live workers: jobs stay queued until one starts")
    down = not (database.ok and broker.ok)
    if down:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
    state = "unavailable" if down else ("degraded" if problems else "ok")
    if caller is None:
        return HealthPublic(status=state, problems=problems, auth_required=settings.auth_required)
    return HealthPublic(status=state, problems=problems, auth_required=settings.auth_required, database=database,
                        broker=broker, workers=workers)
