"""Domain errors: each carries its HTTP status and a stable machine-readable code."""

from typing import Any, ClassVar


class AppError(Exception):
    """Base of every error the API turns into `{"error": {"code", "message", "details"}}`."""

    status_code = 400
    code = "bad_request"
    headers: ClassVar[dict[str, str] | None] = None

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class Unauthenticated(AppError):
    status_code = 401
    code = "unauthenticated"
    headers: ClassVar[dict[str, str] | None] = {"WWW-Authenticate": "Bearer"}


class Forbidden(AppError):
    status_code = 403
    code = "forbidden"


class NotFound(AppError):
    status_code = 404
    code = "not_found"


class Conflict(AppError):
    status_code = 409
    code = "conflict"


class IllegalTransition(Conflict):
    code = "illegal_transition"


class InvalidInput(AppError):
    status_code = 422
    code = "validation_failed"


class InvalidModel(InvalidInput):
    code = "invalid_model"


class UnknownAccount(InvalidInput):
    code = "unknown_account"


class BatchTooLarge(AppError):
    status_code = 413
    code = "batch_too_large"


class BodyTooLarge(AppError):
    status_code = 413
    code = "body_too_large"


class NoRoutingTable(AppError):
    status_code = 503
    code = "no_routing_table"


class NotConfigured(AppError):
    """A capability whose settings are missing (X credentials, say)."""

    status_code = 503
    code = "not_configured"


class InvalidConfiguration(AppError):
    status_code = 422
    code = "invalid_configuration"


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """The JSON body every error response carries."""
    return {"error": {"code": code, "message": message, "details": details}}
