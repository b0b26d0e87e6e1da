"""Health: database, broker, and the workers seen through their heartbeat rows."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import text

from api.deps import EnqueuerDep, SessionDep, SettingsDep
from api.schemas import Check, HealthPublic, WorkerPublic
from persistence import repo

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthPublic, operation_id="health-get")
async def health(session: SessionDep, settings: SettingsDep, enqueuer: EnqueuerDep) -> HealthPublic:
    workers: list[WorkerPublic] = []
    try:
        await run_in_threadpool(session.execute, text("SELECT 1"))
        rows = await run_in_threadpool(repo.live_workers, session, stale_after_s=settings.stale_after_s)
        workers = [WorkerPublic.model_validate(w) for w in rows]
        database = Check(ok=True)
    except Exception as exc:  # noqa: BLE001
        database = Check(ok=False, detail=f"{type(exc).__name__}: {exc}")
    try:
        await run_in_threadpool(enqueuer.ping)
        broker = Check(ok=True)
    except Exception as exc:  # noqa: BLE001
        broker = Check(ok=False, detail=f"{type(exc).__name__}: {exc}")
    ok = database.ok and broker.ok and bool(workers)
    return HealthPublic(status="ok" if ok else "degraded", database=database, broker=broker, workers=workers,
                        auth_required=settings.auth_required)
