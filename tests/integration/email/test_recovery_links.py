"""[email-links] Lost-card recovery by e-mail: a one-time, 30-minute link to the card page."""

from __future__ import annotations

import re
import threading
from urllib.parse import urlsplit

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.factories import BrandKeys, FrozenClock, enroll, make_brand, services_of
from tests.fakes.smtp_server import RunningRelay
from tests.integration.pages.conftest import csrf_of
from walletd.email_links.recovery import LinkUsedError, use_recovery_link
from walletd.models import Card, Email
from walletd.push.dispatcher import Dispatcher

_LINK = re.compile(r"http://walletd\.test(/join/\d+/recover/[A-Za-z0-9_-]{43})")


def _ask(client: FlaskClient, brand: BrandKeys, contact: str, birthday: str = "",
         ip: str = "127.0.0.1") -> tuple[int, str]:  # fmt: skip
    path = f"/join/{brand.program_id}/recover"
    token = csrf_of(client, path)
    response = client.post(
        path,
        data={"csrf_token": token, "contact": contact, "birthday": birthday},
        environ_base={"REMOTE_ADDR": ip},
    )
    return response.status_code, response.get_data(as_text=True)


def _recovery_emails(app: Flask) -> list[Email]:
    with services_of(app).db.transaction() as session:
        rows = session.scalars(select(Email).where(Email.kind == "recovery").order_by(Email.id))
        return list(rows)


def _link_in_mail(relay: RunningRelay, mail_worker: Dispatcher, address: str) -> str:
    mail_worker.drain()
    [received] = [m for m in relay.relay.to(address) if "/recover/" in m.data.decode()]
    body = received.parsed().get_body(("plain",))
    assert body is not None
    found = _LINK.search(body.get_content())
    assert found, body.get_content()
    return found.group(1)


def _card_page(app: Flask, member: dict[str, object]) -> str:
    card = member["card"]
    assert isinstance(card, dict)
    return f"/card/{card['serial_number']}"


def _open(client: FlaskClient, path: str) -> tuple[int, str]:
    token = csrf_of(client, path)
    response = client.post(path, data={"csrf_token": token})
    return response.status_code, response.headers.get("Location") or response.get_data(True)


def test_a_member_without_a_birthday_gets_a_link_that_opens_the_card_once(
    app: Flask, client: FlaskClient, brand: BrandKeys, relay: RunningRelay,
    mail_worker: Dispatcher,
) -> None:  # fmt: skip
    member = enroll(client, brand, email="ada@example.com")
    status, html = _ask(client, brand, " ADA@example.com ")
    assert status == 200 and "we sent a link to it" in html
    [email] = _recovery_emails(app)
    assert email.member_id == member["id"] and email.to_address == "ada@example.com"

    path = _link_in_mail(relay, mail_worker, "ada@example.com")
    assert path.startswith(f"/join/{brand.program_id}/recover/")
    browser = FlaskClient(app)  # the member's phone, not the browser that asked
    page = browser.get(path)
    assert page.status_code == 200 and "Show my card" in page.get_data(as_text=True)
    status, location = _open(browser, path)
    assert status == 303 and location.startswith(_card_page(app, member) + "?sig=")
    assert browser.get(location).status_code == 200

    status, html = _open(browser, path)
    assert status == 404 and "This link was used already" in html
    again = FlaskClient(app).get(path)
    assert again.status_code == 404 and "This link was used already" in again.get_data(True)


def test_a_recovery_link_expires_after_30_minutes(
    app: Flask, client: FlaskClient, brand: BrandKeys, relay: RunningRelay,
    mail_worker: Dispatcher, clock: FrozenClock,
) -> None:  # fmt: skip
    enroll(client, brand, email="ada@example.com")
    _ask(client, brand, "ada@example.com")
    path = _link_in_mail(relay, mail_worker, "ada@example.com")
    clock.advance(minutes=29)
    assert client.get(path).status_code == 200
    clock.advance(minutes=1, seconds=1)
    expired = client.get(path)
    assert expired.status_code == 404 and "This link has expired" in expired.get_data(True)
    status, html = _open(client, path)
    assert status == 404 and "This link has expired" in html


def test_an_unknown_address_gets_the_same_answer_and_no_email(
    app: Flask, client: FlaskClient, brand: BrandKeys, mail_worker: Dispatcher
) -> None:
    enroll(client, brand, email="ada@example.com")
    known = _ask(client, brand, "ada@example.com")
    unknown = _ask(client, brand, "nobody@example.com")
    assert known == unknown
    assert [e.to_address for e in _recovery_emails(app)] == ["ada@example.com"]


def test_an_address_known_in_another_brand_is_unknown_here(
    app: Flask, client: FlaskClient, brand: BrandKeys, relay: RunningRelay,
    mail_worker: Dispatcher,
) -> None:  # fmt: skip
    other = make_brand(app, "Other Tea")
    enroll(client, other, email="ada@example.com")
    asked_here = _ask(client, brand, "ada@example.com")
    asked_nowhere = _ask(client, brand, "nobody@example.com")
    assert asked_here == asked_nowhere
    assert _recovery_emails(app) == []
    # The other brand's own link does not open anything on this brand's pages either.
    _ask(client, other, "ada@example.com")
    path = _link_in_mail(relay, mail_worker, "ada@example.com")
    foreign = path.replace(f"/join/{other.program_id}/", f"/join/{brand.program_id}/")
    assert client.get(foreign).status_code == 404
    assert _open(client, foreign)[0] == 404
    assert client.get(path).status_code == 200  # still unused in its own program


def test_recovery_emails_are_throttled_per_address_and_per_client(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    enroll(client, brand, email="ada@example.com")
    by_address = [_ask(client, brand, "ada@example.com", ip=f"10.0.0.{n}")[0] for n in range(6)]
    assert by_address == [200] * 5 + [429]
    assert len(_recovery_emails(app)) == 5
    by_client = [_ask(client, brand, f"x{n}@example.com", ip="10.0.1.1")[0] for n in range(6)]
    assert by_client == [200] * 5 + [429]


def test_a_phone_and_birthday_send_the_link_to_the_email_the_member_holds(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    enroll(client, brand, email="lin@example.com", phone="+886912345678", birthday="1988-08-08")
    status, html = _ask(client, brand, "+886 912 345 678", "1988-08-08")
    assert status == 200 and "to the e-mail address you joined with" in html
    assert [e.to_address for e in _recovery_emails(app)] == ["lin@example.com"]


def test_the_birthday_still_opens_the_card_of_a_member_without_an_email(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    member = enroll(client, brand, phone="+886912345678", birthday="1988-08-08")
    path = f"/join/{brand.program_id}/recover"
    token = csrf_of(client, path)
    response = client.post(
        path, data={"csrf_token": token, "contact": "+886912345678", "birthday": "1988-08-08"}
    )
    assert response.status_code == 303
    assert urlsplit(response.headers["Location"]).path == _card_page(app, member)
    assert _recovery_emails(app) == []


def test_two_clicks_at_once_open_the_card_once(
    app: Flask, client: FlaskClient, brand: BrandKeys, relay: RunningRelay,
    mail_worker: Dispatcher, clock: FrozenClock,
) -> None:  # fmt: skip
    enroll(client, brand, email="ada@example.com")
    _ask(client, brand, "ada@example.com")
    token = _link_in_mail(relay, mail_worker, "ada@example.com").rsplit("/", 1)[1]
    svc = services_of(app)
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def click() -> None:
        start.wait()
        try:
            with svc.db.transaction() as session:
                card = use_recovery_link(session, brand.program_id, token, now=clock())
                assert isinstance(card, Card)
            outcomes.append("opened")
        except LinkUsedError:
            outcomes.append("used")

    threads = [threading.Thread(target=click) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["opened", "used"]


def test_the_email_is_written_in_the_language_of_the_page(
    app: Flask, client: FlaskClient, brand: BrandKeys, relay: RunningRelay,
    mail_worker: Dispatcher,
) -> None:  # fmt: skip
    enroll(client, brand, email="lin@example.com")
    path = f"/join/{brand.program_id}/recover"
    chinese = {"Accept-Language": "zh-TW,zh;q=0.9"}
    token = csrf_of(client, path)
    page = client.post(path, data={"csrf_token": token, "contact": "lin@example.com"},
                       headers=chinese)  # fmt: skip
    assert "連結只能使用一次" in page.get_data(as_text=True)
    mail_worker.drain()
    [received] = relay.relay.to("lin@example.com")
    message = received.parsed()
    assert message["Subject"].startswith("您的") and message["Subject"].endswith("會員卡")
    text = message.get_body(("plain",))
    assert text is not None and "分鐘內有效" in text.get_content()
    assert _LINK.search(text.get_content())


def test_a_bouncing_address_gets_the_same_answer_and_no_email_only_in_its_brand(
    app: Flask, client: FlaskClient, brand: BrandKeys, clock: FrozenClock
) -> None:
    from walletd.email.outbox import mark_bouncing

    other = make_brand(app, "Other Tea")
    enroll(client, brand, email="gone@example.com")
    enroll(client, other, email="gone@example.com")
    with services_of(app).db.transaction() as session:
        mark_bouncing(session, brand_id=brand.brand_id, address="gone@example.com",
                      reason="550 no such user", now=clock())  # fmt: skip
    assert _ask(client, brand, "gone@example.com") == _ask(client, brand, "nobody@example.com")
    assert _recovery_emails(app) == []
    _ask(client, other, "gone@example.com")
    assert [e.brand_id for e in _recovery_emails(app)] == [other.brand_id]
