"""Request dependencies: who is calling (from the key in a header) and may they."""

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from app.access import service
from app.access.cache import KeyCache
from app.access.service import Principal
from app.errors import Forbidden, Unauthenticated

# Declared as security schemes so that the OpenAPI description (and the "Authorize" button of
# /docs) knows where the key goes; auto_error=False lets us answer with our own 401 body.
_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <key>")
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="X-API-Key: <key>")


BearerKey = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
HeaderKey = Annotated[str | None, Depends(_api_key_header)]


async def current_principal(request: Request, bearer: BearerKey, api_key: HeaderKey) -> Principal:
    """The caller, from `Authorization: Bearer <key>` or `X-API-Key` (never the URL); 401
    without a valid, unrevoked key. A key checked less than `key_cache_seconds` ago is not read
    again (see `app.access.cache`)."""
    token = bearer.credentials.strip() if bearer is not None else (api_key or "").strip()
    if not token:
        raise Unauthenticated("an API key is required (Authorization: Bearer <key>)")
    keys: KeyCache = request.app.state.keys
    sessions = request.app.state.read_sessionmaker
    principal = await keys.check(token, lambda: run_in_threadpool(_verify, sessions, token))
    if principal is None:
        raise Unauthenticated("the API key is not valid or was revoked")
    return principal


def _verify(sessions: sessionmaker[Session], token: str) -> Principal | None:
    with sessions() as session:
        try:
            return service.verify(session=session, token=token)
        finally:
            session.rollback()


Caller = Annotated[Principal, Depends(current_principal)]


def requires(scope: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that lets through the callers whose key has this scope (or admin).

    It reads the key itself rather than depending on `current_principal`: each level of
    dependencies costs FastAPI about 10 µs a request to solve, and every post goes through
    this one (in-process, the ingest itself left out: 116-140 -> 109-123 µs a post)."""

    async def check(  # async: no hop to the thread pool
        request: Request, bearer: BearerKey, api_key: HeaderKey
    ) -> Principal:
        principal = await current_principal(request, bearer, api_key)
        if not principal.allows(scope):
            raise Forbidden(f"this key lacks the {scope!r} scope", details={"scope": scope})
        return principal

    return check


Ingester = Annotated[Principal, Depends(requires("ingest"))]
RoutingWriter = Annotated[Principal, Depends(requires("routing:write"))]
Admin = Annotated[Principal, Depends(requires("admin"))]
