"""Apple rewards enrollment over HTTP: the personalizable pass download, Apple's personalize
call, and the web service's answers for a pass that is not personalized yet."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, request
from sqlalchemy.orm import Session
from werkzeug.http import http_date, parse_date

from walletd.enrollment import service
from walletd.enrollment.passes import EnrollmentPassView, build_enrollment_pkpass
from walletd.errors import AuthenticationError, ValidationError
from walletd.passes.pkpass import PKPASS_MIME, load_template
from walletd.web.deps import (
    NO_PASS_CERTIFICATE,
    context,
    pass_builder,
    run_in_transaction,
    services,
)
from walletd.web.endpoint import endpoint
from walletd.web.enrollment_schemas import PersonalizationBody
from walletd.web.errors import error_response

bp = Blueprint("enrollment", __name__)


def _package(view: EnrollmentPassView) -> bytes:
    builder = pass_builder()
    template = load_template(builder.templates_root, view.template)
    return build_enrollment_pkpass(
        view, signer=builder.signer, template=template, web_service_url=builder.web_service_url
    )


@bp.get("/join/<int:program_id>/enrollment.pkpass")
@endpoint(
    "A new personalizable pass of the program (Wallet's sign-up sheet); 404 when enrollment is off",
    tag="cards",
    auth="none",
    media_type=PKPASS_MIME,
    other_responses=NO_PASS_CERTIFICATE,
)
def download(program_id: int) -> Response:
    """A personalizable store card with a fresh serial: Wallet asks the holder to sign up."""
    now = services().clock()
    view = run_in_transaction(lambda s: service.issue_enrollment_pass(s, program_id, now))
    response = Response(_package(view), mimetype=PKPASS_MIME)
    response.headers["Content-Disposition"] = 'attachment; filename="enrollment.pkpass"'
    response.headers["Cache-Control"] = "no-store"
    return response


def _apple_token() -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme == "ApplePass" and token.strip() else None


@bp.post("/passes/v1/passes/<token:pass_type_id>/<token:serial>/personalize")
@endpoint(
    "Apple's personalize call: sign up from Wallet's sheet; answers the signed token",
    tag="apple",
    auth="apple",
    body_doc=PersonalizationBody,
    media_type="application/octet-stream",
    other_responses={
        400: "missing required fields or a malformed body",
        409: "the e-mail and the phone belong to two different members",
        **NO_PASS_CERTIFICATE,
    },
)
def personalize(pass_type_id: str, serial: str) -> Response:
    """Create or match the member, give them this serial's card, and return the PKCS #7
    detached signature of the personalization token (DER), as Apple specifies.

    A serial personalized before answers the signature again and changes nothing.
    """
    builder = pass_builder()
    if pass_type_id != builder.pass_type_id:
        raise AuthenticationError("unauthorized")
    token = _apple_token()
    try:
        body: Any = json.loads(request.get_data() or b"null")
    except ValueError:
        body = None  # refused after the token check: 401 comes before 400
    ctx = context()
    max_devices = services().settings.max_devices_per_card
    try:
        run_in_transaction(
            lambda s: service.personalize(
                s, serial=serial, token=token, pass_type_id=pass_type_id, body=body,
                ctx=ctx, max_devices=max_devices,
            )
        )  # fmt: skip
    except ValidationError as exc:
        # Apple's web service speaks 400 for a request it cannot use, not the API's 422.
        return error_response(400, "invalid_personalization", exc.message, exc.field)
    # Signed after the transaction: no signing while rows are locked.
    signature = builder.signer.sign(str(body["personalizationToken"]).encode("utf-8"))
    return Response(signature, status=200, mimetype="application/octet-stream")


# --- the web service for a pending (not yet personalized) pass ----------------------------------
# apple.py calls these first (lines marked [enrollment]); None sends the request on to the
# card's own handling, which also serves the serial once it is personalized.


def _pending(pass_type_id: str, serial: str) -> bool:
    return service.is_enrollment_serial(serial) and pass_type_id == pass_builder().pass_type_id


def pending_register(device_id: str, pass_type_id: str, serial: str) -> Response | None:
    """Register a device for a pending enrollment pass (201 new, 200 known)."""
    if not _pending(pass_type_id, serial):
        return None
    token = _apple_token()
    try:
        body = json.loads(request.get_data() or b"null")
    except ValueError:
        body = None
    push_token = body.get("pushToken") if isinstance(body, dict) else None
    now = services().clock()

    def work(session: Session) -> bool | None:
        entry = service.find_pending_pass(session, serial, token)
        if entry is None:
            return None
        return service.register_pending_device(
            session, entry, library_id=device_id, push_token=push_token, now=now
        )

    created = run_in_transaction(work)
    if created is None:
        return None
    return Response(status=201 if created else 200)


def pending_unregister(device_id: str, pass_type_id: str, serial: str) -> Response | None:
    """Unregister a device from a pending enrollment pass."""
    if not _pending(pass_type_id, serial):
        return None
    token = _apple_token()

    def work(session: Session) -> bool:
        entry = service.find_pending_pass(session, serial, token)
        if entry is None:
            return False
        service.unregister_pending_device(session, entry, device_id)
        return True

    return Response(status=200) if run_in_transaction(work) else None


def pending_latest(pass_type_id: str, serial: str) -> Response | None:
    """The personalizable pass itself, while it is not personalized."""
    if not _pending(pass_type_id, serial):
        return None
    token = _apple_token()

    def work(session: Session) -> EnrollmentPassView | None:
        entry = service.find_pending_pass(session, serial, token)
        return None if entry is None else service.pending_pass_view(session, entry)

    view = run_in_transaction(work)
    if view is None:
        return None
    modified = view.created_at.replace(microsecond=0)
    since = parse_date(request.headers.get("If-Modified-Since"))
    if since is not None and modified <= since:
        response = Response(status=304)
    else:
        response = Response(_package(view), mimetype=PKPASS_MIME)
    response.headers["Last-Modified"] = http_date(modified)
    response.headers["Cache-Control"] = "no-cache"
    return response
