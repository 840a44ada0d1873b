"""Coupon codes for typing at a till and the signed barcode text a coupon's QR code carries."""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from walletd.loyalty.barcodes import make_signed_code, serial_from_signed_code

COUPON_PREFIX = "WC1"
# No 0/O, 1/I/L, 5/S, 2/Z, 8/B: a cashier reads the code aloud or types it from a screen.
CODE_ALPHABET = "ACDEFGHJKMNPQRTUVWXY34679"
CODE_LENGTH = 10


def make_coupon_barcode(serial: str, secret_key: str) -> str:
    """The exact text in a coupon's QR code: prefix, serial and an HMAC of the serial."""
    # A purpose of its own: a card's tag is never a valid coupon tag for the same serial.
    return make_signed_code(COUPON_PREFIX, "coupon", serial, secret_key)


def coupon_serial_from_barcode(text: object, secret_keys: str | Sequence[str]) -> str | None:
    """The serial a coupon barcode names; None when malformed, altered or forged. Never raises."""
    return serial_from_signed_code(COUPON_PREFIX, "coupon", text, secret_keys)


def new_coupon_code() -> str:
    """A random 10-character code in an unambiguous alphabet (about 46 bits)."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
