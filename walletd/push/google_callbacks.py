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

The endpoint is public, so everything that costs no cryptography (shape, sizes, JSON, numbers,
expiries, issuer) is checked first, and one call makes at most MAX_SIGNATURE_CHECKS ECDSA
verifications: a few intermediate signatures against a few live root keys.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import requests
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

log = logging.getLogger(__name__)

SENDER_ID = "GooglePayPasses"
PROTOCOL_VERSION = "ECv2SigningOnly"
DEFAULT_KEYS_URL = "https://pay.google.com/gp/m/issuer/keys"
DEFAULT_CLOCK_SKEW = timedelta(seconds=60)
# Bounds on what an unauthenticated caller can make us parse and verify. Google's callbacks are
# about 1 KB with one intermediate signature; its key list has one or two live root keys.
MAX_CALLBACK_BYTES = 16 * 1024
MAX_SIGNED_MESSAGE_CHARS = 4096
MAX_SIGNED_KEY_CHARS = 1024
MAX_SIGNATURE_CHARS = 256  # base64 of a DER P-256 ECDSA signature is at most 96
MAX_INTERMEDIATE_SIGNATURES = 3
MAX_ROOT_KEYS = 3
MAX_ID_CHARS = 256
MAX_NONCE_CHARS = 200
# Root signatures tried against the cached keys and once more after a refresh, plus the message.
MAX_SIGNATURE_CHECKS = 2 * MAX_INTERMEDIATE_SIGNATURES * MAX_ROOT_KEYS + 1
# Epoch milliseconds past the year 9999 cannot be a date.
MAX_EPOCH_MS = 253_402_300_799_999

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
    # A P-256 SubjectPublicKeyInfo is 91 bytes; refuse anything far larger before parsing.
    if isinstance(value, str) and len(value) > 512:
        raise CallbackVerificationError(f"{what} is too long for a P-256 key")
    der = _b64(value, what)
    try:
        key = load_der_public_key(der)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise CallbackVerificationError(f"{what} is not a DER public key") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise CallbackVerificationError(f"{what} is not a P-256 key")
    return key


def _expiry_ms(value: object) -> int | None:
    """Epoch milliseconds as Google writes them (a string of digits, or a number); None if absent.

    Only ASCII digits count: `str.isdigit()` also accepts "²" and "١", which `int()` refuses
    or reads as another number.
    """
    if value is None:
        return None
    if type(value) is int:
        number = value
    elif isinstance(value, str) and 0 < len(value) <= 15 and value.isascii() and value.isdigit():
        number = int(value)
    else:
        raise ValueError("not a number of milliseconds")
    if not 0 <= number <= MAX_EPOCH_MS:
        raise ValueError("milliseconds out of range")
    return number


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
        """The unexpired keys, at most MAX_ROOT_KEYS of them, those that expire last first."""
        now_ms = now * 1000
        live = [k for k in self._keys if k.expires_ms is None or k.expires_ms > now_ms]
        live.sort(key=lambda k: math.inf if k.expires_ms is None else k.expires_ms, reverse=True)
        return [k.public_key for k in live[:MAX_ROOT_KEYS]]


def _verify(key: ec.EllipticCurvePublicKey, signature: bytes, data: bytes) -> bool:
    try:
        key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def _text(value: object, what: str, max_chars: int) -> str:
    """A non-empty string of at most `max_chars` that encodes as UTF-8 (no lone surrogates)."""
    if not isinstance(value, str) or not value:
        raise CallbackVerificationError(f"{what} is missing")
    if len(value) > max_chars:
        raise CallbackVerificationError(f"{what} is longer than {max_chars} characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise CallbackVerificationError(f"{what} is not UTF-8 text") from exc
    return value


def _str_field(obj: Mapping[str, Any], name: str, what: str, max_chars: int = MAX_ID_CHARS) -> str:
    return _text(obj.get(name), f"{what}.{name}", max_chars)


def _json_object(text: str, what: str) -> Mapping[str, Any]:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise CallbackVerificationError(f"{what} is not JSON") from exc
    if not isinstance(value, dict):
        raise CallbackVerificationError(f"{what} is not a JSON object")
    return value


def _parse_body(body: bytes | str | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(body, Mapping):
        return body
    if not isinstance(body, bytes | str):
        raise CallbackVerificationError("callback body is not JSON")
    if len(body) > MAX_CALLBACK_BYTES:
        raise CallbackVerificationError(f"callback body is larger than {MAX_CALLBACK_BYTES} bytes")
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise CallbackVerificationError("callback body is not JSON") from exc
    if not isinstance(payload, dict):
        raise CallbackVerificationError("callback body is not a JSON object")
    return payload


@dataclass(frozen=True)
class _Callback:
    """A callback whose shape has been checked; nothing in it is proven yet."""

    signature: bytes
    signed_message: str
    message: Mapping[str, Any]
    signed_key: str
    key_signatures: list[bytes]
    intermediate: ec.EllipticCurvePublicKey


def _parse_callback(payload: Mapping[str, Any], now_ms: int) -> _Callback:
    """Check everything that needs no signature check, so garbage costs no crypto."""
    if payload.get("protocolVersion") != PROTOCOL_VERSION:
        raise CallbackVerificationError("protocolVersion is not ECv2SigningOnly")
    signature = _b64(_text(payload.get("signature"), "signature", MAX_SIGNATURE_CHARS), "signature")
    signed_message = _text(payload.get("signedMessage"), "signedMessage", MAX_SIGNED_MESSAGE_CHARS)
    isk = payload.get("intermediateSigningKey")
    if not isinstance(isk, Mapping):
        raise CallbackVerificationError("intermediateSigningKey is missing")
    signed_key = _str_field(isk, "signedKey", "intermediateSigningKey", MAX_SIGNED_KEY_CHARS)
    signatures = isk.get("signatures")
    if not isinstance(signatures, list) or not signatures:
        raise CallbackVerificationError("intermediateSigningKey.signatures is missing")
    if len(signatures) > MAX_INTERMEDIATE_SIGNATURES:
        raise CallbackVerificationError(
            f"intermediateSigningKey has more than {MAX_INTERMEDIATE_SIGNATURES} signatures"
        )
    key_signatures = [
        _b64(_text(s, "intermediate signature", MAX_SIGNATURE_CHARS), "intermediate signature")
        for s in signatures
    ]
    key_info = _json_object(signed_key, "signedKey")
    try:
        expires_ms = _expiry_ms(key_info.get("keyExpiration"))
    except ValueError as exc:
        raise CallbackVerificationError("signedKey.keyExpiration is not a number") from exc
    if expires_ms is None:
        raise CallbackVerificationError("signedKey.keyExpiration is missing")
    if expires_ms <= now_ms:
        raise CallbackVerificationError("intermediate signing key has expired")
    intermediate = _ec_public_key(key_info.get("keyValue"), "signedKey.keyValue")
    return _Callback(
        signature=signature,
        signed_message=signed_message,
        message=_json_object(signed_message, "signedMessage"),
        signed_key=signed_key,
        key_signatures=key_signatures,
        intermediate=intermediate,
    )


def _check_root_signature(callback: _Callback, root_keys: RootKeyCache) -> None:
    """One of the intermediate key's signatures verifies with a live Google root key.

    At most MAX_INTERMEDIATE_SIGNATURES x MAX_ROOT_KEYS checks, twice when the roots rotated.
    """
    data = _lv(SENDER_ID, PROTOCOL_VERSION, callback.signed_key)

    def signed_by(keys: list[ec.EllipticCurvePublicKey]) -> bool:
        return any(_verify(root, sig, data) for root in keys for sig in callback.key_signatures)

    tried = root_keys.keys()
    if signed_by(tried):
        return
    # Google may have rotated its roots since we cached them: look once more, at new keys only.
    known = [key.public_numbers() for key in tried]
    fresh = [k for k in root_keys.keys(refresh=True) if k.public_numbers() not in known]
    if not signed_by(fresh):
        raise CallbackVerificationError("intermediate key is not signed by a Google root key")


def verify_callback(
    body: bytes | str | Mapping[str, Any],
    *,
    issuer_id: str,
    root_keys: RootKeyCache,
    now: datetime,
    clock_skew: timedelta = DEFAULT_CLOCK_SKEW,
) -> CallbackEvent:
    """Verify a save/delete callback body and return its event; raise if it is not proven.

    Only CallbackVerificationError (or its RootKeysUnavailableError) leaves this function for
    any body; the shape and sizes are checked before any signature, and at most
    MAX_SIGNATURE_CHECKS signatures are checked per call.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    now_ms = int(now.timestamp() * 1000)
    callback = _parse_callback(_parse_body(body), now_ms)
    message = callback.message
    event_type = message.get("eventType")
    if event_type not in ("save", "del"):
        raise CallbackVerificationError(f"unknown eventType {str(event_type)[:40]!r}")
    try:
        exp_ms = _expiry_ms(message.get("expTimeMillis"))
    except ValueError as exc:
        raise CallbackVerificationError("expTimeMillis is not a number") from exc
    if exp_ms is None:
        raise CallbackVerificationError("expTimeMillis is missing")
    if exp_ms + clock_skew.total_seconds() * 1000 <= now_ms:
        raise CallbackVerificationError("callback message has expired")
    class_id = _str_field(message, "classId", "signedMessage")
    object_id = _str_field(message, "objectId", "signedMessage")
    for name, value in (("classId", class_id), ("objectId", object_id)):
        if not value.startswith(f"{issuer_id}."):
            raise CallbackVerificationError(f"{name} does not belong to issuer {issuer_id}")
    nonce = _str_field(message, "nonce", "signedMessage", MAX_NONCE_CHARS)
    if not nonce.isascii() or not nonce.isprintable():
        raise CallbackVerificationError("signedMessage.nonce is not printable ASCII")

    _check_root_signature(callback, root_keys)
    signed = _lv(SENDER_ID, issuer_id, PROTOCOL_VERSION, callback.signed_message)
    if not _verify(callback.intermediate, callback.signature, signed):
        # Also what a callback meant for another issuer looks like: the recipient is signed in.
        raise CallbackVerificationError("message signature does not verify for this issuer")

    count = message.get("count")
    return CallbackEvent(
        event_type="save" if event_type == "save" else "del",
        class_id=class_id,
        object_id=object_id,
        nonce=nonce,
        expires_at=datetime.fromtimestamp(exp_ms / 1000, UTC),
        count=count if type(count) is int and abs(count) <= MAX_EPOCH_MS else None,
        signed_message=callback.signed_message,
    )
