"""Wallet links of a card that depend on configured adapters."""

from __future__ import annotations

import logging

from walletd.errors import ConfigError
from walletd.models import Card
from walletd.passes.google import class_id, object_id, save_jwt, save_url
from walletd.push.google_sync import load_credentials_info, program_id_of_card
from walletd.web.deps import services

log = logging.getLogger(__name__)


def google_save_url(card: Card, program_id: int | None = None) -> str | None:
    """The Google Wallet save link, or None while Google Wallet is not configured."""
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
    )
    return save_url(token)
