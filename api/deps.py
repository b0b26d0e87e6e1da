"""Annotated dependencies: settings, database session, enqueuer, and who may call a route.

Every route declares its access level: ``ReadAccess`` / ``SubmitAccess`` / ``AdminAccess`` in its signature (or
``dependencies=[READ]`` ...), or ``dependencies=[PUBLIC]``; tests/api/test_api_access.py fails on a route
without one. With auth on (``Settings.auth_required``) the token's scope must include the route's.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes
from sqlalchemy.orm import Session

from api.services.enqueue import Enqueuer
from persistence import repo
from persistence.models import TOKEN_SCOPES, ApiToken
from persistence.settings import Settings


def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.sessions() as session:
        yield session


def get_enqueuer(request: Request) -> Enqueuer:
    return request.app.state.enqueuer  # type: ignore[no-any-return]


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
SessionDep = Annotated[Session, Depends(get_session)]
EnqueuerDep = Annotated[Enqueuer, Depends(get_enqueuer)]

_bearer = HTTPBearer(auto_error=False, scheme_name="token",
                     description="an API token: python -m api.cli.tokens create --name NAME --scope read|submit|admin. "
                                 "Its scope (read < submit < admin) is listed per operation.")


@dataclass(frozen=True)
class Principal:
    """Who called: the token's name and scope; ``None`` in its place means auth is off (loopback)."""

    name: str
    scope: str


def _need(scopes: list[str]) -> str:
    wanted = [s for s in TOKEN_SCOPES if s in scopes]
    if not wanted:
        raise RuntimeError(f"route declares no known scope ({scopes}); use ReadAccess/SubmitAccess/AdminAccess")
    return wanted[-1]


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"}, detail=detail)


def authenticate(session: Session, credentials: HTTPAuthorizationCredentials | None) -> ApiToken:
    """The active token sent as ``Authorization: Bearer``, or 401 saying what is wrong and how to fix it."""
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise _unauthorized("missing API token: send 'Authorization: Bearer <token>' (the dashboard: Settings > API "
                            "token); create one on the server with: python -m api.cli.tokens create --name NAME")
    token = repo.find_token(session, credentials.credentials)
    state = repo.token_state(token) if token is not None else None
    if token is None or state == "revoked":
        raise _unauthorized("invalid or revoked API token; create a new one with: python -m api.cli.tokens create")
    if state == "expired":
        raise _unauthorized(f"API token {token.name!r} expired at {token.expires_at:%Y-%m-%d %H:%M} UTC; create a new "
                            "one with: python -m api.cli.tokens create --name NAME --expires-in 30d")
    if repo.touch_token(session, token):
        session.commit()
    return token


def authorize(security_scopes: SecurityScopes, request: Request, settings: SettingsDep, session: SessionDep,
              credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Principal | None:
    """When auth is on: a valid token whose scope includes the route's (declared with ``Security(scopes=...)``)."""
    needed = _need(security_scopes.scopes)
    if not settings.auth_required:
        return None
    token = authenticate(session, credentials)
    if not repo.scope_allows(token.scope, needed):
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            detail=f"API token {token.name!r} has scope {token.scope!r}; {request.method} "
                                   f"{request.url.path} needs {needed!r}: create one with python -m api.cli.tokens create "
                                   f"--name NAME --scope {needed}")
    return Principal(name=token.name, scope=token.scope)


def optional_principal(request: Request, settings: SettingsDep, session: SessionDep) -> Principal | None:
    """For public routes that show more to a caller with a read token: that caller, or None (never an error).
    Reads the header itself, so the route is not documented as needing a token (it declares security [{}, ...])."""
    if not settings.auth_required:
        return Principal(name="(auth off)", scope="admin")
    scheme, _, raw = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        return None
    credentials = HTTPAuthorizationCredentials(scheme=scheme, credentials=raw.strip())
    try:
        token = authenticate(session, credentials)
    except HTTPException:
        return None
    return Principal(name=token.name, scope=token.scope)


def public() -> None:
    """Marks a route as callable by anyone (declared like the scopes, so no route is public by omission)."""


def route_access(route: APIRoute) -> str | None:
    """The access level a route declares: 'public', a scope from TOKEN_SCOPES, or None (undeclared: a bug)."""
    levels: set[str] = set()
    stack: list[Dependant] = [route.dependant]
    while stack:
        dep = stack.pop()
        if dep.call is authorize:
            levels.add(_need(dep.own_oauth_scopes or []))
        elif dep.call is public:
            levels.add("public")
        stack.extend(dep.dependencies)
    scoped = [s for s in TOKEN_SCOPES if s in levels]
    return scoped[-1] if scoped else ("public" if levels else None)


ReadAccess = Annotated[Principal | None, Security(authorize, scopes=["read"])]
SubmitAccess = Annotated[Principal | None, Security(authorize, scopes=["submit"])]
AdminAccess = Annotated[Principal | None, Security(authorize, scopes=["admin"])]
PUBLIC = Depends(public)
"""``dependencies=[PUBLIC]`` on a route anyone may call."""
READ = Security(authorize, scopes=["read"])
SUBMIT = Security(authorize, scopes=["submit"])
ADMIN = Security(authorize, scopes=["admin"])
"""``dependencies=[READ]`` etc. for routes that need no Principal in their signature."""
TokenDep = SubmitAccess
"""The name the routes used before scopes: a token allowed to submit."""
