"""HTTP plumbing shared by every route: error bodies and the request size limit."""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import AppError, BodyTooLarge, error_body

log = logging.getLogger(__name__)


def install_error_handlers(app: FastAPI) -> None:
    """Every error leaves as `{"error": {"code", "message", "details"}}`, never a stack trace."""
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(OperationalError, _database_busy)
    app.add_exception_handler(Exception, _unexpected_error)


async def _app_error(_request: Request, error: Exception) -> Response:
    assert isinstance(error, AppError)
    return JSONResponse(
        error_body(error.code, error.message, error.details),
        status_code=error.status_code,
        headers=error.headers,
    )


async def _validation_error(_request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    problems = [_problem(e) for e in error.errors()]
    if any(p["type"] == "json_invalid" for p in problems):
        return JSONResponse(
            error_body("malformed_json", "the body is not valid JSON", problems), status_code=400
        )
    return JSONResponse(
        error_body("validation_failed", "the request is not valid", problems), status_code=422
    )


def _problem(error: Any) -> dict[str, Any]:
    # The offending input is left out: it can be 25,000 characters long, or a secret.
    return {
        "loc": [str(part) for part in error.get("loc", ())],
        "msg": error.get("msg"),
        "type": error.get("type"),
    }


async def _http_error(_request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    # FastAPI's own 400s are bodies it could not decode (bad UTF-8, nesting too deep).
    if error.status_code == 400:
        return JSONResponse(
            error_body("malformed_json", "the body is not valid JSON"), status_code=400
        )
    code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
    return JSONResponse(
        error_body(code, str(error.detail)), status_code=error.status_code, headers=error.headers
    )


async def _database_busy(request: Request, error: Exception) -> Response:
    """Lock timeouts, deadlocks and lost connections: nothing was committed, try again."""
    assert isinstance(error, OperationalError)
    log.warning(
        "database unavailable on %s %s: %s",
        request.method,
        request.url.path,
        type(error.orig).__name__,
    )
    body = error_body("database_unavailable", "the database is busy or unreachable; retry shortly")
    return JSONResponse(body, status_code=503, headers={"Retry-After": "1"})


async def _unexpected_error(request: Request, error: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return JSONResponse(
        error_body("internal_error", "an unexpected error occurred"), status_code=500
    )


class BodySizeLimit:
    """Refuses bodies over the limit with 413, whether announced by Content-Length or streamed.

    The body is read here, up to the limit, and replayed to the application: an error raised
    while FastAPI itself reads the body would reach the client as a generic 400.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message]), send)
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            more = message.get("more_body", False)
        body = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([body], then=receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = BodyTooLarge(
            f"the body is over {self.max_bytes} bytes", details={"max_bytes": self.max_bytes}
        )
        response = await _app_error(Request(scope), error)
        await response(scope, receive, send)


def _replay(messages: list[Message], then: Receive | None = None) -> Receive:
    async def receive() -> Message:
        if messages:
            return messages.pop(0)
        if then is None:
            return {"type": "http.disconnect"}
        return await then()

    return receive


async def raw_body(request: Request) -> bytes:
    """The body exactly as sent: the signature covers these bytes."""
    return await request.body()
