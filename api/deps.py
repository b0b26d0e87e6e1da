"""Annotated dependencies: settings, database session, enqueuer, bearer-token check."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from api.enqueue import Enqueuer
from persistence import repo
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

_bearer = HTTPBearer(auto_error=False, description="create one with: python -m api.tokens create --name NAME")


def require_token(settings: SettingsDep, session: SessionDep,
                  credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> str | None:
    """When auth is on, a valid ``Authorization: Bearer <token>``; returns the token's name."""
    if not settings.auth_required:
        return None
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"},
                            detail="missing API token: send 'Authorization: Bearer <token>' "
                                   "(create one on the server with: python -m api.tokens create --name NAME)")
    token = repo.verify_token(session, credentials.credentials)
    if token is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"},
                            detail="invalid or revoked API token; create a new one with python -m api.tokens create")
    session.commit()
    return token.name


TokenDep = Annotated[str | None, Depends(require_token)]
