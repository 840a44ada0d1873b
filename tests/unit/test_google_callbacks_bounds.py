"""Google callbacks under abuse: any body is refused cheaply, with few signature checks."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st

from tests.fakes.google_wallet import DEFAULT_ISSUER_ID, CallbackSigner
from walletd.push import google_callbacks
from walletd.push.google_callbacks import (
    MAX_INTERMEDIATE_SIGNATURES,
    MAX_ROOT_KEYS,
    MAX_SIGNATURE_CHECKS,
    CallbackVerificationError,
    RootKeyCache,
    verify_callback,
)

ISSUER = DEFAULT_ISSUER_ID
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
GENERATED = examples(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Real signatures to pad bodies with: valid DER that simply does not verify for this data.
_OTHER_KEY = ec.generate_private_key(ec.SECP256R1())
SIGNATURES = [
    base64.b64encode(_OTHER_KEY.sign(bytes([n]), ec.ECDSA(hashes.SHA256()))).decode()
    for n in range(8)
]

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(st.characters(exclude_categories=()), max_size=30),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=25), children, max_size=5)
    ),
    max_leaves=25,
)


def _spki(key: ec.EllipticCurvePrivateKey) -> str:
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def _lv(*parts: str) -> bytes:
    out = b""
    for part in parts:
        data = part.encode()
        out += len(data).to_bytes(4, "little") + data
    return out


class Keys:
    """Root keys served by a fake key server; `rotate` serves a whole new set on refresh."""

    def __init__(self, count: int, *, rotate: bool = False, expired: int = 0) -> None:
        self.count, self.rotate, self.expired = count, rotate, expired
        self.served = self._make()

    def _make(self) -> list[ec.EllipticCurvePrivateKey]:
        return [ec.generate_private_key(ec.SECP256R1()) for _ in range(self.count)]

    def fetch(self, url: str) -> bytes:
        if self.rotate:
            self.served = self._make()
        entries = [
            {
                "keyValue": _spki(key),
                "protocolVersion": "ECv2SigningOnly",
                # Some expired, the others expiring at different times, one never.
                "keyExpiration": str(
                    int((NOW + timedelta(days=n - self.expired)).timestamp() * 1000)
                ),
            }
            for n, key in enumerate(self.served)
        ]
        entries[-1].pop("keyExpiration")
        return json.dumps({"keys": entries}).encode()


class Clock:
    def __call__(self) -> float:
        return NOW.timestamp() + 3600  # past the minimum refetch interval at every call


def _cache(keys: Keys) -> RootKeyCache:
    return RootKeyCache(
        "https://keys.test/", fetcher=keys.fetch, clock=Clock(), min_refetch_interval=timedelta()
    )


@contextmanager
def counted_verifications() -> Iterator[list[int]]:
    """Count the ECDSA verifications verify_callback makes (the real ones still run)."""
    calls = [0]
    real: Callable[[ec.EllipticCurvePublicKey, bytes, bytes], bool] = google_callbacks._verify

    def counting(key: ec.EllipticCurvePublicKey, signature: bytes, data: bytes) -> bool:
        calls[0] += 1
        return real(key, signature, data)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(google_callbacks, "_verify", counting)
        yield calls


def _signed_body(
    signer: CallbackSigner,
    *,
    signed_message: str,
    signed_key: str | None = None,
    signatures: list[str] | None = None,
) -> dict[str, Any]:
    """A body with any signedMessage text, signed properly by `signer`'s keys."""
    key = signed_key or json.dumps(
        {
            "keyValue": _spki(signer.intermediate_key),
            "keyExpiration": str(int((NOW + timedelta(days=7)).timestamp() * 1000)),
        }
    )
    root_signature = signer.root_key.sign(
        _lv("GooglePayPasses", "ECv2SigningOnly", key), ec.ECDSA(hashes.SHA256())
    )
    message_signature = signer.intermediate_key.sign(
        _lv("GooglePayPasses", ISSUER, "ECv2SigningOnly", signed_message),
        ec.ECDSA(hashes.SHA256()),
    )
    return {
        "signature": base64.b64encode(message_signature).decode(),
        "intermediateSigningKey": {
            "signedKey": key,
            "signatures": signatures or [base64.b64encode(root_signature).decode()],
        },
        "protocolVersion": "ECv2SigningOnly",
        "signedMessage": signed_message,
    }


@pytest.fixture(scope="module")
def signer() -> CallbackSigner:
    return CallbackSigner(ISSUER)


@pytest.fixture(scope="module")
def signer_cache(signer: CallbackSigner) -> RootKeyCache:
    document = signer.root_keys_document(expires=NOW + timedelta(days=365))
    return RootKeyCache(fetcher=lambda url: document, clock=lambda: NOW.timestamp())


def _verify_refuses_or_accepts(body: Any, cache: RootKeyCache) -> int:
    """Verify a body; only the module's refusal may escape. Returns the checks made."""
    with counted_verifications() as calls:
        try:
            verify_callback(body, issuer_id=ISSUER, root_keys=cache, now=NOW)
        except CallbackVerificationError:
            pass
    return calls[0]


# --- any body: only a refusal, never another exception ----------------------------------------


@GENERATED
@given(body=JSON_VALUES)
def test_any_json_body_is_refused_with_the_modules_error_only(
    body: Any, signer_cache: RootKeyCache
) -> None:
    for form in (body, json.dumps(body), json.dumps(body).encode()):
        assert _verify_refuses_or_accepts(form, signer_cache) <= MAX_SIGNATURE_CHECKS


@GENERATED
@given(raw=st.binary(max_size=200) | st.text(st.characters(exclude_categories=()), max_size=200))
def test_any_bytes_or_text_body_is_refused_with_the_modules_error_only(
    raw: bytes | str, signer_cache: RootKeyCache
) -> None:
    assert _verify_refuses_or_accepts(raw, signer_cache) == 0


FIELDS = st.sampled_from(
    [
        ("signature",),
        ("signedMessage",),
        ("protocolVersion",),
        ("intermediateSigningKey",),
        ("intermediateSigningKey", "signedKey"),
        ("intermediateSigningKey", "signatures"),
    ]
)


@GENERATED
@given(path=FIELDS, value=JSON_VALUES)
def test_a_genuine_callback_with_any_field_replaced_is_refused_with_the_modules_error_only(
    signer: CallbackSigner, signer_cache: RootKeyCache, path: tuple[str, ...], value: Any
) -> None:
    body = signer.sign(object_id=f"{ISSUER}.o", class_id=f"{ISSUER}.c", now=NOW)
    target = body
    for name in path[:-1]:
        target = target[name]
    target[path[-1]] = value
    assert _verify_refuses_or_accepts(body, signer_cache) <= MAX_SIGNATURE_CHECKS


# Every character str.isdigit() accepts ("²", "١", "①", ...), alone or among ASCII digits.
ISDIGIT_CHARACTERS = [chr(c) for c in range(0x110000) if chr(c).isdigit()]
MESSAGE_VALUES = (
    JSON_VALUES
    | st.text(st.sampled_from(ISDIGIT_CHARACTERS) | st.sampled_from("0123456789"), min_size=1)
    | st.integers(-(2**70), 2**70)
    | st.integers(-(2**70), 2**70).map(str)
)


@GENERATED
@given(
    field=st.sampled_from(["expTimeMillis", "eventType", "classId", "objectId", "nonce", "count"]),
    value=MESSAGE_VALUES,
)
def test_a_google_signed_message_with_any_field_value_is_an_event_or_a_refusal(
    signer: CallbackSigner, signer_cache: RootKeyCache, field: str, value: Any
) -> None:
    message: dict[str, Any] = {
        "classId": f"{ISSUER}.c",
        "objectId": f"{ISSUER}.o",
        "eventType": "save",
        "expTimeMillis": int((NOW + timedelta(minutes=5)).timestamp() * 1000),
        "count": 1,
        "nonce": "n-1",
    }
    message[field] = value
    body = _signed_body(signer, signed_message=json.dumps(message))
    assert _verify_refuses_or_accepts(body, signer_cache) <= MAX_SIGNATURE_CHECKS


@GENERATED
@given(expiration=MESSAGE_VALUES)
def test_a_google_signed_key_with_any_expiration_is_a_key_or_a_refusal(
    signer: CallbackSigner, signer_cache: RootKeyCache, expiration: Any
) -> None:
    signed_key = json.dumps(
        {"keyValue": _spki(signer.intermediate_key), "keyExpiration": expiration}
    )
    message = json.dumps(
        {"classId": f"{ISSUER}.c", "objectId": f"{ISSUER}.o", "eventType": "del",
         "expTimeMillis": int((NOW + timedelta(minutes=5)).timestamp() * 1000), "nonce": "n"}
    )  # fmt: skip
    body = _signed_body(signer, signed_message=message, signed_key=signed_key)
    assert _verify_refuses_or_accepts(body, signer_cache) <= MAX_SIGNATURE_CHECKS


def test_unicode_digits_in_a_signed_expiry_are_refused_not_crashed(
    signer: CallbackSigner, signer_cache: RootKeyCache
) -> None:
    message = json.dumps(
        {"classId": f"{ISSUER}.c", "objectId": f"{ISSUER}.o", "eventType": "save",
         "expTimeMillis": "²", "nonce": "n"}
    )  # fmt: skip
    with pytest.raises(CallbackVerificationError, match="expTimeMillis"):
        verify_callback(
            _signed_body(signer, signed_message=message),
            issuer_id=ISSUER,
            root_keys=signer_cache,
            now=NOW,
        )


# --- the work one call can cause is bounded ----------------------------------------------------


@GENERATED
@given(
    signatures=st.lists(st.sampled_from(SIGNATURES), min_size=1, max_size=40),
    root_count=st.integers(1, 12),
    rotate=st.booleans(),
)
def test_signature_checks_per_call_stay_within_the_bound_however_many_signatures_and_roots(
    signer: CallbackSigner, signatures: list[str], root_count: int, rotate: bool
) -> None:
    cache = _cache(Keys(root_count, rotate=rotate))
    message = json.dumps(
        {"classId": f"{ISSUER}.c", "objectId": f"{ISSUER}.o", "eventType": "save",
         "expTimeMillis": int((NOW + timedelta(minutes=5)).timestamp() * 1000), "nonce": "n"}
    )  # fmt: skip
    body = _signed_body(signer, signed_message=message, signatures=signatures)
    checks = _verify_refuses_or_accepts(body, cache)
    if len(signatures) > MAX_INTERMEDIATE_SIGNATURES:
        assert checks == 0  # refused on its shape, before any crypto
    else:
        roots = min(root_count, MAX_ROOT_KEYS)
        assert checks <= len(signatures) * roots * (2 if rotate else 1)
    assert checks <= MAX_SIGNATURE_CHECKS


@GENERATED
@given(count=st.integers(1, 12), expired=st.integers(0, 12))
def test_only_a_few_unexpired_root_keys_are_ever_considered(count: int, expired: int) -> None:
    keys = Keys(count, expired=expired)
    cache = RootKeyCache(fetcher=keys.fetch, clock=lambda: NOW.timestamp())
    try:
        live = cache.keys()
    except google_callbacks.RootKeysUnavailableError:
        return
    assert 1 <= len(live) <= MAX_ROOT_KEYS
    # The key without an expiry is always live, and the newest keys are the ones kept.
    published = [_spki(k) for k in keys.served]
    kept = [
        base64.b64encode(
            k.public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        ).decode()
        for k in live
    ]
    assert kept == published[::-1][: len(kept)]


@pytest.mark.parametrize(
    ("path", "size"),
    [
        (("signedMessage",), google_callbacks.MAX_SIGNED_MESSAGE_CHARS + 1),
        (("intermediateSigningKey", "signedKey"), google_callbacks.MAX_SIGNED_KEY_CHARS + 1),
        (("signature",), google_callbacks.MAX_SIGNATURE_CHARS + 1),
    ],
)
def test_oversized_fields_are_refused_before_any_signature_check(
    signer: CallbackSigner, signer_cache: RootKeyCache, path: tuple[str, ...], size: int
) -> None:
    body = signer.sign(object_id=f"{ISSUER}.o", class_id=f"{ISSUER}.c", now=NOW)
    target = body
    for name in path[:-1]:
        target = target[name]
    target[path[-1]] = "A" * size
    with counted_verifications() as calls, pytest.raises(CallbackVerificationError, match="long"):
        verify_callback(body, issuer_id=ISSUER, root_keys=signer_cache, now=NOW)
    assert calls == [0]


def test_an_oversized_body_is_refused_before_parsing(signer_cache: RootKeyCache) -> None:
    body = json.dumps({"pad": "x" * google_callbacks.MAX_CALLBACK_BYTES})
    with pytest.raises(CallbackVerificationError, match="larger"):
        verify_callback(body, issuer_id=ISSUER, root_keys=signer_cache, now=NOW)


def test_a_genuine_callback_needs_two_checks(
    signer: CallbackSigner, signer_cache: RootKeyCache
) -> None:
    body = signer.sign(object_id=f"{ISSUER}.o", class_id=f"{ISSUER}.c", now=NOW)
    with counted_verifications() as calls:
        event = verify_callback(body, issuer_id=ISSUER, root_keys=signer_cache, now=NOW)
    assert event.object_id == f"{ISSUER}.o"
    assert calls == [2]
