"""Request dependencies: who is calling (from the key in a header) and may they."""

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from app.access import service
from app.access.service import Principal
from app.db import get_read_session
from app.errors import Forbidden, Unauthenticated


def _token(request: Request) -> str | None:
    """The key from `Authorization: Bearer <key>` or `X-API-Key`; never from the URL."""
    authorization = request.headers.get("authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return request.headers.get("x-api-key") or None


def current_principal(
    request: Request, session: Annotated[Session, Depends(get_read_session)]
) -> Principal:
    """The caller; 401 without a valid, unrevoked key."""
    token = _token(request)
    if token is None:
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
