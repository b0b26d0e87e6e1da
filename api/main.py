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

from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from api import observability, outage
from api.browser_guard import BrowserGuard
from api.deps import PUBLIC
from api.services.enqueue import Enqueuer
from api.services.prediction_pool import PredictPool
from api.services.predictors import PredictorCache
from api.responses import add_error_schema, document_common, install_validation_errors
from api.routes import (artifacts, datasets, demo, experiments, health, jobs, metrics, models, predict, prometheus,
                        recipes, tokens)
from api.slow_clients import BodyDeadlineMiddleware
from api.services.upload import UploadGate
from persistence import repo
from persistence.session import make_engine, make_sessionmaker, transaction
from persistence.settings import Settings, get_settings

log = logging.getLogger("api")

PUBLIC_PATHS = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/vendor/plotly.min.js", ""})
"""Routes outside the API routers that anyone may call: the OpenAPI document and its viewers, the vendored
Plotly, and the dashboard's static files (mounted at ""); every API route declares its own access (api.deps)."""


def recover_stale_jobs(app: FastAPI) -> None:
    """At startup: running jobs whose heartbeat is older than STALE_AFTER_S are re-queued (or failed after max
    attempts), fenced by the attempt that was read (never by worker name: a job still beating is left alone);
    queued jobs whose message was lost (sent over DISPATCH_GRACE_S ago while a worker sits idle) are re-sent."""
    settings: Settings = app.state.settings
    with transaction(app.state.sessions) as session:
        found = repo.reclaim_stale(session, stale_after_s=settings.stale_after_s)
        lost = repo.redispatch_lost(session, grace_s=settings.dispatch_grace_s, stale_after_s=settings.stale_after_s)
    for job_id in found.requeued + lost:
        try:
            app.state.enqueuer.send(job_id)
        except Exception as exc:  # noqa: BLE001 - the workers' periodic dispatch sweep will re-send it
            log.error("could not re-queue job %d: %s", job_id, exc)
    if found.requeued or found.failed or lost:
        log.warning("startup recovery: re-queued %s, failed %s, re-sent lost messages of %s",
                    found.requeued, found.failed, lost)


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
        app.state.observability.close()
        app.state.enqueuer.close()
        engine.dispose()

    app = FastAPI(title="kdvideo", version="0.1.0", lifespan=lifespan,
                  description="Distillation-as-a-service for self-supervised video action recognition.")
    engine = make_engine(settings.database_url, connect_timeout_s=settings.db_connect_timeout_s)
    app.state.settings = settings
    app.state.sessions = make_sessionmaker(engine)
    app.state.enqueuer = Enqueuer(settings)
    app.state.predictors = PredictorCache(size=settings.predictor_cache_size)
    app.state.predict_pool = PredictPool(concurrency=settings.predict_concurrency, queue=settings.predict_queue)
    app.state.upload_gate = UploadGate(settings.max_concurrent_uploads)
    app.add_middleware(BodyDeadlineMiddleware, idle_s=settings.request_body_timeout_s)
    for module in (health, datasets, jobs, metrics, artifacts, models, predict, demo, experiments, recipes, tokens,
                   prometheus):
        document_common(module.router.routes)
        app.include_router(module.router)
    outage.install(app)
    install_validation_errors(app)
    app.add_middleware(BrowserGuard, trusted_hosts=settings.trusted_hosts, allowed_origins=settings.allowed_origins)
    observability.install(app)  # outermost: counts and times every answer, the guards' refusals too
    app.openapi = lambda: openapi_schema(app, settings)  # type: ignore[method-assign]

    @app.get("/vendor/plotly.min.js", include_in_schema=False, dependencies=[PUBLIC])
    def vendor_plotly() -> FileResponse:
        path = plotly_js()
        if path is None:
            raise HTTPException(404, detail="plotly is not installed: pip install plotly")
        return FileResponse(path, media_type="application/javascript",
                            headers={"Cache-Control": "public, max-age=86400"})

    if settings.frontend_dir.is_dir():  # public (PUBLIC_PATHS); the dashboard sends a token from its Settings
        app.mount("/", StaticFiles(directory=settings.frontend_dir, html=True), name="frontend")
    return app


def openapi_schema(app: FastAPI, settings: Settings) -> dict[str, Any]:
    """The OpenAPI document, with security as it applies: with auth off (a loopback server) no operation
    needs a token, so none is declared; with auth on each operation lists the scope it needs."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        add_error_schema(schema)
        if not settings.auth_required:
            for path in schema.get("paths", {}).values():
                for operation in path.values():
                    if isinstance(operation, dict):  # and no 401 (403 stays: cross-site, DATA_ROOTS)
                        operation.pop("security", None)
                        operation.get("responses", {}).pop("401", None)
            schema.get("components", {}).pop("securitySchemes", None)
        app.openapi_schema = schema
    return app.openapi_schema
