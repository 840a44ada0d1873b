"""Signing secrets: made, kept encrypted at rest, and used as the Standard Webhooks spec says."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SECRET_PREFIX = "whsec_"
# 24 random bytes: 192 bits, 32 base64 characters without padding (the spec allows 24 to 64).
SECRET_BYTES = 24
_HKDF_INFO = b"walletd webhook signing secrets v1"


def new_secret() -> str:
    """A fresh signing secret, `whsec_` and the base64 of random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_bytes(secret: str) -> bytes:
    """The HMAC key of a `whsec_…` secret: the base64-decoded part after the prefix."""
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: `v1,` and base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


@lru_cache(maxsize=8)
def _vault(keys: tuple[str, ...]) -> MultiFernet:
    """Fernet keys derived from the app's secret keys: the first encrypts, all decrypt."""
    fernets = []
    for key in keys:
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(
            key.encode()
        )
        fernets.append(Fernet(base64.urlsafe_b64encode(derived)))
    return MultiFernet(fernets)


def seal_secret(secret: str, keys: Sequence[str]) -> str:
    """A signing secret encrypted with the current app secret key (WALLETD_SECRET_KEY)."""
    return _vault(tuple(keys)).encrypt(secret.encode()).decode()


class SecretUnreadableError(Exception):
    """A stored secret was encrypted with a key this process no longer has."""


def open_secret(sealed: str, keys: Sequence[str]) -> str:
    """The signing secret back; a retired key still opens it while it is listed as a fallback."""
    try:
        return _vault(tuple(keys)).decrypt(sealed.encode()).decode()
    except (InvalidToken, binascii.Error, ValueError) as exc:
        raise SecretUnreadableError(
            "the endpoint's secret was encrypted with a key that is neither WALLETD_SECRET_KEY "
            "nor one of WALLETD_SECRET_KEY_FALLBACKS"
        ) from exc
