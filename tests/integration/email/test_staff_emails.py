"""[email-links] Staff invitations and forgotten passwords by e-mail, with one-time links."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.factories import BrandKeys, FrozenClock, services_of
from tests.fakes.smtp_server import RunningRelay
from tests.integration.pages.conftest import PASSWORD, Staff, csrf_of, log_in, make_staff
from walletd.models import Email
from walletd.push.dispatcher import Dispatcher

_LINK = re.compile(r"http://walletd\.test(/dashboard/set-password/[A-Za-z0-9_-]{43})")
NEW_PASSWORD = "a brand new passphrase"


def _mail_link(relay: RunningRelay, mail_worker: Dispatcher, address: str) -> tuple[str, str]:
    """The subject and the set-password path of the newest e-mail to `address`."""
    mail_worker.drain()
    message = relay.relay.to(address)[-1].parsed()
    body = message.get_body(("plain",))
    assert body is not None
    found = _LINK.search(body.get_content())
    assert found, body.get_content()
    return str(message["Subject"]), found.group(1)


def _emails(app: Flask, kind: str) -> list[str]:
    with services_of(app).db.transaction() as session:
        return list(session.scalars(select(Email.to_address).where(Email.kind == kind)))


def _forgot(client: FlaskClient, email: str, ip: str = "127.0.0.1") -> tuple[int, str]:
    token = csrf_of(client, "/dashboard/forgot-password")
    response = client.post(
        "/dashboard/forgot-password",
        data={"csrf_token": token, "email": email},
        environ_base={"REMOTE_ADDR": ip},
    )
    return response.status_code, response.get_data(as_text=True)


def _set_password(client: FlaskClient, path: str, password: str) -> tuple[int, str]:
    token = csrf_of(client, "/dashboard/login")
    response = client.post(
        path, data={"csrf_token": token, "password": password, "confirm": password}
    )
    return response.status_code, response.get_data(as_text=True)


def test_an_invitation_is_emailed_with_a_link_that_sets_the_password(
    app: Flask, brand: BrandKeys, relay: RunningRelay, mail_worker: Dispatcher
) -> None:
    api = app.test_client()
    invited = api.post(
        "/api/v1/staff", json={"email": "Till@Acme.example", "role": "cashier"},
        headers=brand.admin,
    )  # fmt: skip
    assert invited.status_code == 201
    body = invited.get_json()
    assert body["emailed"] is True
    subject, path = _mail_link(relay, mail_worker, "till@acme.example")
    assert subject == "Acme Coffee invited you to walletd"
    assert urlsplit(body["set_password_url"]).path == path  # the admin sees the same link
    browser = app.test_client()
    assert _set_password(browser, path, NEW_PASSWORD)[0] == 303
    assert browser.get("/cashier").status_code == 200
    status, html = _set_password(app.test_client(), path, "yet another passphrase")
    assert status == 404 and "This link was used already" in html


def test_the_staff_page_says_the_invitation_was_emailed(
    app: Flask, client: FlaskClient, brand: BrandKeys, relay: RunningRelay,
    mail_worker: Dispatcher,
) -> None:  # fmt: skip
    log_in(client, make_staff(app, brand.brand_id, "owner@acme.example"))
    token = csrf_of(client, "/dashboard/staff")
    page = client.post(
        "/dashboard/staff",
        data={"csrf_token": token, "email": "new@acme.example", "role": "cashier"},
    )
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'id="new-link-emailed"' in html
    _, path = _mail_link(relay, mail_worker, "new@acme.example")
    assert path in html


def test_a_forgotten_password_is_reset_by_email_and_other_sessions_end(
    app: Flask, brand: BrandKeys, relay: RunningRelay, mail_worker: Dispatcher
) -> None:
    owner = make_staff(app, brand.brand_id, "owner@acme.example")
    elsewhere = app.test_client()
    log_in(elsewhere, owner)
    assert elsewhere.get("/dashboard").status_code == 200

    browser = app.test_client()
    status, html = _forgot(browser, " Owner@Acme.example ")
    assert status == 200 and 'id="reset-sent"' in html
    subject, path = _mail_link(relay, mail_worker, "owner@acme.example")
    assert subject == "Your new walletd password"
    status, location = _set_password(browser, path, NEW_PASSWORD)
    assert status == 303
    assert browser.get("/dashboard").status_code == 200  # logged in by the link

    assert elsewhere.get("/dashboard").status_code == 302  # the other session ended
    log_in(app.test_client(), Staff(owner.email, NEW_PASSWORD, brand.brand_id))
    token = csrf_of(app.test_client(), "/dashboard/login")
    old = app.test_client().post(
        "/dashboard/login", data={"csrf_token": token, "email": owner.email, "password": PASSWORD}
    )
    assert old.status_code != 303


def test_a_reset_link_works_once_and_for_30_minutes(
    app: Flask, brand: BrandKeys, relay: RunningRelay, mail_worker: Dispatcher,
    clock: FrozenClock,
) -> None:  # fmt: skip
    make_staff(app, brand.brand_id, "owner@acme.example")
    _forgot(app.test_client(), "owner@acme.example")
    _, used = _mail_link(relay, mail_worker, "owner@acme.example")
    assert _set_password(app.test_client(), used, NEW_PASSWORD)[0] == 303
    status, html = _set_password(app.test_client(), used, "yet another passphrase")
    assert status == 404 and "This link was used already" in html

    clock.advance(minutes=20)  # out of the throttle's way
    _forgot(app.test_client(), "owner@acme.example", ip="10.0.0.2")
    _, late = _mail_link(relay, mail_worker, "owner@acme.example")
    assert late != used
    clock.advance(minutes=30, seconds=1)
    page = app.test_client().get(late)
    assert page.status_code == 404 and "This link has expired" in page.get_data(True)


def test_an_unknown_or_disabled_address_gets_the_same_answer_and_no_email(
    app: Flask, brand: BrandKeys, mail_worker: Dispatcher
) -> None:
    make_staff(app, brand.brand_id, "owner@acme.example")
    make_staff(app, brand.brand_id, "second@acme.example")
    api = app.test_client()
    second = next(
        row["id"]
        for row in api.get("/api/v1/staff", headers=brand.admin).get_json()["staff"]
        if row["email"] == "second@acme.example"
    )
    api.patch(f"/api/v1/staff/{second}", json={"disabled": True}, headers=brand.admin)
    browser = app.test_client()
    known = _forgot(browser, "owner@acme.example")
    assert known == _forgot(browser, "nobody@acme.example")
    assert known == _forgot(browser, "second@acme.example")
    assert _emails(app, "password_reset") == ["owner@acme.example"]


def test_reset_requests_are_throttled_per_account_and_per_client(
    app: Flask, brand: BrandKeys
) -> None:
    make_staff(app, brand.brand_id, "owner@acme.example")
    browser = app.test_client()
    per_account = [_forgot(browser, "owner@acme.example", ip=f"10.0.0.{n}")[0] for n in range(4)]
    assert per_account == [200, 200, 200, 429]
    assert len(_emails(app, "password_reset")) == 3
    per_client = [_forgot(browser, f"x{n}@acme.example", ip="10.0.1.1")[0] for n in range(6)]
    assert per_client == [200] * 5 + [429]


def test_the_reset_email_is_written_in_the_language_of_the_page(
    app: Flask, brand: BrandKeys, relay: RunningRelay, mail_worker: Dispatcher
) -> None:
    make_staff(app, brand.brand_id, "owner@acme.example")
    browser = app.test_client()
    token = csrf_of(browser, "/dashboard/forgot-password")
    page = browser.post(
        "/dashboard/forgot-password",
        data={"csrf_token": token, "email": "owner@acme.example"},
        headers={"Accept-Language": "zh-TW"},
    )
    assert "我們已寄出設定新密碼的連結" in page.get_data(as_text=True)
    subject, _ = _mail_link(relay, mail_worker, "owner@acme.example")
    assert subject == "您的 walletd 新密碼"
