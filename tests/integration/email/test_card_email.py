"""The card by e-mail: sent at enrollment when asked, resent from the API, shown in the history."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.factories import BrandKeys, FrozenClock, enroll, make_brand, services_of
from tests.fakes.smtp_server import RunningRelay
from walletd import create_app
from walletd.config import Settings
from walletd.email.outbox import is_bouncing, mark_bouncing
from walletd.models import Email
from walletd.push.dispatcher import Dispatcher
from walletd.web.links import check_link


def test_enrolling_with_send_card_email_mails_the_card_page_wallet_link_and_inline_qr(
    client: FlaskClient, brand: BrandKeys, relay: RunningRelay, mail_worker: Dispatcher,
    settings: Settings,
) -> None:  # fmt: skip
    member = enroll(client, brand, email="ada@example.com", send_card_email=True)

    mail_worker.drain()

    [received] = relay.relay.to("ada@example.com")
    message = received.parsed()
    assert "your membership card" in message["Subject"]
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    serial = member["card"]["serial_number"]
    page = re.search(rf"http://walletd\.test/card/{serial}\?sig=([0-9a-f]+)", text.get_content())
    assert page is not None and check_link("page", serial, page.group(1), settings.secret_key)
    assert member["card"]["apple_pass_url"] in text.get_content()
    assert "Google Wallet" not in text.get_content()  # Google is off here
    assert 'src="cid:card-qr"' in html.get_content()
    [image] = [part for part in message.walk() if part.get_content_type() == "image/png"]
    assert image["Content-ID"] == "<card-qr>"
    assert image.get_content().startswith(b"\x89PNG")


def test_a_member_in_traditional_chinese_gets_the_card_email_in_chinese(
    client: FlaskClient, brand: BrandKeys, relay: RunningRelay, mail_worker: Dispatcher
) -> None:
    enroll(client, brand, email="mei@example.com", language="zh-Hant", send_card_email=True)

    mail_worker.drain()

    message = relay.relay.to("mei@example.com")[0].parsed()
    assert "會員卡" in message["Subject"]
    text = message.get_body(("plain",))
    assert text is not None and "Apple 錢包" in text.get_content()


def test_the_card_email_is_resent_by_an_admin_and_shows_in_the_member_history(
    client: FlaskClient, brand: BrandKeys, relay: RunningRelay, mail_worker: Dispatcher
) -> None:
    member = enroll(client, brand, email="ada@example.com")
    mail_worker.drain()
    assert relay.relay.messages == []  # not asked for at enrollment

    answer = client.post(f"/api/v1/members/{member['id']}/card-email", headers=brand.admin)
    assert answer.status_code == 202, answer.get_json()
    mail_worker.drain()

    assert len(relay.relay.to("ada@example.com")) == 1
    history = client.get(f"/api/v1/members/{member['id']}/emails", headers=brand.admin)
    assert history.status_code == 200
    body = history.get_json()
    assert body["email_enabled"] is True and body["bouncing"] is False
    [email] = body["emails"]
    assert (email["kind"], email["status"], email["attempts"]) == ("card", "sent", 1)
    assert email["id"] == answer.get_json()["email_id"] and email["sent_at"]


def test_resending_is_refused_for_another_brand_a_cashier_no_address_and_a_bouncing_one(
    app: Flask, client: FlaskClient, brand: BrandKeys, clock: FrozenClock
) -> None:
    other = make_brand(app, "Other Tea")
    member = enroll(client, brand, email="ada@example.com")
    path = f"/api/v1/members/{member['id']}/card-email"

    assert client.post(path, headers=other.admin).status_code == 404
    assert (
        client.get(f"/api/v1/members/{member['id']}/emails", headers=other.admin).status_code == 404
    )
    assert client.post(path, headers=brand.cashier).status_code == 403
    assert client.post(path).status_code == 401

    no_address = enroll(client, brand, name="Bo", phone="+886912345678")
    refused = client.post(f"/api/v1/members/{no_address['id']}/card-email", headers=brand.admin)
    assert refused.status_code == 409
    assert refused.get_json()["error"]["code"] == "no_email"

    svc = services_of(app)
    with svc.db.transaction() as session:
        mark_bouncing(session, brand_id=brand.brand_id, address="ADA@example.com",
                      reason="550 no such user", now=clock())  # fmt: skip
    refused = client.post(path, headers=brand.admin)
    assert refused.status_code == 409
    assert refused.get_json()["error"]["code"] == "email_bouncing"
    # Another brand's bounce list is its own.
    with svc.db.transaction() as session:
        mark_bouncing(session, brand_id=other.brand_id, address="bo@example.com",
                      reason="550", now=clock())  # fmt: skip
    bo = enroll(client, brand, name="Bo Two", email="bo@example.com")
    assert (
        client.post(f"/api/v1/members/{bo['id']}/card-email", headers=brand.admin).status_code
        == 202
    )


def test_with_email_off_asking_for_the_card_email_enrolls_nobody_and_says_email_disabled(
    settings: Settings, clock: FrozenClock
) -> None:
    app = create_app(settings, clock=clock)  # no WALLETD_SMTP_URL
    try:
        client = app.test_client()
        brand = make_brand(app)
        body = {"name": "Ada", "email": "ada@example.com", "send_card_email": True}
        refused = client.post("/api/v1/members", json=body, headers=brand.admin)
        assert refused.status_code == 409
        assert refused.get_json()["error"]["code"] == "email_disabled"
        listed = client.get("/api/v1/members", headers=brand.admin).get_json()
        assert listed["members"] == []
        member = enroll(client, brand, email="ada@example.com")
        history = client.get(f"/api/v1/members/{member['id']}/emails", headers=brand.admin)
        assert history.get_json()["email_enabled"] is False
    finally:
        services_of(app).close()


def test_erasing_a_member_deletes_their_emails_and_the_bounce_of_their_address(
    app: Flask, client: FlaskClient, brand: BrandKeys, mail_worker: Dispatcher,
    clock: FrozenClock,
) -> None:  # fmt: skip
    member = enroll(client, brand, email="ada@example.com", send_card_email=True)
    mail_worker.drain()
    svc = services_of(app)
    with svc.db.transaction() as session:
        mark_bouncing(session, brand_id=brand.brand_id, address="ada@example.com",
                      reason="550", now=clock())  # fmt: skip

    assert client.delete(f"/api/v1/members/{member['id']}", headers=brand.admin).status_code in (
        200, 204,
    )  # fmt: skip

    with svc.db.transaction() as session:
        assert session.scalars(select(Email).where(Email.member_id == member["id"])).all() == []
        assert not is_bouncing(session, "ada@example.com", brand_id=brand.brand_id)
