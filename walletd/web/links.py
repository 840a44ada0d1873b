"""Signed public links to a card's QR code and pass, usable without credentials."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence

from walletd.config import Settings

# What a link can carry: serials are short ASCII tokens (base32 today), signatures are the first
# 32 hex digits of an HMAC. Anything else cannot be ours and is refused before any comparison.
_SERIAL = re.compile(r"[A-Za-z0-9._-]{1,64}")
_SIGNATURE = re.compile(r"[0-9a-f]{32}")


def link_signature(purpose: str, serial: str, secret_key: str) -> str:
    """An HMAC that makes a card link unguessable from its serial (always the current key)."""
    message = f"link:{purpose}:{serial}".encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()[:32]


def check_link(
    purpose: str, serial: object, signature: object, secret_keys: str | Sequence[str]
) -> bool:
    """True when a link signature is one we issued with any of the keys; never raises."""
    if not isinstance(serial, str) or not isinstance(signature, str):
        return False
    if not _SERIAL.fullmatch(serial) or not _SIGNATURE.fullmatch(signature):
        return False
    keys = (secret_keys,) if isinstance(secret_keys, str) else tuple(secret_keys)
    sent = signature.encode("ascii")
    # Every key is tried, so the time taken does not tell which one matched.
    matches = [
        hmac.compare_digest(link_signature(purpose, serial, key).encode("ascii"), sent)
        for key in keys
    ]
    return any(matches)


def qr_url(settings: Settings, serial: str) -> str:
    """Absolute URL of the card's QR code PNG."""
    sig = link_signature("qr", serial, settings.secret_key)
    return f"{settings.base_url}/cards/{serial}/qr.png?sig={sig}"


def apple_pass_url(settings: Settings, serial: str) -> str:
    """Absolute URL that downloads the signed .pkpass."""
    sig = link_signature("pkpass", serial, settings.secret_key)
    return f"{settings.base_url}/cards/{serial}/pass.pkpass?sig={sig}"


# --- after-sale feedback (issue 12 [feedback]) ---------------------------------------------------
_EXPIRY = re.compile(r"[0-9]{1,11}")


def feedback_url(base_url: str, secret_key: str, scan_id: int, expires: int) -> str:
    """Absolute URL of the page rating one visit; the signature binds the scan and the expiry
    (Unix seconds), so neither can be changed in the link."""
    sig = link_signature("feedback", f"{scan_id}.{expires}", secret_key)
    return f"{base_url}/feedback/{scan_id}?exp={expires}&sig={sig}"


def check_feedback_link(
    scan_id: int, expires: object, signature: object, secret_keys: str | Sequence[str]
) -> bool:
    """True when a feedback link's signature is ours for this scan and expiry; never raises."""
    if not isinstance(expires, str) or not _EXPIRY.fullmatch(expires):
        return False
    return check_link("feedback", f"{scan_id}.{int(expires)}", signature, secret_keys)
