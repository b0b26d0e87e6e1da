"""The database or the broker is down: answer 503 JSON with Retry-After instead of a plain-text 500.

Installed on the app as exception handlers, so every route is covered without catching anything itself.
What the driver said goes to the log, never to the client.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from kombu.exceptions import OperationalError as BrokerOperationalError
from sqlalchemy.exc import DBAPIError, OperationalError

log = logging.getLogger("api.outage")

RETRY_AFTER_S = 5
DATABASE_DOWN = "the database is unreachable; retry in a few seconds (the server log has the cause)"
BROKER_DOWN = "the job queue (broker) is unreachable; retry in a few seconds (the server log has the cause)"


def is_connection_error(exc: DBAPIError) -> bool:
    """Lost or refused connections (and SQLite's 'database is locked'): transient, worth a retry."""
    return isinstance(exc, OperationalError) or bool(exc.connection_invalidated)


def unavailable(detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)})


async def database_error(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, DBAPIError) and is_connection_error(exc):
        log.warning("%s %s: database unavailable: %s", request.method, request.url.path, exc)
        return unavailable(DATABASE_DOWN)
    log.error("%s %s: database error", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": "internal database error; the server log has the details"}, status_code=500)


async def broker_error(request: Request, exc: Exception) -> JSONResponse:
    log.warning("%s %s: broker unavailable: %s", request.method, request.url.path, exc)
    return unavailable(BROKER_DOWN)


def install(app: FastAPI) -> None:
    app.add_exception_handler(DBAPIError, database_error)
    app.add_exception_handler(BrokerOperationalError, broker_error)
