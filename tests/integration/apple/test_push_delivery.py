"""Update pushes through the outbox to a real HTTP/2 APNs fake, and what APNs's answers do."""

from __future__ import annotations

import logging
import socket
from datetime import datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from tests.factories import BrandKeys, FrozenClock, make_brand, services_of
from tests.fakes.apns_server import ApnsFakeServer
from tests.integration.apple.conftest import (
    IssuedPass,
    WalletDevice,
    count,
    issue_pass,
    library_id,
    purchase,
    push_token,
)
from walletd import create_app
from walletd.config import Settings
from walletd.models import Device, OutboxMessage, Registration
from walletd.passes.certs import DevCertPaths
from walletd.passes.signing import load_certificate
from walletd.push.dispatcher import MAX_ATTEMPTS, Dispatcher
from walletd.worker import build_dispatcher


def _outbox(app: Flask) -> list[OutboxMessage]:
    with services_of(app).db.transaction() as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all())


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _tokens_pushed(apns: ApnsFakeServer) -> list[str]:
    return sorted(request.token or "" for request in apns.requests)


def test_a_purchase_sends_one_empty_push_to_the_device_with_the_pass_certificate(
    client: FlaskClient,
    brand: BrandKeys,
    apns: ApnsFakeServer,
    dispatcher: Dispatcher,
    dev_certs: DevCertPaths,
    phone: WalletDevice,
    issued: IssuedPass,
) -> None:
    assert phone.register(issued).status_code == 201
    purchase(client, brand, issued)
    assert dispatcher.drain() == 1
    [request] = apns.requests
    assert request.method == "POST"
    assert request.path == f"/3/device/{phone.push_token}"
    assert request.headers["apns-topic"] == issued.pass_type_id
    assert request.body == b"{}"
    assert "apns-push-type" not in request.headers
    pass_certificate = load_certificate(dev_certs.cert_path)
    assert request.client_subject == pass_certificate.subject.rfc4514_string()


def test_passes_of_devices_sharing_one_token_get_one_push(
    app: Flask,
    client: FlaskClient,
    brand: BrandKeys,
    apns: ApnsFakeServer,
    dispatcher: Dispatcher,
    issued: IssuedPass,
) -> None:
    other = issue_pass(client, brand, "Grace Hopper")
    shared = push_token(7)
    ipad = WalletDevice(client, library_id(1), shared)
    iphone = WalletDevice(client, library_id(2), shared)
    assert ipad.register(issued).status_code == 201
    assert iphone.register(issued).status_code == 201
    assert iphone.register(other).status_code == 201
    purchase(client, brand, issued)
    purchase(client, brand, other)
    dispatcher.drain()
    assert _tokens_pushed(apns) == [shared]
    assert [row.status for row in _outbox(app)] == ["sent"]


def test_two_devices_holding_one_pass_each_get_a_push(
    client: FlaskClient,
    brand: BrandKeys,
    apns: ApnsFakeServer,
    dispatcher: Dispatcher,
    issued: IssuedPass,
) -> None:
    for n in (1, 2):
        device = WalletDevice(client, library_id(n), push_token(n))
        assert device.register(issued).status_code == 201
    purchase(client, brand, issued)
    dispatcher.drain()
    assert _tokens_pushed(apns) == [push_token(1), push_token(2)]


def test_a_pass_nobody_registered_pushes_nothing(
    app: Flask,
    client: FlaskClient,
    brand: BrandKeys,
    apns: ApnsFakeServer,
    dispatcher: Dispatcher,
    issued: IssuedPass,
) -> None:
    purchase(client, brand, issued)
    assert dispatcher.drain() == 0
    assert apns.requests == []
    assert _outbox(app) == []


def test_changes_made_while_a_push_is_pending_coalesce_into_one(
    app: Flask,
    client: FlaskClient,
    brand: BrandKeys,
    apns: ApnsFakeServer,
    dispatcher: Dispatcher,
    phone: WalletDevice,
    issued: IssuedPass,
) -> None:
    assert phone.register(issued).status_code == 201
    for _ in range(3):
        purchase(client, brand, issued)
    response = client.post(
        f"/api/v1/members/{issued.member_id}/message", json={"message": "hi"}, headers=brand.admin
    )
    assert response.status_code == 202
    dispatcher.drain()
    assert len(apns.requests) == 1
    assert [row.status for row in _outbox(app)] == ["sent"]
    # Once that push went out, the next change earns a push of its own.
    purchase(client, brand, issued)
    dispatcher.drain()
    assert len(apns.requests) == 2


def test_410_after_the_registration_forgets_the_device(
    app: Flask,
    client: FlaskClient,
    brand: BrandKeys,
    clock: FrozenClock,
    apns: ApnsFakeServer,
    dispatcher: Dispatcher,
    phone: WalletDevice,
    issued: IssuedPass,
) -> None:
    other = issue_pass(client, brand, "Grace Hopper")
    assert phone.register(issued).status_code == 201
    assert phone.register(other).status_code == 201
    gone_at = clock.now + timedelta(minutes=1)
    apns.respond(phone.push_token, status=410, reason="Unregistered", timestamp_ms=_ms(gone_at))
    clock.advance(minutes=2)
    purchase(client, brand, issued)
    dispatcher.drain()
    assert count(app, Device) == 0
    assert count(app, Registration) == 0
    [row] = _outbox(app)
    assert row.status == "gone"
    assert row.last_error == "410 Unregistered"


def test_410_older_than_a_re_registration_keeps_the_device(
    app: Flask,
    client: FlaskClient,
    brand: BrandKeys,
    clock: FrozenClock,
    apns: ApnsFakeServer,
    dispatcher: Dispatcher,
    phone: WalletDevice,
    issued: IssuedPass,
) -> None:
    assert phone.register(issued).status_code == 201
    gone_at = clock.advance(minutes=1)
    clock.advance(minutes=1)
    # The phone restored from a backup and registered again after APNs retired the token.
    assert phone.register(issued).status_code == 200
    apns.respond(phone.push_token, status=410, reason="Unregistered", timestamp_ms=_ms(gone_at))
    purchase(client, brand, issued)
    dispatcher.drain()
    assert count(app, Device) == 1
    assert count(app, Registration) == 1


def test_bad_device_token_forgets_the_device(
    app: Flask,
    client: FlaskClient,
    brand: BrandKeys,
    apns: ApnsFakeServer,
    dispatcher: Dispatcher,
    phone: WalletDevice,
    issued: IssuedPass,
) -> None:
    assert phone.register(issued).status_code == 201
    apns.respond(phone.push_token, status=400, reason="BadDeviceToken")
    purchase(client, brand, issued)
    dispatcher.drain()
    assert count(app, Device) == 0
    assert count(app, Registration) == 0
    assert [row.status for row in _outbox(app)] == ["gone"]


def test_a_token_of_another_topic_is_kept_failed_and_logged(
    app: Flask,
    client: FlaskClient,
    brand: BrandKeys,
    apns: ApnsFakeServer,
    dispatcher: Dispatcher,
    phone: WalletDevice,
    issued: IssuedPass,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert phone.register(issued).status_code == 201
    apns.respond(phone.push_token, status=400, reason="DeviceTokenNotForTopic")
    purchase(client, brand, issued)
    with caplog.at_level(logging.ERROR):
        dispatcher.drain()
    assert count(app, Registration) == 1
    [row] = _outbox(app)
    assert row.status == "failed"
    assert row.last_error == "400 DeviceTokenNotForTopic"
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert any("DeviceTokenNotForTopic" in r.getMessage() for r in errors)
    assert len(apns.requests) == 1


@pytest.mark.parametrize(
    ("status", "reason"), [(429, "TooManyRequests"), (503, "ServiceUnavailable")]
)
def test_a_busy_apns_is_retried_after_a_back_off(
    app: Flask,
    client: FlaskClient,
    brand: BrandKeys,
    clock: FrozenClock,
    apns: ApnsFakeServer,
    dispatcher: Dispatcher,
    phone: WalletDevice,
    issued: IssuedPass,
    status: int,
    reason: str,
) -> None:
    assert phone.register(issued).status_code == 201
    apns.respond(phone.push_token, status=status, reason=reason, times=1)
    purchase(client, brand, issued)
    dispatcher.drain()
    [row] = _outbox(app)
    assert row.status == "pending"
    assert row.next_attempt_at > clock.now
    assert row.last_error == f"{status} {reason}"
    # Draining again before the back-off ends sends nothing.
    dispatcher.drain()
    assert len(apns.requests) == 1
    clock.now = row.next_attempt_at + timedelta(seconds=1)
    dispatcher.drain()
    assert [r.status for r in _outbox(app)] == ["sent"]
    assert [r.status for r in apns.requests] == [status, 200]


def test_a_refused_certificate_pauses_the_channel_and_keeps_every_push(
    app: Flask,
    client: FlaskClient,
    brand: BrandKeys,
    clock: FrozenClock,
    apns: ApnsFakeServer,
    dispatcher: Dispatcher,
    issued: IssuedPass,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for n in (1, 2):
        device = WalletDevice(client, library_id(n), push_token(n))
        assert device.register(issued).status_code == 201
    apns.set_default_response(403, "BadCertificate")
    purchase(client, brand, issued)
    with caplog.at_level(logging.ERROR):
        dispatcher.drain()
    rows = _outbox(app)
    assert [row.status for row in rows] == ["pending", "pending"]
    # A pause is not the rows' fault: they keep every attempt for when the certificate is fixed.
    assert [row.attempts for row in rows] == [0, 0]
    assert all(row.next_attempt_at > clock.now for row in rows)
    assert any(
        r.levelno == logging.ERROR and "BadCertificate" in r.getMessage() for r in caplog.records
    )
    assert count(app, Registration) == 2
    # While paused nothing is tried, even when rows fall due.
    pushes = len(apns.requests)
    clock.advance(seconds=60)
    dispatcher.drain()
    assert len(apns.requests) == pushes
    apns.set_default_response(200)
    clock.advance(minutes=10)
    dispatcher.drain()
    assert [row.status for row in _outbox(app)] == ["sent", "sent"]


def test_the_apns_connection_is_reused_across_drains(
    app: Flask,
    client: FlaskClient,
    brand: BrandKeys,
    apns: ApnsFakeServer,
    dispatcher: Dispatcher,
    phone: WalletDevice,
    issued: IssuedPass,
) -> None:
    assert phone.register(issued).status_code == 201
    for _ in range(4):
        purchase(client, brand, issued)
        dispatcher.drain()
    assert len(apns.requests) == 4
    assert apns.connections_opened == 1
    assert {request.connection_id for request in apns.requests} == {1}


def test_an_apns_server_we_cannot_trust_pauses_the_channel_and_keeps_every_push(
    settings: Settings,
    clock: FrozenClock,
    dev_certs: DevCertPaths,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The wrong CA file (or a proxy in the way): every token fails the same TLS check.
    untrusting = create_app(settings.with_changes(apns_ca_file=str(dev_certs.ca_path)), clock=clock)
    try:
        client = untrusting.test_client()
        brand = make_brand(untrusting)
        issued = issue_pass(client, brand)
        assert (
            WalletDevice(client, library_id(1), push_token(1)).register(issued).status_code == 201
        )
        purchase(client, brand, issued)
        with caplog.at_level(logging.ERROR):
            build_dispatcher(services_of(untrusting)).drain()
        [row] = _outbox(untrusting)
        assert row.status == "pending"
        assert row.attempts == 0
        assert row.next_attempt_at > clock.now
        assert any("TlsCertificateError" in r.getMessage() for r in caplog.records)
    finally:
        services_of(untrusting).close()


def test_a_pause_never_uses_up_a_rows_last_attempt(
    app: Flask,
    client: FlaskClient,
    brand: BrandKeys,
    apns: ApnsFakeServer,
    dispatcher: Dispatcher,
    phone: WalletDevice,
    issued: IssuedPass,
) -> None:
    assert phone.register(issued).status_code == 201
    purchase(client, brand, issued)
    # A row that has been unlucky for a long time: one attempt left.
    with services_of(app).db.transaction() as session:
        session.execute(update(OutboxMessage).values(attempts=MAX_ATTEMPTS - 1))
    apns.set_default_response(403, "BadCertificate")
    dispatcher.drain()
    [row] = _outbox(app)
    assert row.status == "pending"
    assert row.attempts == MAX_ATTEMPTS - 1


def test_an_apns_that_does_not_answer_pauses_the_channel_without_using_attempts(
    settings: Settings,
    clock: FrozenClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Nothing listens on this port: every push fails before any HTTP answer.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    silent = create_app(
        settings.with_changes(apns_url=f"https://127.0.0.1:{dead_port}"), clock=clock
    )
    try:
        client = silent.test_client()
        brand = make_brand(silent)
        issued = issue_pass(client, brand)
        assert (
            WalletDevice(client, library_id(1), push_token(1)).register(issued).status_code == 201
        )
        purchase(client, brand, issued)
        with caplog.at_level(logging.ERROR):
            build_dispatcher(services_of(silent)).drain()
        [row] = _outbox(silent)
        assert (row.status, row.attempts) == ("pending", 0)
        assert row.next_attempt_at > clock.now
        assert any("APNs did not answer" in r.getMessage() for r in caplog.records)
    finally:
        services_of(silent).close()
