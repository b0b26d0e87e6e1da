"""Build the FastAPI app: routers, state (database, broker, predictor cache), startup recovery, static files.

Run: ``uvicorn --factory api.main:create_app --http api.slow_clients:GuardedH11Protocol`` (the protocol adds the
request-head deadline uvicorn lacks), or ``python -m api.embedded`` for the one-machine setup.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from api.enqueue import Enqueuer
from api.predict_pool import PredictPool
from api.predictors import PredictorCache
from api.slow_clients import BodyDeadlineMiddleware
from api.upload import UploadGate
from api.routes import artifacts, datasets, demo, experiments, health, jobs, metrics, models, predict
from persistence import repo
from persistence.session import make_engine, make_sessionmaker, transaction
from persistence.settings import Settings, get_settings

log = logging.getLogger("api")


def recover_stale_jobs(app: FastAPI) -> None:
    """At startup: running jobs whose worker stopped beating are re-queued (or failed after max attempts)."""
    settings: Settings = app.state.settings
    with transaction(app.state.sessions) as session:
        found = repo.reclaim_stale(session, stale_after_s=settings.stale_after_s)
    for job_id in found.requeued:
        try:
            app.state.enqueuer.send(job_id)
        except Exception as exc:  # noqa: BLE001 - the workers' periodic check will retry
            log.error("could not re-queue job %d: %s", job_id, exc)
    if found.requeued or found.failed:
        log.warning("startup recovery: re-queued %s, failed %s", found.requeued, found.failed)


def plotly_js() -> Path | None:
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "package_data" / "plotly.min.js"
    return path if path.is_file() else None


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    settings.ensure_dirs()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            recover_stale_jobs(app)
        except Exception:  # noqa: BLE001 - never block startup on recovery
            log.exception("startup recovery failed")
        yield
        app.state.predict_pool.shutdown()
        app.state.enqueuer.close()
        engine.dispose()

    app = FastAPI(title="kdvideo", version="0.1.0", lifespan=lifespan,
                  description="Distillation-as-a-service for self-supervised video action recognition.")
    engine = make_engine(settings.database_url)
    app.state.settings = settings
    app.state.sessions = make_sessionmaker(engine)
    app.state.enqueuer = Enqueuer(settings)
    app.state.predictors = PredictorCache(size=settings.predictor_cache_size)
    app.state.predict_pool = PredictPool(concurrency=settings.predict_concurrency, queue=settings.predict_queue)
    app.state.upload_gate = UploadGate(settings.max_concurrent_uploads)
    app.add_middleware(BodyDeadlineMiddleware, idle_s=settings.request_body_timeout_s)
    for module in (health, datasets, jobs, metrics, artifacts, models, predict, demo, experiments):
        app.include_router(module.router)

    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    def vendor_plotly() -> FileResponse:
        path = plotly_js()
        if path is None:
            raise HTTPException(404, detail="plotly is not installed: pip install plotly")
        return FileResponse(path, media_type="application/javascript",
                            headers={"Cache-Control": "public, max-age=86400"})

    if settings.frontend_dir.is_dir():
        app.mount("/", StaticFiles(directory=settings.frontend_dir, html=True), name="frontend")
    return app
