"""Google Wallet save/delete callback verification with keys generated in the test."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.fakes.google_wallet import DEFAULT_ISSUER_ID, CallbackSigner, GoogleWalletFake
from walletd.push.google_callbacks import (
    CallbackVerificationError,
    RootKeyCache,
    RootKeysUnavailableError,
    parse_root_keys,
    verify_callback,
)

ISSUER = DEFAULT_ISSUER_ID
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
CLASS_ID = f"{ISSUER}.program-7"
OBJECT_ID = f"{ISSUER}.card-abc-123"


class Clock:
    def __init__(self, at: datetime) -> None:
        self.now = at.timestamp()

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def signer() -> CallbackSigner:
    return CallbackSigner(ISSUER)


@pytest.fixture
def fetches() -> list[str]:
    return []


@pytest.fixture
def root_keys(signer: CallbackSigner, fetches: list[str]) -> RootKeyCache:
    def fetch(url: str) -> bytes:
        fetches.append(url)
        return signer.root_keys_document(expires=NOW + timedelta(days=365))

    return RootKeyCache("https://keys.test/issuer/keys", fetcher=fetch, clock=Clock(NOW))


def sign(signer: CallbackSigner, **changes: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"object_id": OBJECT_ID, "class_id": CLASS_ID, "now": NOW}
    kwargs.update(changes)
    return signer.sign(**kwargs)


def verify(body: Any, root_keys: RootKeyCache, **changes: Any) -> Any:
    kwargs: dict[str, Any] = {"issuer_id": ISSUER, "root_keys": root_keys, "now": NOW}
    kwargs.update(changes)
    return verify_callback(body, **kwargs)


def test_valid_save_callback_is_accepted(signer: CallbackSigner, root_keys: RootKeyCache) -> None:
    body = sign(signer, event_type="save", nonce="9b1e4c2a-nonce")
    event = verify(json.dumps(body).encode(), root_keys)
    assert event.event_type == "save"
    assert event.class_id == CLASS_ID
    assert event.object_id == OBJECT_ID
    assert event.nonce == "9b1e4c2a-nonce"
    assert event.expires_at == NOW + timedelta(minutes=5)
    assert event.count == 1
    assert event.signed_message == body["signedMessage"]


def test_valid_delete_callback_is_accepted(signer: CallbackSigner, root_keys: RootKeyCache) -> None:
    event = verify(sign(signer, event_type="del"), root_keys)
    assert event.event_type == "del"


def test_root_keys_are_fetched_once_and_cached(
    signer: CallbackSigner, root_keys: RootKeyCache, fetches: list[str]
) -> None:
    for _ in range(3):
        verify(sign(signer), root_keys)
    assert fetches == ["https://keys.test/issuer/keys"]


def test_intermediate_key_signed_by_another_root_is_refused(
    signer: CallbackSigner, root_keys: RootKeyCache
) -> None:
    stranger = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(CallbackVerificationError, match="root"):
        verify(sign(signer, root_key=stranger), root_keys)


def test_expired_intermediate_key_is_refused(
    signer: CallbackSigner, root_keys: RootKeyCache
) -> None:
    with pytest.raises(CallbackVerificationError, match="expired"):
        verify(sign(signer, key_ttl=timedelta(seconds=-1)), root_keys)


def test_expired_message_is_refused(signer: CallbackSigner, root_keys: RootKeyCache) -> None:
    with pytest.raises(CallbackVerificationError, match="expired"):
        verify(sign(signer, message_ttl=timedelta(minutes=-2)), root_keys)


def test_message_just_expired_within_clock_skew_is_accepted(
    signer: CallbackSigner, root_keys: RootKeyCache
) -> None:
    event = verify(sign(signer, message_ttl=timedelta(seconds=-30)), root_keys)
    assert event.object_id == OBJECT_ID


def test_tampered_signed_message_is_refused(
    signer: CallbackSigner, root_keys: RootKeyCache
) -> None:
    body = sign(signer)
    body["signedMessage"] = body["signedMessage"].replace("card-abc-123", "card-abc-124")
    with pytest.raises(CallbackVerificationError, match="signature"):
        verify(body, root_keys)


def test_reserialised_signed_message_is_refused(
    signer: CallbackSigner, root_keys: RootKeyCache
) -> None:
    body = sign(signer)
    body["signedMessage"] = json.dumps(json.loads(body["signedMessage"]), separators=(",", ":"))
    with pytest.raises(CallbackVerificationError):
        verify(body, root_keys)


def test_tampered_intermediate_key_is_refused(
    signer: CallbackSigner, root_keys: RootKeyCache
) -> None:
    body = sign(signer)
    other = sign(CallbackSigner(ISSUER))
    # A well-formed signedKey for a key the attacker holds, next to the genuine root signature.
    body["intermediateSigningKey"]["signedKey"] = other["intermediateSigningKey"]["signedKey"]
    with pytest.raises(CallbackVerificationError, match="root"):
        verify(body, root_keys)


def test_callback_for_another_recipient_is_refused(
    signer: CallbackSigner, root_keys: RootKeyCache
) -> None:
    with pytest.raises(CallbackVerificationError, match="issuer"):
        verify(sign(signer, recipient_id="3388000000099999999"), root_keys)


def test_callback_naming_another_issuers_class_is_refused(
    signer: CallbackSigner, root_keys: RootKeyCache
) -> None:
    body = sign(signer, class_id="3388000000099999999.program-1")
    with pytest.raises(CallbackVerificationError, match="classId"):
        verify(body, root_keys)


@pytest.mark.parametrize("protocol", ["ECv2", "ECv1", "ECv2SigningOnly "])
def test_other_protocol_versions_are_refused(
    signer: CallbackSigner, root_keys: RootKeyCache, protocol: str
) -> None:
    with pytest.raises(CallbackVerificationError, match="protocolVersion"):
        verify(sign(signer, protocol_version=protocol), root_keys)


def test_protocol_version_swapped_after_signing_is_refused(
    signer: CallbackSigner, root_keys: RootKeyCache
) -> None:
    body = sign(signer, protocol_version="ECv2")
    body["protocolVersion"] = "ECv2SigningOnly"
    with pytest.raises(CallbackVerificationError):
        verify(body, root_keys)


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b"{}", {"protocolVersion": "ECv2SigningOnly", "signature": "***"}],
)
def test_garbage_is_refused(root_keys: RootKeyCache, body: Any) -> None:
    with pytest.raises(CallbackVerificationError):
        verify(body, root_keys)


def test_unknown_event_type_is_refused(signer: CallbackSigner, root_keys: RootKeyCache) -> None:
    with pytest.raises(CallbackVerificationError, match="eventType"):
        verify(sign(signer, event_type="update"), root_keys)


def test_rotated_root_is_picked_up_by_one_refetch(signer: CallbackSigner) -> None:
    new_root = CallbackSigner(ISSUER)
    served = [signer.root_keys_document()]
    clock = Clock(NOW)
    cache = RootKeyCache(fetcher=lambda url: served[-1], clock=clock)
    verify(sign(signer), cache)
    served.append(new_root.root_keys_document())
    clock.now += 120  # past the minimum refetch interval, well inside the TTL
    event = verify(sign(new_root), cache)
    assert event.object_id == OBJECT_ID
    assert cache.fetch_count == 2


def test_expired_and_foreign_protocol_root_keys_are_ignored(signer: CallbackSigner) -> None:
    other = CallbackSigner(ISSUER)
    document = json.loads(signer.root_keys_document(expires=NOW - timedelta(days=1)))
    document["keys"].append(
        {**json.loads(other.root_keys_document())["keys"][0], "protocolVersion": "ECv1"}
    )
    cache = RootKeyCache(fetcher=lambda url: json.dumps(document).encode(), clock=Clock(NOW))
    assert len(parse_root_keys(json.dumps(document))) == 1
    with pytest.raises(RootKeysUnavailableError):
        cache.keys()
    with pytest.raises(CallbackVerificationError):
        verify(sign(other), cache)


def test_unreachable_key_server_is_a_retryable_failure() -> None:
    def down(url: str) -> bytes:
        raise OSError("connection refused")

    cache = RootKeyCache(fetcher=down, clock=Clock(NOW))
    with pytest.raises(RootKeysUnavailableError) as info:
        cache.keys()
    assert info.value.retryable is True


def test_cached_keys_survive_a_failed_refresh(signer: CallbackSigner) -> None:
    answers: list[bytes | Exception] = [signer.root_keys_document(), OSError("down")]

    def flaky(url: str) -> bytes:
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    clock = Clock(NOW)
    cache = RootKeyCache(fetcher=flaky, ttl=timedelta(minutes=10), clock=clock)
    verify(sign(signer), cache)
    clock.now += 3600  # TTL over; the refetch fails; the keys have no expiry of their own
    assert verify(sign(signer), cache).object_id == OBJECT_ID


def test_default_fetcher_reads_keys_over_http(signer: CallbackSigner) -> None:
    with GoogleWalletFake() as fake:
        cache = RootKeyCache(fake.keys_url)
        event = verify(sign(fake.callbacks), cache)
        assert event.object_id == OBJECT_ID
        assert [r.path for r in fake.requests] == ["/gp/m/issuer/keys"]
