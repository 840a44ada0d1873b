"""Unauthenticated routes: health, the OpenAPI document, and signed card links."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, jsonify
from sqlalchemy import text

from walletd.models import Card
from walletd.passes.cards import find_card_by_serial
from walletd.passes.qr import qr_png
from walletd.web import links
from walletd.web.deps import services
from walletd.web.endpoint import endpoint
from walletd.web.openapi import openapi_document
from walletd.web.schemas import Health, SignedLinkQuery

bp = Blueprint("public", __name__)


@bp.get("/healthz")
@endpoint(
    "Database health",
    tag="operations",
    auth="none",
    response=Health,
    other_responses={503: "the database does not answer"},
)
def healthz() -> Response:
    """200 when the database answers, 503 otherwise."""
    try:
        with services().db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception:  # any database failure means "not healthy", whatever its type
        response = jsonify({"status": "unavailable"})
        response.status_code = 503
        return response
    return jsonify({"status": "ok"})


@bp.get("/openapi.json")
@endpoint("This document", tag="operations", auth="none")
def openapi() -> Response:
    """The OpenAPI 3.1 description of every route."""
    return jsonify(openapi_document(current_app, services().settings.base_url))


def card_by_signed_link(purpose: str, serial: str, sig: str) -> Card:
    """The card a signed link names; a wrong signature looks like a missing card."""
    svc = services()
    if not links.check_link(purpose, serial, sig, svc.settings.secret_keys):
        abort(404)
    with svc.db.sessions() as session:
        card = find_card_by_serial(session, serial)
    if card is None:
        abort(404)
    return card


@bp.get("/cards/<token:serial>/qr.png")
@endpoint(
    "The card's QR code (signed link)",
    tag="cards",
    auth="none",
    query=SignedLinkQuery,
    media_type="image/png",
)
def card_qr(serial: str, query: SignedLinkQuery) -> Response:
    """The PNG of the card's QR code."""
    card = card_by_signed_link("qr", serial, query.sig)
    response = Response(qr_png(card.barcode), mimetype="image/png")
    response.headers["Cache-Control"] = "private, max-age=86400"
    return response
