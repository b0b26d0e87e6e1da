"""API tokens as the server knows them (admin only); they are created and revoked with python -m api.cli.tokens."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import AdminAccess, SessionDep
from api.schemas import TokenPublic
from persistence import repo
from persistence.base import utcnow

router = APIRouter(tags=["tokens"])


@router.get("/tokens", response_model=list[TokenPublic], operation_id="tokens-list")
def list_tokens(session: SessionDep, _: AdminAccess) -> list[TokenPublic]:
    """Every token's name, scope, expiry and state (active, revoked, expired); never the token itself."""
    now = utcnow()
    return [TokenPublic(id=t.id, name=t.name, scope=t.scope, state=repo.token_state(t, now),  # type: ignore[arg-type]
                        expires_at=t.expires_at, created_at=t.created_at, last_used_at=t.last_used_at)
            for t in repo.list_tokens(session)]
