"""The join page e-mails the card; the member page resends it and shows the e-mail history."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from tests.factories import BrandKeys, FrozenClock, enroll, make_brand, services_of
from tests.fakes.smtp_server import RunningRelay
from tests.integration.pages.conftest import csrf_of, log_in, make_staff
from walletd import create_app
from walletd.config import Settings
from walletd.push.dispatcher import Dispatcher


def test_joining_with_an_email_on_the_join_page_sends_the_card_by_email(
    client: FlaskClient, brand: BrandKeys, relay: RunningRelay, mail_worker: Dispatcher
) -> None:
    path = f"/join/{brand.program_id}"
    token = csrf_of(client, path)
    joined = client.post(path, data={"csrf_token": token, "name": "Ada",
                                     "email": "ada@example.com"})  # fmt: skip
    assert joined.status_code == 303

    mail_worker.drain()

    [received] = relay.relay.to("ada@example.com")
    assert joined.headers["Location"].split("?")[0] in received.parsed().as_string()


def test_the_member_page_resends_the_card_and_lists_the_emails(
    app: Flask, client: FlaskClient, brand: BrandKeys, relay: RunningRelay,
    mail_worker: Dispatcher,
) -> None:  # fmt: skip
    member = enroll(client, brand, email="ada@example.com", send_card_email=True)
    mail_worker.drain()
    log_in(client, make_staff(app, brand.brand_id, "owner@acme.example"))
    page_path = f"/dashboard/members/{member['id']}"

    page = client.get(page_path).get_data(as_text=True)
    assert 'id="email-history"' in page and "your membership card" in page and "sent" in page

    token = csrf_of(client, page_path)
    resent = client.post(f"{page_path}/card-email", data={"csrf_token": token})
    assert resent.status_code == 303
    mail_worker.drain()
    assert len(relay.relay.to("ada@example.com")) == 2
    # Without the CSRF token nothing is sent.
    assert client.post(f"{page_path}/card-email").status_code in (400, 403)
    # Another brand's staff cannot resend this member's card.
    other = make_brand(app, "Other Tea")
    other_client = app.test_client()
    log_in(other_client, make_staff(app, other.brand_id, "boss@tea.example"))
    token = csrf_of(other_client, "/dashboard")
    refused = other_client.post(f"{page_path}/card-email", data={"csrf_token": token})
    assert refused.status_code == 404
    mail_worker.drain()
    assert len(relay.relay.to("ada@example.com")) == 2


def test_the_member_page_says_when_email_is_off(settings: Settings, clock: FrozenClock) -> None:
    app = create_app(settings, clock=clock)
    try:
        client = app.test_client()
        brand = make_brand(app)
        member = enroll(client, brand, email="ada@example.com")
        log_in(client, make_staff(app, brand.brand_id, "owner@acme.example"))
        page = client.get(f"/dashboard/members/{member['id']}").get_data(as_text=True)
        assert 'id="email-off"' in page and 'id="resend-card-email"' not in page
    finally:
        services_of(app).close()
