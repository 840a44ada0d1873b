"""Per-request plumbing: the app's services, one transaction, the clock and JSON bodies."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any, TypeVar

from flask import Response, current_app, jsonify, request
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from walletd.loyalty.context import Context
from walletd.observability.logs import QuietRepeats
from walletd.passes.apple import ApplePasses
from walletd.passes.signing import PassSignerError
from walletd.services import Services
from walletd.web.errors import ApiError
from walletd.wiring import shared_apple_passes

T = TypeVar("T")


def services() -> Services:
    """The services wired by `create_app` for this application."""
    return current_app.extensions["walletd"]  # type: ignore[no-any-return]


# What routes that need the pass builder also answer (documented in /openapi.json).
NO_PASS_CERTIFICATE = {503: "no Apple pass certificate can be loaded on this server now"}


def pass_builder() -> ApplePasses:
    """This process's Apple pass builder (certificate and key loaded once, shared by the web
    service, downloads and enrollment passes); 503 while the signing material cannot be loaded
    (a missing or unreadable WALLETD_APPLE_CERT/KEY/WWDR), so that a later request tries again."""
    svc = services()
    try:
        return shared_apple_passes(svc)
    except PassSignerError as exc:
        problems: QuietRepeats = svc.adapter("apple_certificate_problems", QuietRepeats)
        if problems.due(str(exc)):
            current_app.logger.error(
                "Apple passes cannot be signed: %s (logged at most once a minute per process)",
                exc,
            )
        raise ApiError(
            503, "apple_unavailable", "Apple Wallet passes cannot be signed on this server now"
        ) from exc


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


# JSON bodies deeper than this are refused before any model sees them (RecursionError guard).
MAX_DEPTH = 32


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether a decoded JSON value nests containers more than `limit` deep (iterative)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Iterator[Any] = iter(node.values())
        elif isinstance(node, list):
            children = iter(node)
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def decode_json(raw: bytes | str, *, what: str = "the body") -> Any:
    """JSON with numbers as Decimal (never float), no NaN/Infinity, nested at most MAX_DEPTH."""
    try:
        data = json.loads(raw, parse_float=Decimal, parse_constant=_reject_constant)
    except RecursionError as exc:
        raise ApiError(400, "malformed_json", f"{what} is nested too deeply") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "malformed_json", f"{what} is not valid JSON: {exc}") from exc
    if _depth_exceeds(data, MAX_DEPTH):
        raise ApiError(400, "malformed_json", f"{what} is nested deeper than {MAX_DEPTH} levels")
    return data


def json_body() -> dict[str, Any]:
    """The request's JSON object (415 for another media type, 400 when it is not JSON)."""
    if request.mimetype != "application/json":
        raise ApiError(415, "unsupported_media_type", "send Content-Type: application/json")
    data = decode_json(request.get_data(cache=True))
    if not isinstance(data, dict):
        raise ApiError(400, "malformed_json", "the body must be a JSON object")
    return data
