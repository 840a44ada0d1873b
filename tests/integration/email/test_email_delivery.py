"""E-mails queued in a transaction reach the relay from the worker: MIME, retries, bounces."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from tests.factories import BrandKeys, FrozenClock, make_brand, services_of
from tests.fakes.smtp_server import RunningRelay, free_port, running_relay
from walletd import create_app
from walletd.config import Settings
from walletd.email import EmailContent, Recipient, Sender, is_bouncing, queue_email, queue_emails
from walletd.email.outbox import mark_bouncing
from walletd.email.sender import RelayPace, email_channel
from walletd.models import Email, OutboxMessage
from walletd.push.dispatcher import Dispatcher


def _queue(
    app: Flask, brand: BrandKeys, to: str, subject: str = "Your card", **extra: object
) -> int:
    svc = services_of(app)
    content = EmailContent(
        subject=subject, text="Hello, here is your card.", html="<p>Hello, here is your card.</p>"
    )
    with svc.db.transaction() as session:
        email_id = queue_email(
            session, brand_id=brand.brand_id, to=to, kind="test", content=content,
            now=svc.clock(), program_id=brand.program_id, **extra,  # type: ignore[arg-type]
        )  # fmt: skip
    assert email_id is not None
    return email_id


def _email(app: Flask, email_id: int) -> Email:
    with services_of(app).db.transaction() as session:
        email = session.get(Email, email_id)
        assert email is not None
        return email


def test_a_queued_email_is_sent_over_starttls_with_auth_as_well_formed_mime(
    app: Flask, brand: BrandKeys, relay: RunningRelay, mail_worker: Dispatcher
) -> None:
    email_id = _queue(app, brand, "Ada@Example.com", subject="你的會員卡 — Acme")

    assert mail_worker.drain() == 1

    [received] = relay.relay.messages
    assert received.tls and received.login == "walletd@relay.test"
    assert received.helo
    assert received.rcpt_tos == ("ada@example.com",)
    assert received.mail_from == "hello@acme.test"
    message = received.parsed()
    assert message["Subject"] == "你的會員卡 — Acme"
    assert b"\xe4\xbd\xa0" not in received.data.split(b"\r\n\r\n")[0]  # headers stay 7-bit
    assert str(message["From"]) == "Acme Coffee <hello@acme.test>"
    assert message["Message-ID"] and message["Date"]
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and "here is your card" in text.get_content()
    assert html is not None and "<p>Hello" in html.get_content()
    email = _email(app, email_id)
    assert (email.status, email.attempts, email.message_id) == ("sent", 1, message["Message-ID"])
    assert email.sent_at is not None
    assert email.html_body is None  # the content is not kept once sent


def test_a_temporary_refusal_is_retried_after_a_backoff_then_sent(
    app: Flask, brand: BrandKeys, relay: RunningRelay, mail_worker: Dispatcher,
    clock: FrozenClock,
) -> None:  # fmt: skip
    relay.relay.answer("busy@example.com", "451 4.7.1 try again later")
    email_id = _queue(app, brand, "busy@example.com")

    mail_worker.drain()
    email = _email(app, email_id)
    assert (email.status, email.attempts) == ("pending", 1)
    assert email.last_error is not None and email.last_error.startswith("451")
    assert relay.relay.messages == []

    mail_worker.drain()  # not due yet: the back-off holds it
    assert relay.relay.messages == []

    clock.advance(minutes=1)
    mail_worker.drain()
    assert len(relay.relay.to("busy@example.com")) == 1
    email = _email(app, email_id)
    assert (email.status, email.attempts, email.last_error) == ("sent", 2, None)


def test_a_permanent_refusal_marks_the_address_bouncing_and_stops_further_sends(
    app: Flask, brand: BrandKeys, relay: RunningRelay, mail_worker: Dispatcher,
    clock: FrozenClock,
) -> None:  # fmt: skip
    relay.relay.refuse("gone@example.com")
    first = _queue(app, brand, "gone@example.com")
    queued_meanwhile = _queue(app, brand, "GONE@example.com")
    other = _queue(app, brand, "fine@example.com")

    mail_worker.drain()

    assert _email(app, first).status == "failed"
    assert _email(app, first).last_error == "550 5.1.1 no such user"
    assert _email(app, queued_meanwhile).status in ("failed", "cancelled")
    assert _email(app, other).status == "sent"
    svc = services_of(app)
    with svc.db.transaction() as session:
        assert is_bouncing(session, "Gone@Example.com", brand_id=brand.brand_id)
        assert not is_bouncing(session, "fine@example.com", brand_id=brand.brand_id)
        later = queue_email(
            session, brand_id=brand.brand_id, to="gone@example.com", kind="test",
            content=EmailContent("Again", "x", "<p>x</p>"), now=clock(),
        )  # fmt: skip
        assert later is None
        statuses = session.scalars(select(OutboxMessage.status)).all()
    assert "pending" not in statuses
    assert relay.relay.to("gone@example.com") == []


def test_the_program_sender_and_reply_to_are_used_with_an_encoded_display_name(
    app: Flask, brand: BrandKeys, relay: RunningRelay, mail_worker: Dispatcher
) -> None:
    sender = Sender(
        from_name="咖啡店 Acme", from_address="shop@acme.test", reply_to="help@acme.test"
    )
    _queue(app, brand, "ada@example.com", sender=sender)

    mail_worker.drain()

    message = relay.relay.messages[0].parsed()
    assert message["From"].addresses[0].display_name == "咖啡店 Acme"
    assert message["From"].addresses[0].addr_spec == "shop@acme.test"
    assert str(message["Reply-To"]) == "help@acme.test"
    assert relay.relay.messages[0].mail_from == "shop@acme.test"


def test_the_relay_pace_is_shared_through_the_database_and_keeps_the_rate(
    app: Flask, clock: FrozenClock
) -> None:
    svc = services_of(app)
    slept: list[float] = []
    first = RelayPace(svc.db, "smtp:relay.test:25", 20.0, clock=clock, sleep=slept.append)
    second = RelayPace(svc.db, "smtp:relay.test:25", 20.0, clock=clock, sleep=slept.append)
    assert first.burst == 2  # a tenth of a second's messages per shared slot

    for _ in range(4):
        first()
    for _ in range(4):
        second()  # another worker on the same relay waits behind the first one's slots

    # The clock stands still; a slot (two messages) every 0.1 s, reserved five slots at a time per
    # worker: the first waits 0.1 s for its second slot, the second starts after those five.
    assert slept == pytest.approx([0.1, 0.5, 0.6])


def test_queueing_many_emails_at_once_skips_bouncing_addresses_and_sends_the_rest(
    app: Flask, brand: BrandKeys, relay: RunningRelay, mail_worker: Dispatcher,
    clock: FrozenClock,
) -> None:  # fmt: skip
    svc = services_of(app)
    headers = {"List-Unsubscribe": "<https://walletd.test/u?m=1>",
               "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}  # fmt: skip
    content = EmailContent("Double points", "Double points all weekend.", "<p>Double</p>",
                           headers=headers)  # fmt: skip
    with svc.db.transaction() as session:
        mark_bouncing(session, brand_id=brand.brand_id, address="gone@example.com",
                      reason="550", now=clock())  # fmt: skip
        ids = queue_emails(
            session, brand_id=brand.brand_id, kind="campaign", now=clock(), campaign_id=7,
            recipients=[Recipient(f"{name}@example.com", content) for name in ("a", "gone", "b")],
        )  # fmt: skip

    assert ids[1] is None and ids[0] is not None and ids[2] is not None
    mail_worker.drain()

    assert [_email(app, i).status for i in (ids[0], ids[2]) if i] == ["sent", "sent"]
    assert _email(app, ids[0]).campaign_id == 7
    message = relay.relay.to("a@example.com")[0].parsed()
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert relay.relay.to("gone@example.com") == []


def test_a_relay_that_cannot_be_reached_leaves_the_email_pending_for_a_retry(
    settings: Settings, clock: FrozenClock
) -> None:
    down = settings.with_changes(
        smtp_url=f"smtp://127.0.0.1:{free_port()}", email_from="hello@acme.test"
    )
    app = create_app(down, clock=clock)
    try:
        brand = make_brand(app)
        svc = services_of(app)
        email_id = _queue(app, brand, "ada@example.com")
        worker = Dispatcher(svc.db, [email_channel(svc.settings, svc.db, clock)], clock=clock)

        worker.drain()

        email = _email(app, email_id)
        assert (email.status, email.attempts) == ("pending", 1)
        assert email.last_error is not None and "ConnectionRefusedError" in email.last_error
        assert email.html_body is not None  # kept for the next attempt
        with svc.db.transaction() as session:
            assert not is_bouncing(session, "ada@example.com", brand_id=brand.brand_id)
    finally:
        services_of(app).close()


def test_a_refused_login_is_the_configurations_fault_and_the_email_waits_for_a_retry(
    settings: Settings, clock: FrozenClock, tmp_path: Path
) -> None:
    with running_relay(users={"u@relay.test": "right"}, tls="starttls",
                       cert_dir=tmp_path / "smtp") as running:  # fmt: skip
        wrong = settings.with_changes(
            smtp_url=running.url.replace("right", "wrong"), smtp_ca_file=running.ca_file,
            email_from="hello@acme.test",
        )  # fmt: skip
        app = create_app(wrong, clock=clock)
        try:
            brand = make_brand(app)
            svc = services_of(app)
            email_id = _queue(app, brand, "ada@example.com")
            worker = Dispatcher(svc.db, [email_channel(svc.settings, svc.db, clock)], clock=clock)

            worker.drain()

            email = _email(app, email_id)
            assert (email.status, email.attempts) == ("pending", 1)
            assert email.last_error is not None and email.last_error.startswith("535")
            with svc.db.transaction() as session:
                assert not is_bouncing(session, "ada@example.com", brand_id=brand.brand_id)
        finally:
            services_of(app).close()
