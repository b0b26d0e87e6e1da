"""``GET /metrics``: the Prometheus exposition (api.observability); a scraper sends a read token when auth is on."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from api.deps import READ

router = APIRouter(tags=["observability"])


@router.get("/metrics", operation_id="prometheus-metrics", dependencies=[READ], response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}},
                             "description": "Prometheus text format: requests per route, jobs by kind and state, "
                                            "queue depth, worker heartbeats, training throughput, predict pool and "
                                            "upload gate; kdvideo_database_up 0 when the database did not answer "
                                            "within METRICS_DB_TIMEOUT_S (the rest is still served)"}})
def metrics(request: Request) -> Response:
    """Runs on a thread: the database part of the scrape blocks up to METRICS_DB_TIMEOUT_S."""
    return Response(request.app.state.observability.exposition(), media_type=CONTENT_TYPE_LATEST)
