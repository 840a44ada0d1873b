"""Card serials and the signed barcode text that the QR code carries."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

PREFIX = "WD1"
_MAC_BYTES = 10  # 80-bit tag: guessing one is hopeless, and the QR code stays small.


def new_serial() -> str:
    """A random 24-character serial in QR alphanumeric characters (upper-case base32)."""
    return base64.b32encode(secrets.token_bytes(15)).decode("ascii")


def new_auth_token() -> str:
    """The pass authentication token: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def _mac(serial: str, secret_key: str) -> str:
    digest = hmac.new(secret_key.encode(), f"barcode:{serial}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest[:_MAC_BYTES]).decode("ascii")


def make_barcode(serial: str, secret_key: str) -> str:
    """The exact text encoded in the card's QR code: prefix, serial and an HMAC of the serial."""
    return f"{PREFIX}.{serial}.{_mac(serial, secret_key)}"


def serial_from_barcode(text: str, secret_key: str) -> str | None:
    """The serial a barcode names, or None when it is malformed, altered or forged."""
    if not isinstance(text, str) or len(text) > 128:
        return None
    parts = text.strip().upper().split(".")
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1].isalnum():
        return None
    if not hmac.compare_digest(_mac(parts[1], secret_key), parts[2]):
        return None
    return parts[1]
