"""Every route states who may call it (issue 9 item 4): each API route declares public / read / submit / admin
through a dependency, everything else the app serves is in the explicit public list, and the OpenAPI document
declares exactly that security (none when auth is off)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

from api.deps import route_access
from api.main import PUBLIC_PATHS, create_app
from api.responses import api_routes, document_common
from service_helpers import make_settings

EXPECTED_PUBLIC = {("/health", "GET"), ("/vendor/plotly.min.js", "GET")}


def _declared(app: FastAPI) -> dict[tuple[str, str], str | None]:
    out: dict[tuple[str, str], str | None] = {}
    for path, route in api_routes(app):
        if isinstance(route, APIRoute):
            for method in route.methods:
                out[(path, method)] = route_access(route)
        else:
            assert path in PUBLIC_PATHS, f"{type(route).__name__} {path!r} is not an API route and not listed public"
    return out


def test_every_route_declares_its_access(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "var", frontend_dir=Path(__file__).resolve().parents[2] / "frontend")
    declared = _declared(create_app(settings))
    assert len(declared) >= 25
    missing = sorted(k for k, v in declared.items() if v is None)
    assert not missing, f"routes without a declared access level (ReadAccess/SubmitAccess/AdminAccess/PUBLIC): {missing}"
    assert {k for k, v in declared.items() if v == "public"} == EXPECTED_PUBLIC
    for (path, method), level in declared.items():
        if (path, method) in EXPECTED_PUBLIC:
            continue
        if method == "GET":
            assert level in ("read", "admin"), (path, method, level)
        elif path != "/experiments/plan":  # a POST that writes nothing: read
            assert level in ("submit", "admin"), (path, method, level)
    assert declared[("/tokens", "GET")] == "admin"


def test_the_walk_catches_an_undeclared_route(tmp_path: Path) -> None:
    router = APIRouter()

    @router.get("/oops")
    def oops() -> int:
        return 1

    app = create_app(make_settings(tmp_path / "var"))
    app.include_router(router)
    assert _declared(app)[("/oops", "GET")] is None


@pytest.mark.parametrize("auth", ["on", "off"])
def test_openapi_declares_security_as_it_applies(tmp_path: Path, auth: str) -> None:
    app = create_app(make_settings(tmp_path / "var", auth=auth))
    schema = app.openapi()
    declared = _declared(app)
    for path, item in schema["paths"].items():
        for method, op in item.items():
            level = declared[(path, method.upper())]
            codes = set(op["responses"])
            assert {"400", "503"} <= codes, (path, method)
            if auth == "off":
                assert "security" not in op and "401" not in codes, (path, method)
            elif level == "public":
                assert op["security"] == [{}, {"token": ["read"]}], (path, method)  # a token only adds detail
            else:
                assert op["security"] == [{"token": [level]}] and "401" in codes, (path, method)
                assert ("403" in codes) == (level != "read" or method != "get"), (path, method)
    assert ("securitySchemes" in schema.get("components", {})) == (auth == "on")


def test_document_common_keeps_a_routes_own_entry() -> None:
    router = APIRouter()

    @router.post("/x/{i}", responses={403: {"description": "mine"}})
    def x(i: int) -> int:
        return i

    document_common(router.routes)
    route = router.routes[0]
    assert isinstance(route, APIRoute)
    assert route.responses[403] == {"description": "mine"} and {400, 422, 503} <= set(route.responses)
