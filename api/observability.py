"""Prometheus exposition for ``GET /metrics``: request counts and latencies per route template, and a collector
that reads the rest at scrape time.

The API process runs no jobs, so job, queue, worker and training-throughput figures come from the database
(:func:`persistence.ops_stats.ops_snapshot`, three cheap queries) when Prometheus scrapes. That read is bounded:
it runs on one dedicated thread and the scrape waits at most METRICS_DB_TIMEOUT_S for it (on PostgreSQL the
statements carry the same timeout). While the database is down, slow, or a previous read is still stuck, the
scrape answers what this process knows (requests, the predict pool, the upload gate) with
``kdvideo_database_up 0`` instead of hanging or failing.

Each app has its own registry (tests build many apps in one process; the global registry would mix them).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from persistence.base import utcnow
from persistence.ops_stats import OpsSnapshot, ops_snapshot
from persistence.status import JobStatus

log = logging.getLogger("api.observability")

PREFIX = "kdvideo"
UNMATCHED = "(unmatched)"  # no route answered (404, or refused by a guard before routing): one label, not the path
STATIC = "(static)"  # the dashboard's files and other mounts
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def route_label(scope: Scope) -> str:
    """The template of the route that answered (``/jobs/{job_id}``), never the raw path (bounded cardinality)."""
    route = scope.get("route")
    if route is None:
        return UNMATCHED
    return route.path if isinstance(route, Route) else STATIC


class RequestMetrics:
    """ASGI middleware: ``kdvideo_http_requests_total{method,route,status}`` and
    ``kdvideo_http_request_duration_seconds{method,route}`` (until the response ends, streams included)."""

    def __init__(self, app: ASGIApp, *, requests: Counter, latency: Histogram) -> None:
        self.app, self.requests, self.latency = app, requests, latency

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]  # what the server answers when the app raises before starting a response

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route, method = route_label(scope), str(scope.get("method", ""))
            self.requests.labels(method=method, route=route, status=str(status[0])).inc()
            self.latency.labels(method=method, route=route).observe(time.perf_counter() - start)


class ServiceCollector(Collector):
    """Gauges read at scrape time: the database snapshot (bounded) and this process's predict pool and upload gate."""

    def __init__(self, app: FastAPI, *, timeout_s: float, stale_after_s: float) -> None:
        self.app = app
        self.timeout_s = timeout_s
        self.stale_after_s = stale_after_s
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="metrics-db")
        self._pending: Future[OpsSnapshot] | None = None

    def close(self) -> None:
        self._reader.shutdown(wait=False, cancel_futures=True)

    def describe(self) -> list[Any]:
        return []  # collected at scrape time only (not while registering)

    def snapshot(self) -> tuple[OpsSnapshot | None, float]:
        """The database snapshot and the seconds it took; None when the database did not answer in time
        (or a previous read is still stuck: never more than one waits on a dead database)."""
        start = time.perf_counter()
        if self._pending is not None and not self._pending.done():
            return None, 0.0
        sessions: sessionmaker[Session] = self.app.state.sessions
        self._pending = future = self._reader.submit(_read, sessions, self.timeout_s)
        try:
            snap = future.result(timeout=self.timeout_s)
        except FutureTimeout:
            log.warning("metrics: the database did not answer within %.1fs (METRICS_DB_TIMEOUT_S)", self.timeout_s)
            snap = None
        except SQLAlchemyError as exc:
            log.warning("metrics: database unavailable: %s", str(exc).strip().splitlines()[0][:300])
            snap = None
        return snap, time.perf_counter() - start

    def collect(self) -> Iterator[Any]:
        snap, took = self.snapshot()
        yield _gauge("database_up", "1 when the job/worker figures below were read from the database this scrape",
                     1 if snap is not None else 0)
        yield _gauge("database_scrape_seconds", "seconds this scrape spent reading the database", took)
        if snap is not None:
            yield from self._database_families(snap)
        yield from self._process_families()

    def _database_families(self, snap: OpsSnapshot) -> Iterator[Any]:
        jobs = GaugeMetricFamily(f"{PREFIX}_jobs", "jobs by kind and status", labels=["kind", "status"])
        for kind in sorted({k for k, _ in snap.jobs}):
            for status in JobStatus:  # every status of a kind, so a series drops to 0 instead of vanishing
                jobs.add_metric([kind, status.value], snap.jobs.get((kind, status.value), 0))
        yield jobs
        yield _gauge("queue_depth", "queued jobs waiting for a worker", snap.queue_depth)
        throughput = GaugeMetricFamily(f"{PREFIX}_job_clips_per_second",
                                       "training throughput of a running job (its latest clips_per_s metric)",
                                       labels=["job", "kind", "worker"])
        progress = GaugeMetricFamily(f"{PREFIX}_job_progress", "progress (0..1) of a running job",
                                     labels=["job", "kind", "worker"])
        epoch = GaugeMetricFamily(f"{PREFIX}_job_epoch", "epochs a running job has completed",
                                  labels=["job", "kind", "worker"])
        for job in snap.running:
            labels = [str(job.id), job.kind, job.worker or ""]
            progress.add_metric(labels, job.progress)
            epoch.add_metric(labels, job.epoch)
            if job.clips_per_s is not None:
                throughput.add_metric(labels, job.clips_per_s)
        yield from (throughput, progress, epoch)
        now = utcnow()
        age = GaugeMetricFamily(f"{PREFIX}_worker_heartbeat_age_seconds",
                                "seconds since each (not stopped) worker's last heartbeat", labels=["worker"])
        current = GaugeMetricFamily(f"{PREFIX}_worker_current_job",
                                    "the job id a worker is running, 0 when idle", labels=["worker"])
        live = 0
        for worker in snap.workers:
            seconds = max(0.0, (now - worker.heartbeat_at).total_seconds())
            live += seconds <= self.stale_after_s
            age.add_metric([worker.hostname], seconds)
            current.add_metric([worker.hostname], worker.current_job_id or 0)
        yield from (age, current)
        yield _gauge("workers_live", "workers whose heartbeat is within STALE_AFTER_S", live)

    def _process_families(self) -> Iterator[Any]:
        pool = self.app.state.predict_pool
        gate = self.app.state.upload_gate
        yield _gauge("predict_in_flight", "predictions running or waiting for a slot", pool.in_flight)
        yield _gauge("predict_slots", "predictions that may run at once (PREDICT_CONCURRENCY)", pool.concurrency)
        yield _gauge("predict_capacity", "predictions admitted at most, running plus waiting", pool.limit)
        yield _gauge("predict_overdue", "predictions answered 504 whose thread still runs", pool.overdue)
        rejected = CounterMetricFamily(f"{PREFIX}_predict_rejected", "predictions answered 503",
                                       labels=["reason"])
        rejected.add_metric(["full"], pool.rejected)  # every slot and queue place taken
        rejected.add_metric(["slot_wait"], pool.withdrawn)  # waited PREDICT_TIMEOUT_S for a slot
        yield rejected
        yield _gauge("uploads_active", "upload bodies being received", gate.active)
        yield _gauge("uploads_limit", "MAX_CONCURRENT_UPLOADS", gate.limit)
        refused = CounterMetricFamily(f"{PREFIX}_uploads_rejected", "uploads refused with 503 (the gate was full)")
        refused.add_metric([], gate.refused)
        yield refused


def _read(sessions: sessionmaker[Session], timeout_s: float) -> OpsSnapshot:
    with sessions() as session, session.begin():
        return ops_snapshot(session, statement_timeout_s=timeout_s)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}_{name}", doc, value=value)


class Observability:
    """The app's registry: request metrics (filled by :class:`RequestMetrics`) and the scrape-time collector."""

    def __init__(self, app: FastAPI, *, timeout_s: float, stale_after_s: float) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter(f"{PREFIX}_http_requests", "HTTP requests answered, by route template and status",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram(f"{PREFIX}_http_request_duration_seconds", "request latency by route template",
                                 ["method", "route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.collector = ServiceCollector(app, timeout_s=timeout_s, stale_after_s=stale_after_s)
        self.registry.register(self.collector)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def close(self) -> None:
        self.collector.close()


def install(app: FastAPI) -> Observability:
    """Create the app's metrics and add the request middleware (call last, so it is outermost and times
    everything, the guards' refusals included)."""
    settings = app.state.settings
    obs = Observability(app, timeout_s=settings.metrics_db_timeout_s, stale_after_s=settings.stale_after_s)
    app.state.observability = obs
    app.add_middleware(RequestMetrics, requests=obs.requests, latency=obs.latency)
    return obs
