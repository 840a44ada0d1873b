"""/livez, /readyz, /metrics, request ids and request latency for the Flask app."""

from __future__ import annotations

import hmac
import ipaddress
import time

from flask import Blueprint, Flask, Response, g, jsonify, request

from walletd.errors import AuthenticationError, PermissionDeniedError
from walletd.observability import metrics
from walletd.observability.health import readiness
from walletd.observability.logs import request_id_from, request_id_var
from walletd.web.deps import services
from walletd.web.endpoint import endpoint
from walletd.web.schemas import Health, Readiness

bp = Blueprint("ops", __name__)


@bp.get("/livez")
@endpoint("Liveness: the process answers", tag="operations", auth="none", response=Health)
def livez() -> Response:
    """200 whenever the process answers; touches no database."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
@endpoint(
    "Readiness: database, schema at the newest migration, a worker heartbeat younger than 60 s",
    tag="operations",
    auth="none",
    response=Readiness,
    other_responses={503: "not ready: `failing` names each failing check and why"},
)
def readyz() -> Response:
    """200 when the database answers at the newest schema and a worker beat in the last 60 s."""
    svc = services()
    failures = readiness(svc, svc.clock())
    if failures:
        response = jsonify({"status": "unavailable", "failing": failures})
        response.status_code = 503
        return response
    return jsonify({"status": "ok"})


def _loopback() -> bool:
    try:
        return ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False


@bp.get("/metrics")
@endpoint(
    "Prometheus metrics (text format); loopback only, or a bearer WALLETD_METRICS_TOKEN",
    tag="operations",
    auth="none",
    media_type="text/plain",
    other_responses={401: "the metrics token is missing or wrong", 403: "not a loopback client"},
)
def metrics_page() -> Response:
    """Prometheus text format: loopback clients, or any client with the token when one is set."""
    # Refusals use the JSON error envelope of every other route (documented as such).
    token = services().settings.metrics_token
    if token:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            raise AuthenticationError(
                "metrics need Authorization: Bearer <WALLETD_METRICS_TOKEN>", field="Authorization"
            )
    elif not _loopback():
        raise PermissionDeniedError(
            "metrics are served on loopback only unless WALLETD_METRICS_TOKEN is set"
        )
    svc = services()
    return Response(metrics.render(svc.db, svc.clock), 200, {"Content-Type": metrics.CONTENT_TYPE})


def _start() -> None:
    g.walletd_started = time.perf_counter()
    g.walletd_request_id = request_id_from(request.headers.get("X-Request-Id"))
    g.walletd_request_id_token = request_id_var.set(g.walletd_request_id)


def _finish(response: Response) -> Response:
    request_id = g.get("walletd_request_id")
    if request_id:
        response.headers["X-Request-Id"] = request_id
    started = g.get("walletd_started")
    if started is not None:
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        metrics.REQUEST_SECONDS.labels(
            route,
            request.method if request.method in _METHODS else "other",
            f"{response.status_code // 100}xx",
        ).observe(time.perf_counter() - started)
    return response


def _teardown(_exc: BaseException | None) -> None:
    token = g.pop("walletd_request_id_token", None)
    if token is not None:
        try:
            request_id_var.reset(token)
        except ValueError:  # torn down in another context (streamed responses): nothing to undo
            pass


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def init_app(app: Flask) -> None:
    """Register the routes and the request hooks (first, so every request gets an id)."""
    app.register_blueprint(bp)
    app.before_request_funcs.setdefault(None, []).insert(0, _start)
    app.after_request(_finish)
    app.teardown_request(_teardown)
