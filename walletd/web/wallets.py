"""Wallet links of a card that depend on configured adapters."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session

from walletd.errors import ConfigError
from walletd.models import Card
from walletd.passes.cards import card_view
from walletd.passes.google import (
    build_loyalty_object,
    class_id,
    object_id,
    save_jwt,
    save_link_object,
    save_url,
)
from walletd.push.google_sync import load_credentials_info, program_id_of_card
from walletd.web.deps import services

log = logging.getLogger(__name__)


def google_save_url(
    card: Card, program_id: int | None = None, object_body: dict[str, Any] | None = None
) -> str | None:
    """The Google Wallet save link, or None while Google Wallet is not configured.

    With `object_body` (from google_object_face) the link can create the object itself.
    """
    svc = services()
    settings = svc.settings
    if not settings.google_enabled:
        return None
    try:
        # Read once per process; the RSA signer behind save_jwt is cached as well.
        info = svc.adapter(
            "google_credentials_info", lambda: load_credentials_info(settings.google_credentials)
        )
    except ConfigError:
        # A broken key file must not cost the member their enrollment or their Apple pass.
        log.exception("no Google save link for card %s", card.serial_number)
        return None
    issuer = settings.google_issuer_id
    if program_id is None:
        program_id = program_id_of_card(card)
    token = save_jwt(
        credentials_info=info,
        issuer_id=issuer,
        object_id=object_id(issuer, card.serial_number),
        class_id=class_id(issuer, program_id),
        origins=[settings.base_url],
        now=svc.clock(),
        object_body=object_body,
    )
    return save_url(token)


def google_object_face(session: Session, card: Card, program_id: int) -> dict[str, Any] | None:
    """The card's Google object as a save link may carry it (id, class, balance, barcode)."""
    settings = services().settings
    if not settings.google_enabled:
        return None
    issuer = settings.google_issuer_id
    body = build_loyalty_object(
        card_view(session, card, now=services().clock()),
        issuer_id=issuer,
        class_id=class_id(issuer, program_id),
    )
    return save_link_object(body)
