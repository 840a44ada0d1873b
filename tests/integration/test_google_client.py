"""GoogleWalletClient against the loopback Google Wallet fake (real OAuth, real HTTP)."""

from __future__ import annotations

import dataclasses
import json
import random
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fakes.google_wallet import GoogleWalletFake, RecordedRequest
from walletd.passes import google
from walletd.passes.view import CardView
from walletd.push.google_client import (
    GoogleAuthError,
    GoogleBadRequestError,
    GoogleConflictError,
    GoogleNotFoundError,
    GooglePermissionError,
    GoogleQuotaExceededError,
    GoogleRetryableError,
    GoogleWallet,
    GoogleWalletClient,
    NullGoogleWallet,
    RateLimiter,
)

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def make_view(**changes: Any) -> CardView:
    view = CardView(
        serial_number="c0ffee-42",
        authentication_token="t" * 32,
        barcode_message="WALLETD:c0ffee-42",
        barcode_alt_text="C0FFEE 42",
        organization_name="Bean There",
        program_name="Bean Club",
        member_name="Jane Doe",
        points=120,
        tier="Silver",
        background_color="#336699",
        foreground_color="#FFFFFF",
        label_color="#EEEEEE",
        template="default",
        updated_at=NOW,
        message=None,
        program_id=7,
    )
    return dataclasses.replace(view, **changes)


@pytest.fixture(scope="module")
def shared_fake() -> Iterator[GoogleWalletFake]:
    with GoogleWalletFake() as running:
        yield running


@pytest.fixture(scope="module")
def shared_sleeps() -> list[float]:
    return []


@pytest.fixture(scope="module")
def shared_client(
    shared_fake: GoogleWalletFake, shared_sleeps: list[float]
) -> Iterator[GoogleWalletClient]:
    # One client per module: loading (and validating) an RSA key costs ~0.1 s per client.
    # Rate limit off so every recorded sleep is a back-off sleep; the limiter has its own tests.
    with GoogleWalletClient(
        credentials_path=str(shared_fake.credentials_path),
        api_url=shared_fake.api_url,
        rate_per_second=0,
        sleep=shared_sleeps.append,
        rng=random.Random(7),
    ) as wallet:
        yield wallet


@pytest.fixture
def fake(shared_fake: GoogleWalletFake) -> Iterator[GoogleWalletFake]:
    shared_fake.reset()
    yield shared_fake
    assert shared_fake.crashes == []


@pytest.fixture
def sleeps(shared_sleeps: list[float]) -> list[float]:
    shared_sleeps.clear()
    return shared_sleeps


@pytest.fixture
def client(
    fake: GoogleWalletFake, sleeps: list[float], shared_client: GoogleWalletClient
) -> GoogleWalletClient:
    return shared_client


def loyalty_class(fake: GoogleWalletFake) -> dict[str, Any]:
    return google.build_loyalty_class(
        issuer_id=fake.issuer_id,
        program_id=7,
        program_name="Bean Club",
        issuer_name="Bean There",
        background_color="#336699",
        logo_uri="https://cards.example.com/logo.png",
        callback_url="https://cards.example.com/google/callbacks",
    )


def loyalty_object(fake: GoogleWalletFake, **changes: Any) -> dict[str, Any]:
    return google.build_loyalty_object(
        make_view(**changes),
        issuer_id=fake.issuer_id,
        class_id=google.class_id(fake.issuer_id, 7),
    )


def api_calls(fake: GoogleWalletFake) -> list[tuple[str, str, int]]:
    prefix = "/walletobjects/v1"
    return [(r.method, r.path.removeprefix(prefix), r.status) for r in fake.api_requests()]


@pytest.fixture
def card(fake: GoogleWalletFake, client: GoogleWalletClient) -> dict[str, Any]:
    client.insert_class(loyalty_class(fake))
    return client.insert_object(loyalty_object(fake))


def test_built_class_and_object_are_accepted_and_stored(
    fake: GoogleWalletFake, client: GoogleWalletClient
) -> None:
    cls = client.insert_class(loyalty_class(fake))
    assert cls["reviewStatus"] == "APPROVED"  # UNDER_REVIEW is approved at once
    obj = client.insert_object(loyalty_object(fake, message="Welcome!"))
    assert obj["loyaltyPoints"]["balance"] == {"int": 120}
    fetched = client.get_object(obj["id"])
    assert fetched["classReference"]["id"] == cls["id"]
    assert fetched["hasUsers"] is False
    assert client.get_class(cls["id"])["callbackOptions"]["url"].endswith("/google/callbacks")
    assert [c[2] for c in api_calls(fake)] == [200, 200, 200, 200]


def test_token_comes_from_the_fakes_token_endpoint_and_is_reused(fake: GoogleWalletFake) -> None:
    with GoogleWalletClient(
        credentials_path=str(fake.credentials_path), api_url=fake.api_url, rate_per_second=0
    ) as fresh:
        fresh.insert_class(loyalty_class(fake))
        for _ in range(5):
            fresh.get_class(google.class_id(fake.issuer_id, 7))
    assert fake.tokens_issued == 1
    token_requests = [r for r in fake.requests if r.path == "/token"]
    assert [r.status for r in token_requests] == [200]
    assert token_requests[0].body["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    bearers = {r.headers["authorization"] for r in fake.api_requests()}
    assert len(bearers) == 1 and bearers.pop().startswith("Bearer ya29.")


def test_one_token_for_many_threads(fake: GoogleWalletFake, client: GoogleWalletClient) -> None:
    client.insert_class(loyalty_class(fake))
    cid = google.class_id(fake.issuer_id, 7)
    fake.revoke_tokens()
    tokens_before = fake.tokens_issued
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda _: client.get_class(cid), range(16)))
    # Every thread saw the 401, but the lock let only the first one fetch a new token.
    assert fake.tokens_issued == tokens_before + 1


def test_revoked_token_is_refreshed_once_and_the_call_succeeds(
    fake: GoogleWalletFake, client: GoogleWalletClient, sleeps: list[float], card: dict[str, Any]
) -> None:
    tokens_before = fake.tokens_issued
    fake.revoke_tokens()
    assert client.get_object(card["id"])["id"] == card["id"]
    assert fake.tokens_issued == tokens_before + 1
    assert [c[2] for c in api_calls(fake)][-2:] == [401, 200]
    assert sleeps == []


def test_a_second_401_after_refresh_is_an_auth_error(
    fake: GoogleWalletFake, client: GoogleWalletClient, sleeps: list[float], card: dict[str, Any]
) -> None:
    tokens_before = fake.tokens_issued
    fake.fail_next(401, count=2)
    with pytest.raises(GoogleAuthError) as info:
        client.get_object(card["id"])
    assert info.value.status == 401
    assert info.value.retryable is False
    assert fake.tokens_issued == tokens_before + 1
    assert sleeps == []


def test_a_key_the_token_endpoint_rejects_is_an_auth_error(
    fake: GoogleWalletFake, tmp_path: Path, sleeps: list[float]
) -> None:
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    info = dict(fake.credentials_info)
    info["private_key"] = impostor.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    path = tmp_path / "impostor.json"
    path.write_text(json.dumps(info))
    with GoogleWalletClient(
        credentials_path=str(path), api_url=fake.api_url, rate_per_second=0, sleep=sleeps.append
    ) as impostor_client:
        with pytest.raises(GoogleAuthError, match="Signature"):
            impostor_client.get_class(google.class_id(fake.issuer_id, 7))
    assert fake.tokens_issued == 0
    assert fake.api_requests() == []
    assert sleeps == []


def test_upsert_object_patches_when_the_object_exists(
    fake: GoogleWalletFake, client: GoogleWalletClient, card: dict[str, Any]
) -> None:
    updated = loyalty_object(fake, points=999, tier="Gold")
    result = client.upsert_object(updated)
    assert result["loyaltyPoints"]["balance"] == {"int": 999}
    assert fake.objects[card["id"]]["secondaryLoyaltyPoints"]["balance"] == {"string": "Gold"}
    assert api_calls(fake)[-2:] == [
        ("POST", "/loyaltyObject", 409),
        ("PATCH", f"/loyaltyObject/{card['id']}", 200),
    ]


def test_upsert_object_inserts_when_new(fake: GoogleWalletFake, client: GoogleWalletClient) -> None:
    client.upsert_class(loyalty_class(fake))
    obj = client.upsert_object(loyalty_object(fake))
    assert obj["id"] in fake.objects
    assert [c[2] for c in api_calls(fake)] == [200, 200]


def test_upsert_class_patches_when_the_class_exists(
    fake: GoogleWalletFake, client: GoogleWalletClient
) -> None:
    client.upsert_class(loyalty_class(fake))
    renamed = {**loyalty_class(fake), "programName": "Bean Club+"}
    assert client.upsert_class(renamed)["programName"] == "Bean Club+"
    assert [c[:2] for c in api_calls(fake)][-2:] == [
        ("POST", "/loyaltyClass"),
        ("PATCH", f"/loyaltyClass/{renamed['id']}"),
    ]


def test_insert_twice_raises_conflict(
    fake: GoogleWalletFake, client: GoogleWalletClient, card: dict[str, Any]
) -> None:
    with pytest.raises(GoogleConflictError) as info:
        client.insert_object(loyalty_object(fake))
    assert info.value.status == 409


def test_missing_object_raises_not_found(
    fake: GoogleWalletFake, client: GoogleWalletClient, sleeps: list[float]
) -> None:
    with pytest.raises(GoogleNotFoundError):
        client.get_object(google.object_id(fake.issuer_id, "nobody"))
    with pytest.raises(GoogleNotFoundError):
        client.patch_object(google.object_id(fake.issuer_id, "nobody"), {"state": "EXPIRED"})
    assert sleeps == []


def test_another_issuers_object_is_permission_denied(
    fake: GoogleWalletFake, client: GoogleWalletClient
) -> None:
    with pytest.raises(GooglePermissionError) as info:
        client.get_object("3388000000099999999.card-x")
    assert (info.value.status, info.value.reason) == (403, "permissionDenied")


def test_503s_are_retried_with_growing_jittered_backoff(
    fake: GoogleWalletFake, client: GoogleWalletClient, sleeps: list[float], card: dict[str, Any]
) -> None:
    fake.fail_next(503, count=3)
    assert client.get_object(card["id"])["id"] == card["id"]
    assert len(sleeps) == 3
    for attempt, slept in enumerate(sleeps, start=1):
        ceiling = 2.0 ** (attempt - 1)
        assert ceiling / 2 <= slept <= ceiling
    assert [c[2] for c in api_calls(fake)][-4:] == [503, 503, 503, 200]


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (429, "rateLimitExceeded"),
        (403, "rateLimitExceeded"),
        (403, "userRateLimitExceeded"),
        (500, "backendError"),
        (502, "backendError"),
        (504, "backendError"),
    ],
)
def test_throttling_and_server_errors_are_retried(
    fake: GoogleWalletFake,
    client: GoogleWalletClient,
    sleeps: list[float],
    card: dict[str, Any],
    status: int,
    reason: str,
) -> None:
    fake.fail_next(status, reason=reason)
    assert client.get_object(card["id"])["id"] == card["id"]
    assert len(sleeps) == 1


def test_retry_after_is_honoured(
    fake: GoogleWalletFake, client: GoogleWalletClient, sleeps: list[float], card: dict[str, Any]
) -> None:
    fake.fail_next(429, reason="rateLimitExceeded", retry_after=7)
    client.get_object(card["id"])
    assert sleeps == [7.0]


def test_a_retry_after_too_long_to_wait_is_handed_back(
    fake: GoogleWalletFake, client: GoogleWalletClient, sleeps: list[float], card: dict[str, Any]
) -> None:
    fake.fail_next(503, retry_after=3600)
    with pytest.raises(GoogleRetryableError) as info:
        client.get_object(card["id"])
    assert info.value.retry_after == 3600
    assert sleeps == []


def test_retries_stop_after_max_attempts(
    fake: GoogleWalletFake, sleeps: list[float], card: dict[str, Any]
) -> None:
    fake.fail_next(503, count=10)
    with GoogleWalletClient(
        credentials_path=str(fake.credentials_path),
        api_url=fake.api_url,
        rate_per_second=0,
        max_attempts=6,
        backoff_base=1.0,
        backoff_cap=4.0,
        sleep=sleeps.append,
    ) as wallet:
        with pytest.raises(GoogleRetryableError) as info:
            wallet.get_object(card["id"])
    assert info.value.retryable is True
    assert (info.value.status, info.value.attempts) == (503, 6)
    assert len(sleeps) == 5
    assert max(sleeps) <= 4.0  # capped
    assert sum(1 for c in api_calls(fake) if c[2] == 503) == 6


def test_bad_request_is_not_retried(
    fake: GoogleWalletFake, client: GoogleWalletClient, sleeps: list[float], card: dict[str, Any]
) -> None:
    with pytest.raises(GoogleBadRequestError) as info:
        client.patch_object(card["id"], {"state": "BOGUS"})
    assert info.value.status == 400
    assert info.value.retryable is False
    assert sleeps == []
    assert api_calls(fake)[-1] == ("PATCH", f"/loyaltyObject/{card['id']}", 400)


def test_injected_400_is_not_retried(
    fake: GoogleWalletFake, client: GoogleWalletClient, sleeps: list[float], card: dict[str, Any]
) -> None:
    fake.fail_next(400, reason="invalidResource")
    with pytest.raises(GoogleBadRequestError):
        client.get_object(card["id"])
    assert sleeps == []


def test_unknown_field_is_refused_with_googles_error_shape(
    fake: GoogleWalletFake, client: GoogleWalletClient, card: dict[str, Any]
) -> None:
    with pytest.raises(GoogleBadRequestError, match="Unknown name"):
        client.patch_object(card["id"], {"hexBackgroundColor": "#ffffff"})
    answer: RecordedRequest = fake.api_requests()[-1]
    assert answer.status == 400


def test_quota_exceeded_is_not_retried_and_text_still_works(
    fake: GoogleWalletFake, client: GoogleWalletClient, sleeps: list[float], card: dict[str, Any]
) -> None:
    for n in range(3):
        client.add_object_message(card["id"], google.add_message_body(f"m{n}", "Hi", "Yo", True))
    with pytest.raises(GoogleQuotaExceededError) as info:
        client.add_object_message(card["id"], google.add_message_body("m3", "Hi", "Yo", True))
    assert (info.value.status, info.value.reason, info.value.retryable) == (
        403,
        "quotaExceeded",
        False,
    )
    assert sleeps == []
    assert api_calls(fake)[-1][2] == 403
    # The documented fallback: the same message as plain TEXT goes through.
    obj = client.add_object_message(card["id"], google.add_message_body("m3", "Hi", "Yo", False))
    assert [m["id"] for m in obj["messages"]] == ["m0", "m1", "m2", "m3"]
    assert len(fake.notifications_for(card["id"])) == 3
    # A rolling 24 h window: a day later the budget is back.
    fake.advance_time(24 * 3600 + 1)
    client.add_object_message(card["id"], google.add_message_body("m4", "Hi", "Yo", True))


def test_injected_quota_exceeded_is_not_retried(
    fake: GoogleWalletFake, client: GoogleWalletClient, sleeps: list[float], card: dict[str, Any]
) -> None:
    fake.fail_next(403, reason="quotaExceeded")
    with pytest.raises(GoogleQuotaExceededError):
        client.get_object(card["id"])
    assert sleeps == []


def test_add_message_returns_the_object_and_dedupes_by_id(
    fake: GoogleWalletFake, client: GoogleWalletClient, card: dict[str, Any]
) -> None:
    client.add_object_message(card["id"], google.add_message_body("promo", "A", "first", False))
    obj = client.add_object_message(
        card["id"], google.add_message_body("promo", "A", "second", False)
    )
    assert obj["id"] == card["id"]
    assert [m["body"] for m in obj["messages"]] == ["second"]


def test_eleventh_message_is_refused(
    fake: GoogleWalletFake, client: GoogleWalletClient, card: dict[str, Any]
) -> None:
    for n in range(10):
        client.add_object_message(card["id"], google.add_message_body(f"m{n}", "A", "b", False))
    with pytest.raises(GoogleBadRequestError, match="maximum of 10"):
        client.add_object_message(card["id"], google.add_message_body("m10", "A", "b", False))


def test_class_message_reaches_the_class(
    fake: GoogleWalletFake, client: GoogleWalletClient, card: dict[str, Any]
) -> None:
    cid = card["classId"]
    cls = client.add_class_message(cid, google.add_message_body("all", "News", "Open late", True))
    assert cls["id"] == cid
    assert cls["messages"][0]["messageType"] == "TEXT_AND_NOTIFY"
    assert len(fake.notifications_for(cid)) == 1


def test_points_patch_updates_balance_and_counts_a_notification_only_when_asked(
    fake: GoogleWalletFake, client: GoogleWalletClient, card: dict[str, Any]
) -> None:
    client.patch_object(card["id"], google.points_patch(make_view(points=130), notify=False))
    assert fake.notifications_for(card["id"]) == []
    obj = client.patch_object(card["id"], google.points_patch(make_view(points=140), notify=True))
    assert obj["loyaltyPoints"]["balance"] == {"int": 140}
    assert "notifyPreference" not in fake.objects[card["id"]]  # ephemeral
    assert [n.trigger for n in fake.notifications_for(card["id"])] == ["update"]


def test_points_patch_without_tier_removes_the_tier(
    fake: GoogleWalletFake, client: GoogleWalletClient, card: dict[str, Any]
) -> None:
    obj = client.patch_object(card["id"], google.points_patch(make_view(tier=None), notify=False))
    assert "secondaryLoyaltyPoints" not in obj
    assert obj["barcode"]["value"] == "WALLETD:c0ffee-42"  # PATCH left the rest alone


def test_switching_a_balance_subtype_in_a_patch_is_caught(
    fake: GoogleWalletFake, client: GoogleWalletClient, card: dict[str, Any]
) -> None:
    with pytest.raises(GoogleBadRequestError, match="exactly one"):
        client.patch_object(card["id"], {"loyaltyPoints": {"balance": {"string": "120"}}})


def test_class_patch_without_under_review_is_refused(
    fake: GoogleWalletFake, client: GoogleWalletClient, card: dict[str, Any]
) -> None:
    cid = card["classId"]
    with pytest.raises(GoogleBadRequestError, match="UNDER_REVIEW"):
        client.patch_class(cid, {"programName": "Renamed"})
    patched = client.patch_class(cid, {"programName": "Renamed", "reviewStatus": "UNDER_REVIEW"})
    assert patched["programName"] == "Renamed"


def test_network_failure_is_retried_then_retryable(
    fake: GoogleWalletFake, sleeps: list[float]
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    with GoogleWalletClient(
        credentials_path=str(fake.credentials_path),
        api_url=f"http://127.0.0.1:{dead_port}/walletobjects/v1",
        rate_per_second=0,
        max_attempts=3,
        sleep=sleeps.append,
        timeout=2.0,
    ) as wallet:
        with pytest.raises(GoogleRetryableError) as info:
            wallet.get_class(google.class_id(fake.issuer_id, 7))
    assert (info.value.status, info.value.reason, info.value.attempts) == (0, "connectionError", 3)
    assert len(sleeps) == 2


def test_client_rate_limit_keeps_under_the_fakes_limit() -> None:
    calls = 45
    with GoogleWalletFake(rate_limit_per_second=50) as limited:
        with GoogleWalletClient(
            credentials_path=str(limited.credentials_path),
            api_url=limited.api_url,
            rate_per_second=40,
            max_attempts=1,
        ) as wallet:
            wallet.insert_class(loyalty_class(limited))
            started = time.monotonic()
            with ThreadPoolExecutor(max_workers=6) as pool:
                list(
                    pool.map(
                        lambda _: wallet.get_class(google.class_id(limited.issuer_id, 7)),
                        range(calls),
                    )
                )
            elapsed = time.monotonic() - started
        assert limited.throttled == 0
        assert elapsed >= (calls - 1) / 40 * 0.95


def test_without_the_client_limit_the_fake_throttles() -> None:
    with GoogleWalletFake(rate_limit_per_second=20) as limited:
        with GoogleWalletClient(
            credentials_path=str(limited.credentials_path),
            api_url=limited.api_url,
            rate_per_second=0,
            max_attempts=1,
        ) as wallet:
            wallet.insert_class(loyalty_class(limited))
            cid = google.class_id(limited.issuer_id, 7)
            failures: list[GoogleRetryableError] = []

            def call(_: int) -> None:
                try:
                    wallet.get_class(cid)
                except GoogleRetryableError as exc:
                    failures.append(exc)

            with ThreadPoolExecutor(max_workers=6) as pool:
                list(pool.map(call, range(40)))
        assert limited.throttled > 0
        assert failures and failures[0].reason == "rateLimitExceeded"


def test_rate_limiter_spaces_calls_across_threads() -> None:
    now = [100.0]
    waits: list[float] = []
    limiter = RateLimiter(20.0, clock=lambda: now[0], sleep=waits.append)
    assert [limiter.acquire() for _ in range(4)] == pytest.approx([0.0, 0.05, 0.1, 0.15])
    now[0] += 10
    assert limiter.acquire() == 0.0  # idle time is not banked as a burst


def test_null_wallet_accepts_everything_and_stores_nothing() -> None:
    wallet: GoogleWallet = NullGoogleWallet()
    body = {"id": "1.a", "classId": "1.c", "state": "ACTIVE"}
    assert wallet.upsert_object(body) == body
    assert wallet.patch_object("1.a", {"state": "EXPIRED"}) == {"id": "1.a", "state": "EXPIRED"}
    assert wallet.add_object_message("1.a", {"message": {"id": "m"}})["messages"] == [{"id": "m"}]
    with pytest.raises(GoogleNotFoundError):
        wallet.get_object("1.a")
    wallet.close()


def test_client_satisfies_the_protocol(fake: GoogleWalletFake, client: GoogleWalletClient) -> None:
    wallet: GoogleWallet = client
    assert wallet is client
    assert client.service_account_email == fake.service_account_email


def test_fake_stops_without_leaving_threads() -> None:
    before = set(threading.enumerate())
    with GoogleWalletFake() as fake:
        with GoogleWalletClient(
            credentials_path=str(fake.credentials_path), api_url=fake.api_url
        ) as wallet:
            wallet.insert_class(loyalty_class(fake))
        credentials = fake.credentials_path
    assert set(threading.enumerate()) - before == set()
    assert not credentials.exists()
