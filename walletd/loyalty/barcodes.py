"""Card serials and the signed barcode text that the QR code carries."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence

PREFIX = "WD1"
_MAC_BYTES = 10  # 80-bit tag: guessing one is hopeless, and the QR code stays small.


def new_serial() -> str:
    """A random 24-character serial in QR alphanumeric characters (upper-case base32)."""
    return base64.b32encode(secrets.token_bytes(15)).decode("ascii")


def new_auth_token() -> str:
    """The pass authentication token: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def _mac(purpose: str, serial: str, secret_key: str) -> str:
    digest = hmac.new(secret_key.encode(), f"{purpose}:{serial}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest[:_MAC_BYTES]).decode("ascii")


def make_signed_code(prefix: str, purpose: str, serial: str, secret_key: str) -> str:
    """`PREFIX.SERIAL.TAG`: the tag an HMAC of the serial for one purpose (a card's tag is
    never valid for a coupon of the same serial)."""
    return f"{prefix}.{serial}.{_mac(purpose, serial, secret_key)}"


def serial_from_signed_code(
    prefix: str, purpose: str, text: object, secret_keys: str | Sequence[str]
) -> str | None:
    """The serial a signed code names, or None when it is malformed, altered or forged; never
    raises. A code made with any of the keys is accepted (see `serial_from_barcode`)."""
    if not isinstance(text, str) or len(text) > 128:
        return None
    trimmed = text.strip()
    # ASCII first: upper-casing "ſ" or "ı" would otherwise turn them into a valid "S" or "I".
    if not trimmed.isascii():
        return None
    match = re.fullmatch(
        rf"{re.escape(prefix)}\.([A-Z0-9]{{1,64}})\.([A-Z2-7]{{16}})", trimmed.upper()
    )
    if match is None:
        return None
    serial, sent = match.group(1), match.group(2).encode("ascii")
    keys = (secret_keys,) if isinstance(secret_keys, str) else tuple(secret_keys)
    # Every key is tried, so the time taken does not tell which one matched.
    matches = [
        hmac.compare_digest(_mac(purpose, serial, key).encode("ascii"), sent) for key in keys
    ]
    return serial if any(matches) else None


def make_barcode(serial: str, secret_key: str) -> str:
    """The exact text encoded in the card's QR code: prefix, serial and an HMAC of the serial."""
    return make_signed_code(PREFIX, "barcode", serial, secret_key)


def serial_from_barcode(text: object, secret_keys: str | Sequence[str]) -> str | None:
    """The serial a barcode names, or None when it is malformed, altered or forged; never raises.

    A barcode made with any of the keys is accepted: cards printed before a key rotation keep
    working while the old key is listed as a fallback, and their stored text never changes.
    """
    return serial_from_signed_code(PREFIX, "barcode", text, secret_keys)
