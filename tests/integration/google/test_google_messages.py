"""Brand messages on Google cards and classes: notification budget, retries, the ten-message cap."""

from __future__ import annotations

import time
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

from tests.factories import BrandKeys, FrozenClock, enroll, scan, services_of
from tests.fakes.google_wallet import GoogleWalletFake, Notification
from tests.integration.google.conftest import calls, class_id_of, object_id_of, outbox_rows
from walletd.loyalty.context import Context
from walletd.models import OutboxMessage
from walletd.push.dispatcher import Dispatcher
from walletd.push.outbox import GOOGLE_CLASS_MESSAGE, GOOGLE_MESSAGE, enqueue


def _message(client: FlaskClient, brand: BrandKeys, member: dict[str, Any], text: str) -> str:
    response = client.post(
        f"/api/v1/members/{member['id']}/message", json={"message": text}, headers=brand.admin
    )
    assert response.status_code == 202, response.get_data(as_text=True)
    return str(response.get_json()["message_id"])


def _enrolled(
    client: FlaskClient, brand: BrandKeys, fake: GoogleWalletFake, dispatcher: Dispatcher
) -> tuple[dict[str, Any], str]:
    member = enroll(client, brand)
    dispatcher.drain()
    return member, object_id_of(fake, member["card"]["serial_number"])


def _message_types(fake: GoogleWalletFake, oid: str) -> list[str]:
    return [r.body["message"]["messageType"] for r in calls(fake, "POST", f"{oid}/addMessage")]


def test_messages_notify_within_the_budget_and_are_plain_text_beyond_it(
    client: FlaskClient,
    brand: BrandKeys,
    fake: GoogleWalletFake,
    dispatcher: Dispatcher,
    clock: FrozenClock,
) -> None:
    member, oid = _enrolled(client, brand, fake, dispatcher)
    ids = []
    for i in range(4):
        clock.advance(minutes=10)
        ids.append(_message(client, brand, member, f"Offer {i}"))
        dispatcher.drain()
    assert _message_types(fake, oid) == ["TEXT_AND_NOTIFY"] * 3 + ["TEXT"]
    adds = calls(fake, "POST", f"{oid}/addMessage")
    assert [r.body["message"]["id"] for r in adds] == ids
    assert {r.body["message"]["header"] for r in adds} == {"Acme Coffee"}
    assert {r.status for r in fake.api_requests()} == {200}  # never refused by the 3-a-day rule
    assert [m["id"] for m in fake.objects[oid]["messages"]] == ids
    assert len(fake.notifications_for(oid)) == 3

    clock.advance(hours=24)
    fake.advance_time(24 * 3600)
    _message(client, brand, member, "Tomorrow's offer")
    dispatcher.drain()
    assert _message_types(fake, oid)[-1] == "TEXT_AND_NOTIFY"


def test_balance_notifications_and_messages_share_one_budget(
    client: FlaskClient,
    brand: BrandKeys,
    fake: GoogleWalletFake,
    dispatcher: Dispatcher,
    clock: FrozenClock,
) -> None:
    member, oid = _enrolled(client, brand, fake, dispatcher)
    for i in range(2):
        clock.advance(minutes=1)
        scan(client, brand, member["card"]["barcode"], "3", f"scan-{i}")
        dispatcher.drain()
    for i in range(2):
        clock.advance(minutes=1)
        _message(client, brand, member, f"Hello {i}")
        dispatcher.drain()
    assert _message_types(fake, oid) == ["TEXT_AND_NOTIFY", "TEXT"]
    assert len(fake.notifications_for(oid)) == 3
    assert fake.notifications_for(oid, delivered=False) == []


def test_a_message_google_refuses_to_notify_is_sent_as_text(
    client: FlaskClient, brand: BrandKeys, fake: GoogleWalletFake, dispatcher: Dispatcher
) -> None:
    member, oid = _enrolled(client, brand, fake, dispatcher)
    # Google's count is ahead of ours (say, another system notified this pass today).
    fake.notifications.extend(Notification(oid, "message", time.time(), True) for _ in range(3))
    message_id = _message(client, brand, member, "Double points today")
    dispatcher.drain()
    assert _message_types(fake, oid) == ["TEXT_AND_NOTIFY", "TEXT"]
    assert [r.status for r in calls(fake, "POST", f"{oid}/addMessage")] == [403, 200]
    assert [m["id"] for m in fake.objects[oid]["messages"]] == [message_id]
    assert {r.status for r in outbox_rows(client.application)} == {"sent"}


def test_a_retried_message_is_not_shown_twice(
    app: Flask,
    client: FlaskClient,
    brand: BrandKeys,
    fake: GoogleWalletFake,
    dispatcher: Dispatcher,
    clock: FrozenClock,
) -> None:
    member, oid = _enrolled(client, brand, fake, dispatcher)
    clock.advance(minutes=1)
    message_id = _message(client, brand, member, "See you soon")
    # Two failed calls each for the object PATCH and the addMessage: both rows wait for a retry.
    fake.fail_next(503, count=4)
    dispatcher.drain()
    [row] = outbox_rows(app, GOOGLE_MESSAGE)
    assert (row.status, row.attempts) == ("pending", 1)
    assert "503" in (row.last_error or "")
    clock.advance(minutes=5)
    dispatcher.drain()
    assert [m["id"] for m in fake.objects[oid]["messages"]] == [message_id]

    # A worker that died after Google answered but before recording it sends the row again.
    with services_of(app).db.transaction() as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == row.id)
            .values(status="pending", next_attempt_at=clock.now, finished_at=None)
        )
    dispatcher.drain()
    assert len(calls(fake, "POST", f"{oid}/addMessage", status=200)) == 2
    assert [m["id"] for m in fake.objects[oid]["messages"]] == [message_id]


def test_an_eleventh_message_drops_the_oldest(
    app: Flask,
    client: FlaskClient,
    brand: BrandKeys,
    fake: GoogleWalletFake,
    dispatcher: Dispatcher,
    clock: FrozenClock,
) -> None:
    member, oid = _enrolled(client, brand, fake, dispatcher)
    ids = []
    for i in range(12):
        clock.advance(minutes=1)
        ids.append(_message(client, brand, member, f"News {i}"))
        dispatcher.drain()
    assert [m["id"] for m in fake.objects[oid]["messages"]] == ids[-10:]
    # Google refused the 11th and 12th (the fake's reading of an undocumented limit) once each.
    assert len(calls(fake, "POST", f"{oid}/addMessage", status=400)) == 2
    prunes = [r for r in calls(fake, "PATCH", oid) if "messages" in r.body]
    assert [len(r.body["messages"]) for r in prunes] == [9, 9]
    assert {r.status for r in outbox_rows(app)} == {"sent"}


def test_a_program_wide_message_is_one_call_on_the_class(
    app: Flask,
    client: FlaskClient,
    brand: BrandKeys,
    fake: GoogleWalletFake,
    dispatcher: Dispatcher,
    clock: FrozenClock,
) -> None:
    enroll(client, brand)
    enroll(client, brand, name="Grace Hopper")
    dispatcher.drain()
    svc = services_of(app)
    ctx = Context(now=clock.now, secret_key=svc.settings.secret_key, google_enabled=True)
    rows = [
        {
            "kind": GOOGLE_CLASS_MESSAGE,
            "dedupe_key": f"{GOOGLE_CLASS_MESSAGE}:{brand.program_id}:{mid}",
            "payload": {"program_id": brand.program_id, "message_id": mid, **extra},
        }
        for mid, extra in (
            ("c1", {"text": "Open late on Friday"}),
            ("c2", {"text": "Quiet news", "notify": False}),
        )
    ]
    with svc.db.transaction() as session:
        enqueue(session, rows, now=ctx.now)
    dispatcher.drain()
    cid = class_id_of(fake, brand.program_id)
    adds = calls(fake, "POST", f"/loyaltyClass/{cid}/addMessage")
    assert [(r.body["message"]["id"], r.body["message"]["messageType"]) for r in adds] == [
        ("c1", "TEXT_AND_NOTIFY"),
        ("c2", "TEXT"),
    ]
    assert {r.status for r in adds} == {200}
    assert [m["id"] for m in fake.classes[cid]["messages"]] == ["c1", "c2"]
    assert not any("addMessage" in r.path and "loyaltyObject" in r.path for r in fake.requests)
