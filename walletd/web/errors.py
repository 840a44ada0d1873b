"""The one table that maps domain errors to HTTP, and the JSON error envelope."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from walletd import errors

log = logging.getLogger(__name__)

STATUS: dict[type[errors.WalletdError], int] = {
    errors.ValidationError: 422,
    errors.AuthenticationError: 401,
    errors.PermissionDeniedError: 403,
    errors.NotFoundError: 404,
    errors.ConflictError: 409,
}


class ApiError(Exception):
    """An HTTP-level refusal raised by views (bad JSON, wrong media type)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class RequestValidationError(Exception):
    """A request that its route's models refuse; every field's problem is reported at once."""

    def __init__(self, problems: list[dict[str, str]]) -> None:
        super().__init__(problems[0]["message"] if problems else "invalid request")
        self.problems = problems


def error_response(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    errors: list[dict[str, str]] | None = None,
    details: dict[str, object] | None = None,
) -> Response:
    """The JSON envelope `{"error": {"code", "message", "field"?, "errors"?, ...}}` with a status;
    `details` adds members documented in the OpenAPI error schema (`existing_member_id`)."""
    body: dict[str, object] = {"code": code, "message": message}
    if field:
        body["field"] = field
    if errors:
        body["errors"] = errors
    if details:
        body.update(details)
    response = jsonify({"error": body})
    response.status_code = status
    if status == 401 and request.path.startswith("/api/"):
        response.headers["WWW-Authenticate"] = 'Bearer realm="walletd"'
    return response


def status_for(exc: errors.WalletdError) -> int:
    """The HTTP status of a domain error, by the nearest class in the table."""
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def init_app(app: Flask) -> None:
    """Register the handlers that turn every error into the envelope."""

    @app.errorhandler(errors.WalletdError)
    def _domain(exc: errors.WalletdError) -> Response:
        return error_response(
            status_for(exc), exc.code, exc.message, exc.field, details=exc.details()
        )

    @app.errorhandler(ApiError)
    def _api(exc: ApiError) -> Response:
        return error_response(exc.status, exc.code, exc.message)

    @app.errorhandler(RequestValidationError)
    def _invalid(exc: RequestValidationError) -> Response:
        first = exc.problems[0]
        message = f"{first['field']}: {first['message']}"
        return error_response(422, "validation_error", message, first["field"], exc.problems)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        code = (exc.name or "error").lower().replace(" ", "_")
        response = error_response(exc.code or 500, code, exc.description or exc.name)
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "something went wrong on our side")
