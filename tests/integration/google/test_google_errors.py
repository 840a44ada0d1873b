"""What the Google channel does when Google refuses, throttles or fails."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.factories import BrandKeys, FrozenClock, enroll, scan
from tests.fakes.google_wallet import GoogleWalletFake
from tests.integration.google.conftest import calls, object_id_of, outbox_rows
from walletd.push.dispatcher import Dispatcher
from walletd.push.google_channel import ACCOUNT_PAUSE_SECONDS, QUOTA_PAUSE_SECONDS


def _google_index(dispatcher: Dispatcher) -> int:
    return next(i for i, c in enumerate(dispatcher.channels) if "google_object" in c.kinds)


@pytest.mark.parametrize(
    ("reason", "pause"),
    [("quotaExceeded", QUOTA_PAUSE_SECONDS), ("permissionDenied", ACCOUNT_PAUSE_SECONDS)],
)
def test_quota_or_permission_refusal_pauses_the_channel_and_keeps_the_rows(
    app: Flask,
    client: FlaskClient,
    brand: BrandKeys,
    fake: GoogleWalletFake,
    dispatcher: Dispatcher,
    clock: FrozenClock,
    reason: str,
    pause: float,
    caplog: pytest.LogCaptureFixture,
) -> None:
    member = enroll(client, brand)
    fake.fail_next(403, reason=reason)
    dispatcher.drain()
    assert len(fake.api_requests()) == 1  # stopped at the first refusal
    assert "delivery paused" in caplog.text
    [row] = outbox_rows(app)
    assert (row.status, row.attempts) == ("pending", 0)
    assert reason in (row.last_error or "")
    assert dispatcher.paused_until[_google_index(dispatcher)] == clock.now + timedelta(
        seconds=pause
    )

    clock.advance(seconds=pause - 1)
    dispatcher.drain()
    assert len(fake.api_requests()) == 1  # still paused
    clock.advance(seconds=2)
    dispatcher.drain()
    assert object_id_of(fake, member["card"]["serial_number"]) in fake.objects
    assert [r.status for r in outbox_rows(app)] == ["sent"]


def test_a_refusal_after_part_of_a_batch_keeps_what_was_delivered(
    app: Flask,
    client: FlaskClient,
    brand: BrandKeys,
    fake: GoogleWalletFake,
    dispatcher: Dispatcher,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    members = [enroll(client, brand, name=f"Member {i}") for i in range(4)]
    dispatcher.drain()
    clock.advance(minutes=1)
    for i, member in enumerate(members[:3]):
        scan(client, brand, member["card"]["barcode"], "4", f"k{i}")
    before = len(fake.api_requests())
    handle = fake.handle

    def refuse_after_first_call(method: str, target: str, headers: Any, raw: bytes) -> Any:
        reply = handle(method, target, headers, raw)
        if len(fake.api_requests()) == before + 1 and reply.status == 200:
            fake.fail_next(403, reason="permissionDenied")
        return reply

    monkeypatch.setattr(fake, "handle", refuse_after_first_call)
    dispatcher.run_once()
    assert [r.status for r in fake.api_requests()[before:]] == [200, 403]
    rows = outbox_rows(app)[-3:]
    assert [(r.status, r.attempts) for r in rows] == [("sent", 1), ("pending", 1), ("pending", 1)]
    wait = clock.now + timedelta(seconds=ACCOUNT_PAUSE_SECONDS)
    assert all(r.next_attempt_at >= wait for r in rows[1:])

    # New work while paused is not sent either.
    scan(client, brand, members[3]["card"]["barcode"], "4", "k3")
    dispatcher.run_once()
    assert len(fake.api_requests()) == before + 2
    assert outbox_rows(app)[-1].status == "pending"
    clock.advance(seconds=ACCOUNT_PAUSE_SECONDS + 600)
    dispatcher.drain()
    assert {r.status for r in outbox_rows(app)} == {"sent"}


def test_throttling_backs_off_the_whole_channel(
    app: Flask,
    client: FlaskClient,
    brand: BrandKeys,
    fake: GoogleWalletFake,
    dispatcher: Dispatcher,
    clock: FrozenClock,
) -> None:
    enroll(client, brand)
    enroll(client, brand, name="Grace Hopper")
    fake.fail_next(429, retry_after=120)
    dispatcher.drain()
    assert [r.status for r in fake.api_requests()] == [429]  # no hammering
    rows = outbox_rows(app)
    assert {(r.status, r.attempts) for r in rows} == {("pending", 0)}
    assert all(r.next_attempt_at >= clock.now + timedelta(seconds=120) for r in rows)

    # A short 429 without Retry-After is absorbed by the client's own back-off.
    clock.advance(seconds=121)
    fake.fail_next(429)
    dispatcher.drain()
    assert [r.status for r in fake.api_requests()][:3] == [429, 429, 200]
    assert {r.status for r in outbox_rows(app)} == {"sent"}
    assert len(fake.objects) == 2


def test_server_errors_retry_the_row_later(
    app: Flask,
    client: FlaskClient,
    brand: BrandKeys,
    fake: GoogleWalletFake,
    dispatcher: Dispatcher,
    clock: FrozenClock,
) -> None:
    member = enroll(client, brand)
    dispatcher.drain()
    clock.advance(minutes=1)
    scan(client, brand, member["card"]["barcode"], "10", "k")
    fake.fail_next(503, count=2)  # both of the client's attempts
    dispatcher.drain()
    [_, row] = outbox_rows(app)
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.next_attempt_at > clock.now
    clock.advance(minutes=5)
    dispatcher.drain()
    assert outbox_rows(app)[1].status == "sent"
    oid = object_id_of(fake, member["card"]["serial_number"])
    assert [r.status for r in calls(fake, "PATCH", oid)] == [503, 503, 200]


def test_failing_calls_in_a_row_hold_the_rest_of_the_batch(
    app: Flask,
    client: FlaskClient,
    brand: BrandKeys,
    fake: GoogleWalletFake,
    dispatcher: Dispatcher,
    clock: FrozenClock,
) -> None:
    members = [enroll(client, brand, name=f"Member {i}") for i in range(4)]
    dispatcher.drain()
    clock.advance(minutes=1)
    for i, member in enumerate(members):
        scan(client, brand, member["card"]["barcode"], "4", f"k{i}")
    before = len(fake.api_requests())
    fake.fail_next(503, count=6)  # three rows, two attempts each
    dispatcher.run_once()
    assert len(fake.api_requests()) - before == 6  # the fourth row was not tried
    pending = [r for r in outbox_rows(app) if r.status == "pending"]
    assert len(pending) == 4
    clock.advance(minutes=5)
    dispatcher.drain()
    assert {r.status for r in outbox_rows(app)} == {"sent"}


def test_a_bad_request_fails_the_row_with_googles_message(
    app: Flask,
    client: FlaskClient,
    brand: BrandKeys,
    fake: GoogleWalletFake,
    dispatcher: Dispatcher,
    clock: FrozenClock,
) -> None:
    member = enroll(client, brand)
    dispatcher.drain()
    clock.advance(minutes=1)
    scan(client, brand, member["card"]["barcode"], "10", "k")
    fake.fail_next(400, reason="invalid", message="Invalid loyaltyPoints")
    dispatcher.drain()
    row = outbox_rows(app)[-1]
    assert row.status == "failed"
    assert "Invalid loyaltyPoints" in (row.last_error or "")
