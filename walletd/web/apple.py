"""The Apple Wallet web service (webServiceURL = <base>/passes/) and the pass download link."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from flask import Blueprint, Response, abort, request
from sqlalchemy.orm import Session
from werkzeug.http import http_date, parse_date

from walletd.errors import AuthenticationError
from walletd.passes import serving
from walletd.passes.pkpass import PKPASS_MIME
from walletd.push import registrations
from walletd.web import enrollment, links  # [enrollment]
from walletd.web.deps import NO_PASS_CERTIFICATE, pass_builder, run_in_transaction, services
from walletd.web.endpoint import endpoint
from walletd.web.schemas import (
    DeviceLogs,
    PassesQuery,
    PushTokenBody,
    SignedLinkQuery,
    UpdatedSerials,
)

T = TypeVar("T")

bp = Blueprint("apple", __name__, url_prefix="/passes/v1")
downloads = Blueprint("downloads", __name__)


def _apple_token() -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme == "ApplePass" and token.strip() else None


def _as_pass_holder(
    pass_type_id: str,
    serial: str,
    work: Callable[[Session, registrations.PassHolder], T],
    *,
    lock: bool = False,
) -> T:
    """Authenticate the ApplePass token and do the request's work in the same transaction."""
    token = _apple_token()
    if pass_type_id != pass_builder().pass_type_id:
        raise AuthenticationError("unauthorized")

    def authenticated(session: Session) -> T:
        return work(session, registrations.authenticate_holder(session, serial, token, lock=lock))

    return run_in_transaction(authenticated)


def _empty(status: int) -> Response:
    return Response(status=status)


@bp.post("/devices/<token:device_id>/registrations/<token:pass_type_id>/<token:serial>")
@endpoint(
    "Register a device for pass updates (201 new, 200 known)",
    tag="apple",
    auth="apple",
    body_doc=PushTokenBody,
    status=201,
    other_responses={200: "already registered", **NO_PASS_CERTIFICATE},
    media_type="",
)
def register(device_id: str, pass_type_id: str, serial: str) -> Response:
    """Register a device for a pass: 201 new, 200 already registered, 401 bad token."""
    if (pending := enrollment.pending_register(device_id, pass_type_id, serial)) is not None:
        return pending  # [enrollment] a personalizable pass not personalized yet
    try:
        body = json.loads(request.get_data() or b"null")
    except ValueError:
        body = None  # refused by register_device, after the token check (401 comes first)
    push_token = body.get("pushToken") if isinstance(body, dict) else None
    now = services().clock()
    created = _as_pass_holder(
        pass_type_id,
        serial,
        lambda s, card: registrations.register_device(
            s, library_id=device_id, pass_type_id=pass_type_id, card=card,
            push_token=push_token, now=now,
            max_devices=services().settings.max_devices_per_card,
        ),
        lock=True,
    )  # fmt: skip
    return _empty(201 if created else 200)


@bp.delete("/devices/<token:device_id>/registrations/<token:pass_type_id>/<token:serial>")
@endpoint(
    "Unregister a device from a pass",
    tag="apple",
    auth="apple",
    media_type="",
    other_responses=NO_PASS_CERTIFICATE,
)
def unregister(device_id: str, pass_type_id: str, serial: str) -> Response:
    """Unregister a device from a pass (200 even when it was not registered)."""
    if (pending := enrollment.pending_unregister(device_id, pass_type_id, serial)) is not None:
        return pending  # [enrollment] a personalizable pass not personalized yet
    now = services().clock()
    _as_pass_holder(
        pass_type_id,
        serial,
        lambda s, card: registrations.unregister_device(
            s, library_id=device_id, card=card, now=now
        ),
    )
    return _empty(200)


@bp.get("/devices/<token:device_id>/registrations/<token:pass_type_id>")
@endpoint(
    "Serial numbers changed since passesUpdatedSince (204 when none)",
    tag="apple",
    auth="none",
    query=PassesQuery,
    response=UpdatedSerials,
    other_responses={204: "no pass changed"},
)
def updated(device_id: str, pass_type_id: str, query: PassesQuery) -> Response:
    """Serials changed since passesUpdatedSince: 200 with a string lastUpdated, or 204."""
    since = registrations.parse_tag(query.passesUpdatedSince)
    now = services().clock()  # [delivery] when the device was handed its cards' versions
    result = run_in_transaction(
        lambda s: registrations.updated_serials(
            s, library_id=device_id, pass_type_id=pass_type_id, since=since, now=now
        )
    )
    if not result.serials:
        return _empty(204)
    body = {"serialNumbers": result.serials, "lastUpdated": result.last_updated}
    return Response(json.dumps(body), status=200, mimetype="application/json")


def _pass_response(modified_at: datetime, data: bytes | None, *, serial: str | None) -> Response:
    """The pass (or a 304 when `data` is None); `serial` names the file of a download."""
    response = _empty(304) if data is None else Response(data, mimetype=PKPASS_MIME)
    response.headers["Last-Modified"] = http_date(modified_at.replace(microsecond=0))
    response.headers["Cache-Control"] = "no-cache"
    if serial is not None:
        response.headers["Content-Disposition"] = f'attachment; filename="{serial}.pkpass"'
    return response


def _package(session: Session, holder: registrations.PassHolder) -> bytes:
    # The service's clock decides which promotion is running and which coupons are still usable.
    settings = services().settings
    return serving.package_of(
        session, holder, services().context(), passes=pass_builder(),
        base_url=settings.base_url, secret_key=settings.secret_key,
    )  # fmt: skip


@bp.get("/passes/<token:pass_type_id>/<token:serial>")
@endpoint(
    "The latest signed pass (304 with If-Modified-Since)",
    tag="apple",
    auth="apple",
    media_type=PKPASS_MIME,
    other_responses={304: "not modified", **NO_PASS_CERTIFICATE},
)
def latest(pass_type_id: str, serial: str) -> Response:
    """The latest signed pass, or 304 when it has not changed since If-Modified-Since.

    A 304 is one statement (the authentication reads the card's change time); a fetch adds at
    most the read of the stored package (walletd.passes.serving).
    """
    if (pending := enrollment.pending_latest(pass_type_id, serial)) is not None:
        return pending  # [enrollment] a personalizable pass not personalized yet
    since = parse_date(request.headers.get("If-Modified-Since"))

    def work(session: Session, holder: registrations.PassHolder) -> tuple[datetime, bytes | None]:
        modified = holder.updated_at.replace(microsecond=0)
        if since is not None and modified <= since:
            return modified, None
        return modified, _package(session, holder)

    modified, data = _as_pass_holder(pass_type_id, serial, work)
    return _pass_response(modified, data, serial=None)


@bp.post("/log")
@endpoint("Device log messages", tag="apple", auth="none", body_doc=DeviceLogs, media_type="")
def log_messages() -> Response:
    """Store what devices report about errors with our passes."""
    try:
        body = json.loads(request.get_data() or b"null")
    except ValueError:
        return _empty(400)
    logs = body.get("logs") if isinstance(body, dict) else None
    if not isinstance(logs, list):
        # Apple's protocol knows 200 and 400 here, not the API's 422.
        return _empty(400)
    now = services().clock()
    run_in_transaction(lambda s: registrations.record_device_logs(s, body, now))
    return _empty(200)


@downloads.get("/cards/<token:serial>/pass.pkpass")
@endpoint(
    "The signed Apple Wallet pass (signed link)",
    tag="cards",
    auth="none",
    query=SignedLinkQuery,
    media_type=PKPASS_MIME,
    other_responses=NO_PASS_CERTIFICATE,
)
def download(serial: str, query: SignedLinkQuery) -> Response:
    """The signed .pkpass behind the card's signed download link."""
    if not links.check_link("pkpass", serial, query.sig, services().settings.secret_keys):
        abort(404)

    def work(session: Session) -> tuple[datetime, bytes] | None:
        holder = registrations.find_holder(session, serial)
        return None if holder is None else (holder.updated_at, _package(session, holder))

    found = run_in_transaction(work)
    if found is None:
        abort(404)
    return _pass_response(*found, serial=serial)
