"""Request dependencies: who is calling (from the key in a header) and may they."""

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from app.access import service
from app.access.service import Principal
from app.db import get_read_session
from app.errors import Forbidden, Unauthenticated

# Declared as security schemes so that the OpenAPI description (and the "Authorize" button of
# /docs) knows where the key goes; auto_error=False lets us answer with our own 401 body.
_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <key>")
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="X-API-Key: <key>")


def current_principal(
    session: Annotated[Session, Depends(get_read_session)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key_header)],
) -> Principal:
    """The caller, from `Authorization: Bearer <key>` or `X-API-Key` (never the URL); 401
    without a valid, unrevoked key."""
    token = bearer.credentials.strip() if bearer is not None else (api_key or "").strip()
    if not token:
        raise Unauthenticated("an API key is required (Authorization: Bearer <key>)")
    principal = service.verify(session=session, token=token)
    session.rollback()
    if principal is None:
        raise Unauthenticated("the API key is not valid or was revoked")
    return principal


Caller = Annotated[Principal, Depends(current_principal)]


def requires(scope: str) -> Callable[[Principal], Principal]:
    """A dependency that lets through the callers whose key has this scope (or admin)."""

    def check(principal: Caller) -> Principal:
        if not principal.allows(scope):
            raise Forbidden(f"this key lacks the {scope!r} scope", details={"scope": scope})
        return principal

    return check


Ingester = Annotated[Principal, Depends(requires("ingest"))]
RoutingWriter = Annotated[Principal, Depends(requires("routing:write"))]
Admin = Annotated[Principal, Depends(requires("admin"))]
