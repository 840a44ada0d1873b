"""Cards reach Google Wallet: class and object at enrollment, balances on scans, save links."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

from tests.factories import BrandKeys, FrozenClock, enroll, make_brand, scan, services_of
from tests.fakes.google_wallet import GoogleWalletFake, iter_issues, validate_body
from tests.integration.google.conftest import (
    calls,
    card_of,
    class_id_of,
    object_id_of,
    outbox_rows,
)
from walletd import create_app
from walletd.config import BUNDLED_PASS_TEMPLATES, Settings
from walletd.models import GoogleCallbackNonce, GoogleNotification, OutboxMessage, Program
from walletd.passes.google import MAX_SAVE_JWT_LENGTH, SAVE_URL_PREFIX
from walletd.push.dispatcher import Dispatcher
from walletd.push.outbox import GOOGLE_OBJECT

TEMPLATES = BUNDLED_PASS_TEMPLATES


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _decode_save_link(fake: GoogleWalletFake, url: str) -> tuple[dict[str, Any], dict[str, Any]]:
    assert url.startswith(SAVE_URL_PREFIX)
    token = url.removeprefix(SAVE_URL_PREFIX)
    assert len(token) < MAX_SAVE_JWT_LENGTH
    header, claims, signature = token.split(".")
    fake.public_key.verify(
        _b64url(signature),
        f"{header}.{claims}".encode("ascii"),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )
    return json.loads(_b64url(header)), json.loads(_b64url(claims))


def test_enrollment_creates_class_and_object_before_the_save_link_is_tapped(
    app: Flask,
    client: FlaskClient,
    brand: BrandKeys,
    fake: GoogleWalletFake,
    dispatcher: Dispatcher,
) -> None:
    member = enroll(client, brand)
    serial = member["card"]["serial_number"]
    oid, cid = object_id_of(fake, serial), class_id_of(fake, brand.program_id)
    assert [r.payload for r in outbox_rows(app, GOOGLE_OBJECT)] == [{"card_id": 1}]

    header, claims = _decode_save_link(fake, member["card"]["google_save_url"])
    assert header["kid"] == fake.private_key_id
    assert claims["iss"] == fake.service_account_email
    assert (claims["aud"], claims["typ"]) == ("google", "savetowallet")
    assert claims["origins"] == ["http://walletd.test"]
    assert claims["payload"] == {"loyaltyObjects": [{"id": oid, "classId": cid}]}

    assert dispatcher.drain() >= 1
    [class_insert] = calls(fake, "POST", "/loyaltyClass")
    assert class_insert.status == 200
    assert class_insert.body["reviewStatus"] == "UNDER_REVIEW"
    assert class_insert.body["callbackOptions"] == {"url": "http://walletd.test/google/callbacks"}
    logo = f"http://walletd.test/google/programs/{brand.program_id}/logo.png"
    assert class_insert.body["programLogo"]["sourceUri"] == {"uri": logo}
    assert list(iter_issues(validate_body("LoyaltyClass", class_insert.body))) == []

    stored = fake.objects[oid]
    assert list(iter_issues(validate_body("LoyaltyObject", stored))) == []
    assert stored["classId"] == cid
    assert stored["loyaltyPoints"]["balance"] == {"int": member["points"]}
    assert stored["barcode"]["value"] == member["card"]["barcode"]
    assert card_of(app, serial).google_synced_at is not None
    assert {r.status for r in outbox_rows(app)} == {"sent"}

    shown = client.get(f"/api/v1/members/{member['id']}", headers=brand.admin).get_json()
    _, again = _decode_save_link(fake, shown["card"]["google_save_url"])
    assert again["payload"] == claims["payload"]


def test_logo_route_serves_the_program_template_logo(client: FlaskClient, brand: BrandKeys) -> None:
    response = client.get(f"/google/programs/{brand.program_id}/logo.png")
    assert response.status_code == 200
    assert response.mimetype == "image/png"
    assert response.data == (TEMPLATES / "default" / "logo@3x.png").read_bytes()
    assert "public" in response.headers["Cache-Control"]
    missing = client.get("/google/programs/999/logo.png")
    assert missing.status_code == 404
    assert missing.get_json()["error"]["code"] == "not_found"


def test_scans_patch_the_balance_and_notify_only_within_the_daily_budget(
    client: FlaskClient,
    brand: BrandKeys,
    fake: GoogleWalletFake,
    dispatcher: Dispatcher,
    clock: FrozenClock,
) -> None:
    member = enroll(client, brand)
    oid = object_id_of(fake, member["card"]["serial_number"])
    dispatcher.drain()
    balances = []
    for i in range(4):
        clock.advance(minutes=5)
        balances.append(scan(client, brand, member["card"]["barcode"], "10", f"s{i}").get_json())
        dispatcher.drain()
    patches = calls(fake, "PATCH", oid)
    assert [p.body.get("notifyPreference") for p in patches] == [
        "NOTIFY_ON_UPDATE",
        "NOTIFY_ON_UPDATE",
        "NOTIFY_ON_UPDATE",
        None,
    ]
    assert [p.body["loyaltyPoints"]["balance"]["int"] for p in patches] == [
        b["balance"] for b in balances
    ]
    assert len(fake.notifications_for(oid)) == 3
    assert fake.notifications_for(oid, delivered=False) == []

    # A day after the first notification the budget has room again.
    clock.advance(hours=24)
    fake.advance_time(24 * 3600)
    scan(client, brand, member["card"]["barcode"], "10", "next-day")
    dispatcher.drain()
    assert calls(fake, "PATCH", oid)[-1].body["notifyPreference"] == "NOTIFY_ON_UPDATE"
    assert len(fake.notifications_for(oid)) == 4
    assert fake.objects[oid]["loyaltyPoints"]["balance"]["int"] == fake_balance(
        client, brand, member
    )


def fake_balance(client: FlaskClient, brand: BrandKeys, member: dict[str, Any]) -> int:
    """The member's balance according to walletd."""
    body = client.get(f"/api/v1/members/{member['id']}", headers=brand.admin).get_json()
    return int(body["points"])


def test_scans_while_a_sync_is_pending_coalesce_into_one_patch(
    client: FlaskClient,
    brand: BrandKeys,
    fake: GoogleWalletFake,
    dispatcher: Dispatcher,
    clock: FrozenClock,
) -> None:
    member = enroll(client, brand)
    oid = object_id_of(fake, member["card"]["serial_number"])
    dispatcher.drain()
    for i in range(3):
        clock.advance(seconds=30)
        scan(client, brand, member["card"]["barcode"], "7.50", f"c{i}")
    dispatcher.drain()
    [patch] = calls(fake, "PATCH", oid)
    assert patch.body["loyaltyPoints"]["balance"]["int"] == fake_balance(client, brand, member)
    assert patch.body["notifyPreference"] == "NOTIFY_ON_UPDATE"
    assert len(fake.notifications_for(oid)) == 1


def test_message_only_changes_patch_silently(
    client: FlaskClient,
    brand: BrandKeys,
    fake: GoogleWalletFake,
    dispatcher: Dispatcher,
    clock: FrozenClock,
) -> None:
    member = enroll(client, brand)
    oid = object_id_of(fake, member["card"]["serial_number"])
    dispatcher.drain()
    clock.advance(minutes=1)
    client.post(
        f"/api/v1/members/{member['id']}/message", json={"message": "Hi"}, headers=brand.admin
    )
    dispatcher.drain()
    [patch] = calls(fake, "PATCH", oid)
    assert "notifyPreference" not in patch.body  # the balance did not change


def test_class_is_created_once_and_patched_when_the_program_changes(
    app: Flask,
    client: FlaskClient,
    brand: BrandKeys,
    fake: GoogleWalletFake,
    dispatcher: Dispatcher,
    clock: FrozenClock,
) -> None:
    first = enroll(client, brand)
    enroll(client, brand, name="Grace Hopper")
    dispatcher.drain()
    scan(client, brand, first["card"]["barcode"], "5", "k1")
    dispatcher.drain()
    assert len(calls(fake, "POST", "/loyaltyClass")) == 1
    assert calls(fake, "PATCH", "/loyaltyClass/" + class_id_of(fake, brand.program_id)) == []

    with services_of(app).db.transaction() as session:
        session.execute(
            update(Program)
            .where(Program.id == brand.program_id)
            .values(
                name="Bean Club Gold",
                background_color="#112233",
                updated_at=clock.advance(minutes=1),
            )
        )
    clock.advance(minutes=1)
    scan(client, brand, first["card"]["barcode"], "5", "k2")
    dispatcher.drain()
    cid = class_id_of(fake, brand.program_id)
    [class_patch] = calls(fake, "PATCH", f"/loyaltyClass/{cid}")
    assert class_patch.status == 200
    assert class_patch.body["reviewStatus"] == "UNDER_REVIEW"
    assert fake.classes[cid]["programName"] == "Bean Club Gold"
    assert fake.classes[cid]["hexBackgroundColor"] == "#112233"
    assert len(calls(fake, "POST", "/loyaltyClass")) == 1

    clock.advance(minutes=1)
    scan(client, brand, first["card"]["barcode"], "5", "k3")
    dispatcher.drain()
    assert len(calls(fake, "PATCH", f"/loyaltyClass/{cid}")) == 1


def test_an_object_missing_at_google_is_inserted_again(
    client: FlaskClient,
    brand: BrandKeys,
    fake: GoogleWalletFake,
    dispatcher: Dispatcher,
    clock: FrozenClock,
) -> None:
    member = enroll(client, brand)
    oid = object_id_of(fake, member["card"]["serial_number"])
    dispatcher.drain()
    del fake.objects[oid]
    clock.advance(minutes=1)
    scan(client, brand, member["card"]["barcode"], "10", "lost")
    dispatcher.drain()
    assert calls(fake, "PATCH", oid)[-1].status == 404
    assert fake.objects[oid]["loyaltyPoints"]["balance"]["int"] == fake_balance(
        client, brand, member
    )


def test_a_class_lost_at_google_is_created_again_before_its_objects(
    client: FlaskClient,
    brand: BrandKeys,
    fake: GoogleWalletFake,
    dispatcher: Dispatcher,
    clock: FrozenClock,
) -> None:
    member = enroll(client, brand)
    oid = object_id_of(fake, member["card"]["serial_number"])
    cid = class_id_of(fake, brand.program_id)
    dispatcher.drain()
    fake.objects.clear()
    fake.classes.clear()
    clock.advance(minutes=1)
    scan(client, brand, member["card"]["barcode"], "10", "lost")
    dispatcher.drain()
    assert [r.status for r in calls(fake, "PATCH", f"/loyaltyClass/{cid}")] == [404]
    assert [r.status for r in calls(fake, "POST", "/loyaltyClass")] == [200, 200]
    assert fake.objects[oid]["classId"] == cid


def test_google_sync_command_pushes_stale_classes_and_queues_unsynced_cards(
    app: Flask,
    client: FlaskClient,
    brand: BrandKeys,
    fake: GoogleWalletFake,
    dispatcher: Dispatcher,
    clock: FrozenClock,
) -> None:
    members = [enroll(client, brand), enroll(client, brand, name="Grace Hopper")]
    with services_of(app).db.transaction() as session:
        # As if Google had been configured after this card was issued.
        session.execute(update(OutboxMessage).values(status="cancelled"))
        # Bookkeeping that no longer matters: a notification a day old, a month-old nonce.
        session.add(GoogleNotification(card_id=1, sent_at=clock.now - timedelta(hours=24)))
        session.add(GoogleNotification(card_id=1, sent_at=clock.now - timedelta(hours=23)))
        session.add(GoogleCallbackNonce(nonce="old", received_at=clock.now - timedelta(days=30)))
    result = app.test_cli_runner().invoke(args=["google-sync"])
    assert result.exit_code == 0, result.output
    assert "1 Google class(es) synced, 2 card(s) queued" in result.output
    assert "2 old record(s) pruned" in result.output
    assert class_id_of(fake, brand.program_id) in fake.classes
    clock.advance(seconds=1)
    dispatcher.drain()
    for member in members:
        assert object_id_of(fake, member["card"]["serial_number"]) in fake.objects
    again = app.test_cli_runner().invoke(args=["google-sync"])
    assert "0 Google class(es) synced, 0 card(s) queued" in again.output


def test_a_broken_key_file_costs_the_google_link_not_the_enrollment(
    settings: Settings, clock: FrozenClock, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = tmp_path / "key.json"
    broken.write_text("{not json")
    app = create_app(settings.with_changes(google_credentials=str(broken)), clock=clock)
    try:
        member = enroll(app.test_client(), make_brand(app))
    finally:
        services_of(app).close()
    assert member["card"]["google_save_url"] is None
    assert "WALLETD_GOOGLE_CREDENTIALS cannot be read" in caplog.text
