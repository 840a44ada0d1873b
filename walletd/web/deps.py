"""Per-request plumbing: the app's services, one transaction, the clock and JSON bodies."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

from flask import Response, current_app, jsonify, request
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from walletd.loyalty.context import Context
from walletd.services import Services
from walletd.web.errors import ApiError

T = TypeVar("T")


def services() -> Services:
    """The services wired by `create_app` for this application."""
    return current_app.extensions["walletd"]  # type: ignore[no-any-return]


def context() -> Context:
    """A use-case context with the app clock's reading for this request."""
    return services().context()


def run_in_transaction(work: Callable[[Session], T], *, retries: int = 2) -> T:
    """Run one unit of work in one transaction; retry when a concurrent twin won a race."""
    db = services().db
    for attempt in range(retries + 1):
        try:
            with db.transaction() as session:
                return work(session)
        except IntegrityError:
            # A concurrent request inserted the same idempotency key first: run again to replay.
            if attempt == retries:
                raise
        except DBAPIError as exc:
            # Postgres deadlock (40P01) or serialisation failure (40001): safe to run again.
            code = getattr(exc.orig, "sqlstate", None)
            if code not in ("40P01", "40001") or attempt == retries:
                raise
    raise AssertionError("unreachable")


def json_response(body: Any, status: int = 200) -> Response:
    """A JSON response with a status."""
    response = jsonify(body)
    response.status_code = status
    return response


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def json_body() -> dict[str, Any]:
    """The request's JSON object; numbers are Decimals, never floats."""
    mimetype = request.mimetype
    if mimetype != "application/json":
        raise ApiError(415, "unsupported_media_type", "send Content-Type: application/json")
    raw = request.get_data(cache=True)
    try:
        data = json.loads(raw, parse_float=Decimal, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "malformed_json", f"the body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ApiError(400, "malformed_json", "the body must be a JSON object")
    return data
