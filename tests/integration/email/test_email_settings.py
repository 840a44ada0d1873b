"""E-mail settings: the relay URL, the program's sender, header injection, and check-email."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.factories import BrandKeys, FrozenClock, enroll, services_of
from tests.fakes.smtp_server import RunningRelay, free_port, running_relay
from walletd import create_app
from walletd.config import Settings
from walletd.email import EmailContent, Sender
from walletd.email.message import build_message
from walletd.email.relay import parse_relay_url
from walletd.errors import ConfigError
from walletd.push.dispatcher import Dispatcher

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def test_the_relay_url_gives_host_port_tls_and_url_decoded_credentials() -> None:
    relay = parse_relay_url("smtp://me%40shop.test:p%40ss%3Aword%2F@mail.shop.test:587")
    assert (relay.host, relay.port, relay.implicit_tls, relay.starttls) == (
        "mail.shop.test", 587, False, "auto",
    )  # fmt: skip
    assert (relay.username, relay.password) == ("me@shop.test", "p@ss:word/")
    assert "p@ss" not in repr(relay)
    assert parse_relay_url("smtps://mail.shop.test").port == 465
    assert parse_relay_url("smtp://mail.shop.test?starttls=required").starttls == "required"
    for bad in ("http://mail.shop.test", "smtp://", "smtp://h:99999", "smtp://h?tls=1",
                "smtps://h?starttls=never"):  # fmt: skip
        with pytest.raises(ValueError):
            parse_relay_url(bad)


def test_email_settings_are_read_once_and_a_bad_relay_or_sender_fails_at_start(
    tmp_path: Path,
) -> None:
    env = {
        "WALLETD_SMTP_URL": "smtp://u:secret-pass@mail.shop.test:2525",
        "WALLETD_EMAIL_FROM": "Acme <hello@acme.test>",
        "WALLETD_SMTP_RATE": "5",
        "WALLETD_INSTANCE_PATH": str(tmp_path),
    }
    settings = Settings.from_env(env).finalise()
    assert (settings.smtp_rate, settings.email_from) == (5.0, "Acme <hello@acme.test>")
    assert "secret-pass" not in repr(settings)
    for change in (
        {"WALLETD_SMTP_URL": "smtp://mail.shop.test:notaport"},
        {"WALLETD_EMAIL_FROM": ""},
        {"WALLETD_EMAIL_FROM": "Acme <not an address>"},
        {"WALLETD_SMTP_CA_FILE": str(tmp_path / "missing.pem")},
    ):
        with pytest.raises(ConfigError) as refused:
            Settings.from_env({**env, **change}).finalise()
        assert "secret-pass" not in str(refused.value)
    with pytest.raises(ConfigError):
        Settings.from_env({**env, "WALLETD_SMTP_RATE": "0"})


def test_header_injection_through_subjects_names_and_headers_is_refused() -> None:
    for subject in ("Hi\r\nBcc: victim@example.com", "Hi\nBcc: x@example.com", "Hi\u2028there"):
        with pytest.raises(ValueError):
            EmailContent(subject=subject, text="x", html="x")
    with pytest.raises(ValueError):
        EmailContent(subject="Hi", text="x", html="x", headers={"Bcc": "victim@example.com"})
    with pytest.raises(ValueError):
        EmailContent(subject="Hi", text="x", html="x",
                     headers={"List-Unsubscribe": "<https://x>\r\nBcc: v@example.com"})  # fmt: skip
    for sender in ({"from_name": "Acme\r\nBcc: v@example.com"},
                   {"from_address": "a@acme.test\r\nBcc: v@example.com"},
                   {"reply_to": "a@acme.test, v@example.com"}):  # fmt: skip
        with pytest.raises(ValueError):
            Sender(**sender)


def test_a_display_name_full_of_address_syntax_stays_one_quoted_name() -> None:
    tricky = 'Acme, "Inc" <boss@evil.test>; 咖啡'
    content = EmailContent("Hi", "x", "<p>x</p>")
    message = build_message(
        to="ada@example.com", from_name=tricky, from_address="shop@acme.test", reply_to=None,
        content=content, now=NOW,
    )  # fmt: skip

    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    [sender] = parsed["From"].addresses
    assert (sender.display_name, sender.addr_spec) == (tricky, "shop@acme.test")
    assert len(parsed["To"].addresses) == 1


def test_the_program_sender_is_set_on_patch_validated_and_used_by_the_card_email(
    client: FlaskClient, brand: BrandKeys, relay: RunningRelay, mail_worker: Dispatcher
) -> None:
    path = f"/api/v1/programs/{brand.program_id}"
    for bad, field in (
        ({"from_name": "Acme\r\nBcc: v@example.com", "from_address": "a@acme.test"},
         "email.from_name"),
        ({"from_address": "not-an-address"}, "email.from_address"),
        ({"from_address": "a@acme.test\nBcc: v@example.com"}, "email.from_address"),
        ({"from_name": "Acme"}, "email.from_address"),
        ({"reply_to": "x@y.test", "other": 1}, "email.other"),
    ):  # fmt: skip
        refused = client.patch(path, json={"email": bad}, headers=brand.admin)
        assert refused.status_code == 422, (bad, refused.get_json())
        assert refused.get_json()["error"]["field"].startswith(field.split(".")[0])
    sender = {"from_name": "咖啡店 Acme", "from_address": "Shop@Acme.test",
              "reply_to": "help@acme.test"}  # fmt: skip
    saved = client.patch(path, json={"email": sender}, headers=brand.admin)
    assert saved.status_code == 200, saved.get_json()
    assert saved.get_json()["email"] == {**sender, "from_address": "shop@acme.test"}
    assert client.get(path, headers=brand.cashier).status_code in (200, 403)

    enroll(client, brand, email="ada@example.com", send_card_email=True)
    mail_worker.drain()

    message = relay.relay.to("ada@example.com")[0].parsed()
    assert message["From"].addresses[0].display_name == "咖啡店 Acme"
    assert message["From"].addresses[0].addr_spec == "shop@acme.test"
    assert str(message["Reply-To"]) == "help@acme.test"
    cleared = client.patch(path, json={"email": {}}, headers=brand.admin)
    assert cleared.get_json()["email"] == {"from_name": None, "from_address": None,
                                           "reply_to": None}  # fmt: skip


def test_check_email_sends_a_test_message_and_prints_the_relays_answer(
    app: Flask, relay: RunningRelay
) -> None:
    runner = app.test_cli_runner()

    sent = runner.invoke(args=["check-email", "--to", "ops@example.com"])
    assert sent.exit_code == 0, sent.output
    assert "connected over TLS: 235" in sent.output
    assert "accepted: 250" in sent.output
    assert relay.relay.to("ops@example.com")[0].parsed()["Subject"] == "walletd test message"
    assert "w%rd" not in sent.output and "p@ss" not in sent.output

    relay.relay.refuse("nobody@example.com", "550 5.1.1 mailbox unavailable")
    refused = runner.invoke(args=["check-email", "--to", "nobody@example.com"])
    assert refused.exit_code == 1
    assert "refused: 550 5.1.1 mailbox unavailable" in refused.output

    bad = runner.invoke(args=["check-email", "--to", "not an address"])
    assert bad.exit_code == 2


def test_check_email_reports_a_relay_that_cannot_be_reached_or_refuses_the_login(
    settings: Settings, clock: FrozenClock, tmp_path: Path
) -> None:
    with running_relay(users={"u@relay.test": "right"}, tls="starttls",
                       cert_dir=tmp_path / "c") as running:  # fmt: skip
        wrong = running.url.replace("right", "wrong")
        changed = settings.with_changes(
            smtp_url=wrong, smtp_ca_file=running.ca_file, email_from="hello@acme.test"
        )
        app = create_app(changed, clock=clock)
        try:
            out = app.test_cli_runner().invoke(args=["check-email", "--to", "a@example.com"])
            assert out.exit_code == 1
            assert "refused: 535 AUTH refused: 5.7.8" in out.output
            assert "wrong" not in out.output
        finally:
            services_of(app).close()
    nobody = settings.with_changes(
        smtp_url=f"smtp://127.0.0.1:{free_port()}", email_from="hello@acme.test"
    )
    app = create_app(nobody, clock=clock)
    try:
        out = app.test_cli_runner().invoke(args=["check-email", "--to", "a@example.com"])
        assert out.exit_code == 1 and "refused: no answer ConnectionRefusedError" in out.output
    finally:
        services_of(app).close()
    off = create_app(settings, clock=clock)
    try:
        out = off.test_cli_runner().invoke(args=["check-email", "--to", "a@example.com"])
        assert out.exit_code == 2 and "e-mail is off" in out.output
    finally:
        services_of(off).close()


def test_implicit_tls_and_a_required_starttls_the_relay_does_not_offer(
    settings: Settings, clock: FrozenClock, tmp_path: Path
) -> None:
    with running_relay(tls="implicit", cert_dir=tmp_path / "tls") as running:
        changed = settings.with_changes(
            smtp_url=running.url, smtp_ca_file=running.ca_file, email_from="hello@acme.test"
        )
        app = create_app(changed, clock=clock)
        try:
            out = app.test_cli_runner().invoke(args=["check-email", "--to", "a@example.com"])
            assert out.exit_code == 0, out.output
            assert running.relay.messages[0].tls
        finally:
            services_of(app).close()
    with running_relay() as plain:
        url = plain.url + "?starttls=required"
        app = create_app(settings.with_changes(smtp_url=url, email_from="hello@acme.test"),
                         clock=clock)  # fmt: skip
        try:
            out = app.test_cli_runner().invoke(args=["check-email", "--to", "a@example.com"])
            assert out.exit_code == 1 and "does not offer STARTTLS" in out.output
            assert plain.relay.messages == []
        finally:
            services_of(app).close()
