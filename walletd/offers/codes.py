"""Coupon codes for typing at a till and the signed barcode text a coupon's QR code carries."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence

COUPON_PREFIX = "WC1"
_MAC_BYTES = 10  # 80-bit tag, as for cards: guessing one is hopeless.
_BARCODE = re.compile(rf"{COUPON_PREFIX}\.([A-Z0-9]{{1,64}})\.([A-Z2-7]{{16}})")
# No 0/O, 1/I/L, 5/S, 2/Z, 8/B: a cashier reads the code aloud or types it from a screen.
CODE_ALPHABET = "ACDEFGHJKMNPQRTUVWXY34679"
CODE_LENGTH = 10


def _mac(serial: str, secret_key: str) -> str:
    # A purpose of its own: a card's tag is never a valid coupon tag for the same serial.
    digest = hmac.new(secret_key.encode(), f"coupon:{serial}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest[:_MAC_BYTES]).decode("ascii")


def make_coupon_barcode(serial: str, secret_key: str) -> str:
    """The exact text in a coupon's QR code: prefix, serial and an HMAC of the serial."""
    return f"{COUPON_PREFIX}.{serial}.{_mac(serial, secret_key)}"


def coupon_serial_from_barcode(text: object, secret_keys: str | Sequence[str]) -> str | None:
    """The serial a coupon barcode names; None when malformed, altered or forged. Never raises."""
    if not isinstance(text, str) or len(text) > 128:
        return None
    trimmed = text.strip()
    # ASCII first: upper-casing "ſ" or "ı" would otherwise turn them into a valid "S" or "I".
    if not trimmed.isascii():
        return None
    match = _BARCODE.fullmatch(trimmed.upper())
    if match is None:
        return None
    serial, sent = match.group(1), match.group(2).encode("ascii")
    keys = (secret_keys,) if isinstance(secret_keys, str) else tuple(secret_keys)
    # Every key is tried, so the time taken does not tell which one matched.
    matches = [hmac.compare_digest(_mac(serial, key).encode("ascii"), sent) for key in keys]
    return serial if any(matches) else None


def new_coupon_code() -> str:
    """A random 10-character code in an unambiguous alphabet (about 46 bits)."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
