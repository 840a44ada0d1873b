"""Google Wallet routes: signed save/delete callbacks, and the program logos Google fetches."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify, request

from walletd.errors import NotFoundError
from walletd.push import google_sync
from walletd.push.google_callbacks import (
    CallbackVerificationError,
    RootKeyCache,
    RootKeysUnavailableError,
    verify_callback,
)
from walletd.services import Services
from walletd.web.deps import decode_json, run_in_transaction, services
from walletd.web.endpoint import endpoint
from walletd.web.errors import ApiError
from walletd.web.schemas import GoogleCallback, GoogleCallbackResult

log = logging.getLogger(__name__)

bp = Blueprint("google", __name__, url_prefix="/google")


def root_keys(svc: Services) -> RootKeyCache:
    """Google's callback root keys, fetched and cached once per process."""
    url = svc.settings.google_root_keys_url
    return svc.adapter("google_root_keys", lambda: RootKeyCache(url))  # type: ignore[no-any-return]


@bp.post("/callbacks")
@endpoint(
    "Google Wallet save/delete callback (signed by Google, ECv2SigningOnly)",
    tag="google",
    auth="google",
    body_doc=GoogleCallback,
    response=GoogleCallbackResult,
    other_responses={503: "Google's signing keys cannot be fetched now"},
)
def callbacks() -> Response:
    """Record a holder saving or deleting a pass; duplicates (same nonce) change nothing."""
    svc = services()
    issuer_id = svc.settings.google_issuer_id
    if not svc.settings.google_enabled:
        raise NotFoundError("Google Wallet is not configured")
    raw = request.get_data()
    if not isinstance(decode_json(raw), dict):
        raise ApiError(400, "malformed_json", "the body must be a JSON object")
    try:
        event = verify_callback(raw, issuer_id=issuer_id, root_keys=root_keys(svc), now=svc.clock())
    except RootKeysUnavailableError as exc:
        log.warning("cannot check a Google callback now: %s", exc)
        raise ApiError(503, "keys_unavailable", "Google's signing keys are unavailable") from exc
    except CallbackVerificationError as exc:
        log.warning("refused a Google callback: %s", exc)
        raise ApiError(401, "invalid_signature", f"callback not verified: {exc}") from exc
    now = svc.clock()
    outcome = run_in_transaction(
        lambda s: google_sync.record_callback(s, event, issuer_id=issuer_id, now=now)
    )
    return jsonify({"status": outcome})


@bp.get("/programs/<int:program_id>/logo.png")
@endpoint(
    "A program's logo, fetched by Google for its loyalty class",
    tag="google",
    auth="none",
    media_type="image/png",
)
def program_logo(program_id: int) -> Response:
    """The program's logo, public because Google's image fetcher has no credentials."""
    svc = services()
    root = svc.settings.pass_templates_path
    path = run_in_transaction(lambda s: google_sync.program_logo(s, root, program_id))
    response = Response(path.read_bytes(), mimetype="image/png")
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response
