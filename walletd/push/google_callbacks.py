"""Verify Google Wallet save/delete callbacks (Google Pay "ECv2SigningOnly" signatures).

Construction, as in Tink's PaymentMethodTokenRecipient (Java, Go) and edutap.wallet_google:

- LV(x) = 4-byte little-endian byte length of UTF-8 x, then those bytes.
- The intermediate key is valid when one of ``intermediateSigningKey.signatures`` verifies
  LV("GooglePayPasses") + LV("ECv2SigningOnly") + LV(signedKey) with a root key whose
  protocolVersion is ECv2SigningOnly and that has not expired, and signedKey.keyExpiration is
  in the future.
- The message is valid when ``signature`` verifies
  LV("GooglePayPasses") + LV(issuer id) + LV("ECv2SigningOnly") + LV(signedMessage) with the
  intermediate key. signedMessage is used exactly as received, never re-serialised.
- Signatures are ECDSA P-256 with SHA-256, ASN.1 DER, base64; keys are base64 DER
  SubjectPublicKeyInfo.

Then signedMessage's expTimeMillis must be in the future and its classId and objectId must
belong to our issuer. De-duplicating on the nonce is the caller's job.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

log = logging.getLogger(__name__)

SENDER_ID = "GooglePayPasses"
PROTOCOL_VERSION = "ECv2SigningOnly"
DEFAULT_KEYS_URL = "https://pay.google.com/gp/m/issuer/keys"
DEFAULT_CLOCK_SKEW = timedelta(seconds=60)

EventType = Literal["save", "del"]


class CallbackVerificationError(Exception):
    """The callback is not provably from Google for our issuer; answer 4xx and drop it."""

    retryable = False


class RootKeysUnavailableError(CallbackVerificationError):
    """Google's root keys could not be fetched; answer 5xx so Google delivers again."""

    retryable = True


@dataclass(frozen=True)
class CallbackEvent:
    """One verified save or delete of a pass by its holder."""

    event_type: EventType
    class_id: str
    object_id: str
    nonce: str  # unique per delivery attempt set; the caller de-duplicates on it
    expires_at: datetime  # aware UTC, from expTimeMillis
    count: int | None  # Google's "count" field, meaning undocumented
    signed_message: str  # the verified text, for audit logs


@dataclass(frozen=True)
class RootKey:
    """One of Google's root signing keys."""

    public_key: ec.EllipticCurvePublicKey
    expires_ms: int | None  # None: no expiry published


def _lv(*parts: str) -> bytes:
    out = bytearray()
    for part in parts:
        # Byte length, not len(str): the two differ for non-ASCII text (edutap gets this wrong).
        data = part.encode("utf-8")
        out += len(data).to_bytes(4, "little") + data
    return bytes(out)


def _b64(value: object, what: str) -> bytes:
    if not isinstance(value, str) or not value:
        raise CallbackVerificationError(f"{what} is missing")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CallbackVerificationError(f"{what} is not base64") from exc


def _ec_public_key(value: object, what: str) -> ec.EllipticCurvePublicKey:
    der = _b64(value, what)
    try:
        key = load_der_public_key(der)
    except ValueError as exc:
        raise CallbackVerificationError(f"{what} is not a DER public key") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise CallbackVerificationError(f"{what} is not a P-256 key")
    return key


def _expiry_ms(value: object) -> int | None:
    # Google writes keyExpiration as a string of epoch milliseconds; accept a number too.
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("keyExpiration is not a number")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise ValueError("keyExpiration is not a number")


def parse_root_keys(document: bytes | str) -> list[RootKey]:
    """Parse Google's root-key JSON, keeping only ECv2SigningOnly keys."""
    try:
        payload = json.loads(document)
        entries = payload["keys"]
        if not isinstance(entries, list):
            raise TypeError("keys is not a list")
    except (ValueError, KeyError, TypeError) as exc:
        raise RootKeysUnavailableError(f"root key document is malformed: {exc}") from exc
    keys: list[RootKey] = []
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("protocolVersion") != PROTOCOL_VERSION:
            continue
        try:
            keys.append(
                RootKey(
                    _ec_public_key(entry.get("keyValue"), "root keyValue"),
                    _expiry_ms(entry.get("keyExpiration")),
                )
            )
        except (CallbackVerificationError, ValueError) as exc:
            # One bad entry must not take down the others.
            log.warning("skipping unusable Google root key: %s", exc)
    return keys


def _default_fetcher(url: str) -> bytes:
    response = requests.get(url, timeout=(5, 10))
    with response:
        response.raise_for_status()
        return response.content


class RootKeyCache:
    """Google's root signing keys, fetched on demand and kept for a TTL (or earliest expiry)."""

    def __init__(
        self,
        url: str = DEFAULT_KEYS_URL,
        *,
        ttl: timedelta = timedelta(hours=1),
        min_refetch_interval: timedelta = timedelta(minutes=1),
        fetcher: Callable[[str], bytes] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url
        self._ttl = ttl.total_seconds()
        self._min_refetch = min_refetch_interval.total_seconds()
        self._fetcher = fetcher or _default_fetcher
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: list[RootKey] = []
        self._fetched_at: float | None = None
        self._stale_at = float("-inf")
        self.fetch_count = 0

    def _fetch(self, now: float) -> None:
        try:
            document = self._fetcher(self.url)
        except RootKeysUnavailableError:
            raise
        except Exception as exc:  # any fetcher failure means "no keys now"
            raise RootKeysUnavailableError(f"cannot fetch Google root keys: {exc}") from exc
        keys = parse_root_keys(document)
        self.fetch_count += 1
        self._keys = keys
        self._fetched_at = now
        stale_at = now + self._ttl
        expiries = [k.expires_ms / 1000 for k in keys if k.expires_ms is not None]
        if expiries:
            stale_at = min(stale_at, min(expiries))
        self._stale_at = stale_at

    def keys(self, *, refresh: bool = False) -> list[ec.EllipticCurvePublicKey]:
        """Return the unexpired root keys; refresh=True refetches unless fetched very recently."""
        with self._lock:
            now = self._clock()
            recently = self._fetched_at is not None and now - self._fetched_at < self._min_refetch
            if now >= self._stale_at or (refresh and not recently):
                try:
                    self._fetch(now)
                except RootKeysUnavailableError:
                    if not self._live(now):
                        raise
                    # Keys we already hold are still within their own expiry: keep verifying.
                    log.warning("Google root key refresh failed; using cached keys")
            live = self._live(now)
        if not live:
            raise RootKeysUnavailableError("no unexpired ECv2SigningOnly root key")
        return live

    def _live(self, now: float) -> list[ec.EllipticCurvePublicKey]:
        now_ms = now * 1000
        return [k.public_key for k in self._keys if k.expires_ms is None or k.expires_ms > now_ms]


def _verify(key: ec.EllipticCurvePublicKey, signature: bytes, data: bytes) -> bool:
    try:
        key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def _str_field(obj: Mapping[str, Any], name: str, what: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str) or not value:
        raise CallbackVerificationError(f"{what}.{name} is missing")
    return value


def _parse_body(body: bytes | str | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(body, Mapping):
        return body
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CallbackVerificationError("callback body is not JSON") from exc
    if not isinstance(payload, dict):
        raise CallbackVerificationError("callback body is not a JSON object")
    return payload


def _intermediate_key(
    payload: Mapping[str, Any], root_keys: RootKeyCache, now_ms: int
) -> ec.EllipticCurvePublicKey:
    isk = payload.get("intermediateSigningKey")
    if not isinstance(isk, Mapping):
        raise CallbackVerificationError("intermediateSigningKey is missing")
    signed_key = _str_field(isk, "signedKey", "intermediateSigningKey")
    signatures = isk.get("signatures")
    if not isinstance(signatures, list) or not signatures:
        raise CallbackVerificationError("intermediateSigningKey.signatures is missing")
    decoded = [_b64(s, "intermediate signature") for s in signatures]
    data = _lv(SENDER_ID, PROTOCOL_VERSION, signed_key)

    def signed_by(keys: list[ec.EllipticCurvePublicKey]) -> bool:
        return any(_verify(root, sig, data) for root in keys for sig in decoded)

    if not signed_by(root_keys.keys()):
        # Google may have rotated its roots since we cached them: look once more.
        if not signed_by(root_keys.keys(refresh=True)):
            raise CallbackVerificationError("intermediate key is not signed by a Google root key")
    try:
        key_info = json.loads(signed_key)
    except ValueError as exc:
        raise CallbackVerificationError("signedKey is not JSON") from exc
    if not isinstance(key_info, dict):
        raise CallbackVerificationError("signedKey is not a JSON object")
    try:
        expires_ms = _expiry_ms(key_info.get("keyExpiration"))
    except ValueError as exc:
        raise CallbackVerificationError("signedKey.keyExpiration is not a number") from exc
    if expires_ms is None:
        raise CallbackVerificationError("signedKey.keyExpiration is missing")
    if expires_ms <= now_ms:
        raise CallbackVerificationError("intermediate signing key has expired")
    return _ec_public_key(key_info.get("keyValue"), "signedKey.keyValue")


def verify_callback(
    body: bytes | str | Mapping[str, Any],
    *,
    issuer_id: str,
    root_keys: RootKeyCache,
    now: datetime,
    clock_skew: timedelta = DEFAULT_CLOCK_SKEW,
) -> CallbackEvent:
    """Verify a save/delete callback body and return its event; raise if it is not proven."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    now_ms = int(now.timestamp() * 1000)
    payload = _parse_body(body)
    if payload.get("protocolVersion") != PROTOCOL_VERSION:
        raise CallbackVerificationError("protocolVersion is not ECv2SigningOnly")
    signature = _b64(payload.get("signature"), "signature")
    signed_message = _str_field(payload, "signedMessage", "callback")

    intermediate = _intermediate_key(payload, root_keys, now_ms)
    if not _verify(
        intermediate, signature, _lv(SENDER_ID, issuer_id, PROTOCOL_VERSION, signed_message)
    ):
        # Also what a callback meant for another issuer looks like: the recipient is signed in.
        raise CallbackVerificationError("message signature does not verify for this issuer")

    try:
        message = json.loads(signed_message)
    except ValueError as exc:
        raise CallbackVerificationError("signedMessage is not JSON") from exc
    if not isinstance(message, dict):
        raise CallbackVerificationError("signedMessage is not a JSON object")
    event_type = message.get("eventType")
    if event_type not in ("save", "del"):
        raise CallbackVerificationError(f"unknown eventType {event_type!r}")
    exp = message.get("expTimeMillis")
    if isinstance(exp, bool) or not isinstance(exp, int | str) or not str(exp).isdigit():
        raise CallbackVerificationError("expTimeMillis is missing")
    exp_ms = int(exp)
    if exp_ms + clock_skew.total_seconds() * 1000 <= now_ms:
        raise CallbackVerificationError("callback message has expired")
    class_id = _str_field(message, "classId", "signedMessage")
    object_id = _str_field(message, "objectId", "signedMessage")
    for name, value in (("classId", class_id), ("objectId", object_id)):
        if not value.startswith(f"{issuer_id}."):
            raise CallbackVerificationError(f"{name} does not belong to issuer {issuer_id}")
    nonce = _str_field(message, "nonce", "signedMessage")
    count = message.get("count")
    return CallbackEvent(
        event_type="save" if event_type == "save" else "del",
        class_id=class_id,
        object_id=object_id,
        nonce=nonce,
        expires_at=datetime.fromtimestamp(exp_ms / 1000, UTC),
        count=count if isinstance(count, int) and not isinstance(count, bool) else None,
        signed_message=signed_message,
    )
