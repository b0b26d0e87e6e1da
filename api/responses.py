"""The error answers of the API, documented once: routes name their own codes with ``errors(404, 409)``; the
codes every route of a kind can answer (400 Host, 401/403 token, 403 cross-site, 422 input, 503 outage) are
added to each route by ``document_common`` from what really applies to it (its access level, its method, its
parameters), so the OpenAPI states what a client can get and schemathesis can hold the app to it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.dependencies.utils import get_flat_params
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import BaseRoute
from pydantic import BaseModel

from api.browser_guard import STATE_CHANGING
from api.deps import route_access
from api.schemas.job_request import client_error


class ErrorBody(BaseModel):
    """Every error answer: ``detail`` says what went wrong and what to do (a list of {loc, msg, type} for input)."""

    detail: str | list[dict[str, Any]]


DESCRIPTIONS: dict[int, str] = {
    400: "the Host header is not one this server answers to (ALLOWED_HOSTS)",
    401: "missing, invalid, revoked or expired API token",
    403: "forbidden: the token's scope is too small, a cross-site browser request (ALLOWED_ORIGINS), or a path "
         "outside DATA_ROOTS",
    404: "not found",
    408: "the request body stalled for REQUEST_BODY_TIMEOUT_S; the connection is closed",
    409: "conflicts with the current state (e.g. the job already ended)",
    413: "upload over MAX_UPLOAD_MB, or too many or too large form fields",
    415: "not a video container",
    422: "invalid input: detail names each field and what to fix",
    503: "the database or the broker is unreachable, or no capacity now; retry after Retry-After seconds",
    504: "took longer than the server's time limit",
    507: "the synthetic-data budget (SYNTHETIC_DISK_BUDGET_MB) or the disk is full",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: the given error codes with the shared body and description."""
    return {code: {"model": ErrorBody, "description": DESCRIPTIONS[code]} for code in codes}


def common_codes(route: APIRoute) -> list[int]:
    access = route_access(route)
    codes = [400, 503]
    if access not in (None, "public"):
        codes.append(401)
    if access in ("submit", "admin"):  # a smaller token's scope (read is the least any token has)
        codes.append(403)
    if route.methods & STATE_CHANGING:
        codes.append(403)
    if route.body_field is not None or get_flat_params(route.dependant):
        codes.append(422)
    return sorted(set(codes))


def api_routes(app: FastAPI) -> list[tuple[str, BaseRoute]]:
    """(path, route) of everything the app serves, through included routers (the OpenAPI's own view)."""
    return [(ctx.path or "", ctx.original_route) for ctx in iter_route_contexts(app.routes)]


def document_common(routes: Iterable[BaseRoute]) -> None:
    """Add the common error codes to these API routes (a route's own entry for a code wins). Call it on a router's
    routes before ``include_router`` (FastAPI copies each route's responses when it first serves or documents)."""
    ref = {"application/json": {"schema": {"$ref": f"#/components/schemas/{ErrorBody.__name__}"}}}
    for route in routes:
        if isinstance(route, APIRoute):
            for code in common_codes(route):
                route.responses.setdefault(code, {"description": DESCRIPTIONS[code], "content": ref})


def add_error_schema(schema: dict[str, Any]) -> None:
    """The shared ErrorBody schema in an OpenAPI document (the common codes refer to it)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault(ErrorBody.__name__, ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}"))


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [client_error(dict(e)) for e in exc.errors()]
    return JSONResponse(status_code=422, content={"detail": jsonable_encoder(errors)})


def install_validation_errors(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
