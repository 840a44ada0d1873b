"""Signed public links to a card's QR code and pass, usable without credentials."""

from __future__ import annotations

import hashlib
import hmac

from walletd.config import Settings


def link_signature(purpose: str, serial: str, secret_key: str) -> str:
    """An HMAC that makes a card link unguessable from its serial."""
    message = f"link:{purpose}:{serial}".encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()[:32]


def check_link(purpose: str, serial: str, signature: str, secret_key: str) -> bool:
    """True when a link signature is the one we issued."""
    return hmac.compare_digest(link_signature(purpose, serial, secret_key), signature or "")


def qr_url(settings: Settings, serial: str) -> str:
    """Absolute URL of the card's QR code PNG."""
    sig = link_signature("qr", serial, settings.secret_key)
    return f"{settings.base_url}/cards/{serial}/qr.png?sig={sig}"


def apple_pass_url(settings: Settings, serial: str) -> str:
    """Absolute URL that downloads the signed .pkpass."""
    sig = link_signature("pkpass", serial, settings.secret_key)
    return f"{settings.base_url}/cards/{serial}/pass.pkpass?sig={sig}"
