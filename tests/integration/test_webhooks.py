"""Webhooks end to end: endpoints through the API, events written with the change, delivered by
the worker's channel to a receiver on loopback, signed as the Standard Webhooks spec says."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
from collections.abc import Iterator
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import func, select

from tests.factories import (
    BrandKeys,
    FrozenClock,
    enroll,
    issue_coupon,
    make_brand,
    scan,
    services_of,
)
from tests.fakes.webhook_receiver import Received, WebhookReceiver, webhook_receiver
from walletd.errors import ValidationError
from walletd.models import AuditEntry, Card, Member, OutboxMessage, WebhookEndpoint
from walletd.push.dispatcher import Dispatcher
from walletd.push.google_callbacks import CallbackEvent
from walletd.push.google_sync import record_callback
from walletd.push.registrations import register_device, unregister_device
from walletd.webhooks import EVENTS
from walletd.webhooks.channel import MAX_ATTEMPTS, RETRY_SCHEDULE, WebhookChannel, webhook_channel
from walletd.webhooks.endpoints import check_events, check_url
from walletd.webhooks.signing import SecretUnreadableError, open_secret, seal_secret, sign
from walletd.worker import build_channels

KEY = "test-secret-key-that-is-long-enough-0123456789"

# --- an independent Standard Webhooks verifier (not walletd's code) ----------------------------


def verify(secret: str, headers: dict[str, str], body: bytes, now: datetime) -> dict[str, Any]:
    """Check a delivery as a receiver following the spec would; return the decoded body."""
    assert secret.startswith("whsec_")
    key = base64.b64decode(secret[len("whsec_") :])
    msg_id, timestamp = headers["webhook-id"], headers["webhook-timestamp"]
    assert abs(int(timestamp) - now.timestamp()) <= 300, "timestamp outside the 5 min tolerance"
    expected = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    offered = [
        base64.b64decode(sig.split(",", 1)[1])
        for sig in headers["webhook-signature"].split(" ")
        if sig.startswith("v1,")
    ]
    assert any(hmac.compare_digest(expected, sig) for sig in offered), "bad signature"
    return json.loads(body)  # type: ignore[no-any-return]


def test_signing_reproduces_the_standard_webhooks_reference_signature() -> None:
    # The reference vector of the spec's libraries (secret, id, timestamp, payload -> signature).
    signature = sign(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        b'{"test": 2432232314}',
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_a_sealed_secret_opens_with_its_key_and_after_a_rotation_while_listed() -> None:
    sealed = seal_secret("whsec_abc", [KEY])
    assert "whsec_abc" not in sealed
    assert open_secret(sealed, [KEY]) == "whsec_abc"
    assert open_secret(sealed, ["a-new-key-that-is-long-enough-000000000000", KEY]) == "whsec_abc"
    with pytest.raises(SecretUnreadableError):
        open_secret(sealed, ["a-new-key-that-is-long-enough-000000000000"])


# --- validators ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/walletd",
        "ftp://hooks.example.com/",
        "javascript:alert(1)",
        "https://user:pw@hooks.example.com/",
        "https://token@hooks.example.com/",
        "https://localhost/hook",
        "https://127.0.0.1/hook",
        "https://10.1.2.3/hook",
        "https://[::1]/hook",
        "https://169.254.169.254/latest/meta-data",
        "https:///no-host",
        "https://hooks.example.com:0/",
        "https://hooks.example.com:99999/",
        "https://hooks.example.com/" + "a" * 2000,
        "https://hooks.exa mple.com/",
        "https://höoks.example.com/",
        "",
    ],
)
def test_production_refuses_urls_that_are_not_public_https(url: str) -> None:
    with pytest.raises(ValidationError) as refused:
        check_url(url, production=True)
    assert refused.value.field == "url"


def test_http_and_loopback_are_taken_outside_production_only() -> None:
    assert check_url("http://127.0.0.1:8080/hook", production=False) == "http://127.0.0.1:8080/hook"
    assert check_url(" https://hooks.example.com/w?x=1 ", production=True) == (
        "https://hooks.example.com/w?x=1"
    )
    with pytest.raises(ValidationError):
        check_url("ftp://127.0.0.1/", production=False)
    with pytest.raises(ValidationError):
        check_url("http://u:p@127.0.0.1/", production=False)


@hsettings(max_examples=300, deadline=None)
@given(st.text(max_size=60) | st.from_regex(r"https?://[^/]{0,30}/?.{0,20}", fullmatch=True))
def test_any_text_as_url_is_taken_or_refused_with_the_url_field(text: str) -> None:
    for production in (True, False):
        try:
            taken = check_url(text, production=production)
        except ValidationError as exc:
            assert exc.field == "url"
        else:
            assert taken.startswith("https://" if production else "http")
            assert "@" not in taken.split("/")[2]


def test_events_are_known_names_once_or_a_lone_star() -> None:
    assert check_events(["scan.credited", "scan.credited", "tier.changed"]) == [
        "scan.credited",
        "tier.changed",
    ]
    assert check_events(["*"]) == ["*"]
    for bad in ([], ["*", "scan.credited"], ["scan.made"], "scan.credited", [1]):
        with pytest.raises(ValidationError):
            check_events(bad)


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    """A receiver on loopback answering 204."""
    with webhook_receiver() as fake:
        yield fake


@pytest.fixture
def dispatcher(app: Flask) -> Dispatcher:
    """A dispatcher over the webhook channel only (no APNs, no Google)."""
    svc = services_of(app)
    channel = svc.adapter("webhook_channel", lambda: webhook_channel(svc))
    return Dispatcher(svc.db, [channel], clock=svc.clock)


def create(
    client: FlaskClient, brand: BrandKeys, url: str, events: list[str] | None = None, **extra: Any
) -> dict[str, Any]:
    """Create an endpoint through the API and return the 201 body."""
    body = {"url": url, "events": events or ["*"], **extra}
    response = client.post("/api/v1/webhooks", json=body, headers=brand.admin)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()  # type: ignore[no-any-return]


def events_of(received: list[Received]) -> list[str]:
    """The event types received, in order."""
    return [r.json()["type"] for r in received]


def deliveries(client: FlaskClient, brand: BrandKeys, webhook_id: int, **query: Any) -> Any:
    """The deliveries route's answer."""
    response = client.get(
        f"/api/v1/webhooks/{webhook_id}/deliveries", query_string=query, headers=brand.admin
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def closed_port() -> int:
    """A loopback port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the API ---------------------------------------------------------------------------------


def test_the_secret_is_shown_once_and_stored_encrypted(
    app: Flask, client: FlaskClient, brand: BrandKeys, receiver: WebhookReceiver
) -> None:
    created = create(client, brand, receiver.url + "/hook", ["scan.credited"], description="POS")
    secret = created["secret"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 24
    assert created["events"] == ["scan.credited"] and created["status"] == "active"
    listed = client.get("/api/v1/webhooks", headers=brand.admin).get_json()["webhooks"]
    assert [w["id"] for w in listed] == [created["id"]]
    assert "secret" not in listed[0] and secret not in json.dumps(listed)
    with services_of(app).db.transaction() as session:
        stored = session.scalars(select(WebhookEndpoint)).one()
        assert secret not in stored.secret_encrypted
        audit = session.scalars(select(AuditEntry).where(AuditEntry.target_type == "webhook"))
        assert [a.action for a in audit] == ["webhook.created"]


def test_webhooks_are_admin_only_and_another_brands_are_not_found(
    app: Flask, client: FlaskClient, brand: BrandKeys, receiver: WebhookReceiver
) -> None:
    mine = create(client, brand, receiver.url)
    other = make_brand(app, "Other Tea")
    body = {"url": receiver.url, "events": ["*"]}
    assert client.post("/api/v1/webhooks", json=body, headers=brand.cashier).status_code == 403
    assert client.get("/api/v1/webhooks", headers=brand.cashier).status_code == 403
    path = f"/api/v1/webhooks/{mine['id']}"
    assert client.delete(path, headers=brand.cashier).status_code == 403
    assert client.get(path + "/deliveries", headers=other.admin).status_code == 404
    assert client.delete(path, headers=other.admin).status_code == 404
    assert client.get("/api/v1/webhooks", headers=other.admin).get_json() == {"webhooks": []}
    assert client.delete(path, headers=brand.admin).status_code == 204
    assert client.delete(path, headers=brand.admin).status_code == 404
    with services_of(app).db.transaction() as session:
        actions = session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert actions == ["webhook.created", "webhook.deleted"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://example.com/", "events": ["*"]}, "url"),
        ({"url": "http://a:b@example.com/", "events": ["*"]}, "url"),
        ({"url": "http://example.com/" + "x" * 2000, "events": ["*"]}, "url"),
        ({"url": "http://example.com/", "events": ["scan.made"]}, "events.0"),
        ({"url": "http://example.com/", "events": []}, "events"),
        ({"url": "http://example.com/", "events": ["*", "scan.credited"]}, "events"),
        ({"url": "http://example.com/", "events": ["*"], "description": "x" * 501}, "description"),
    ],
)
def test_bad_endpoints_are_422_with_the_field_and_change_nothing(
    app: Flask, client: FlaskClient, brand: BrandKeys, body: dict[str, Any], field: str
) -> None:
    response = client.post("/api/v1/webhooks", json=body, headers=brand.admin)
    assert response.status_code == 422, response.get_data(as_text=True)
    assert field in json.dumps(response.get_json())
    with services_of(app).db.transaction() as session:
        assert session.scalar(select(func.count(WebhookEndpoint.id))) == 0


def test_a_brand_has_at_most_twenty_endpoints(client: FlaskClient, brand: BrandKeys) -> None:
    for n in range(20):
        create(client, brand, f"http://127.0.0.1:9/{n}")
    body = {"url": "http://127.0.0.1:9/21", "events": ["*"]}
    assert client.post("/api/v1/webhooks", json=body, headers=brand.admin).status_code == 409


def test_production_takes_only_https(app: Flask, brand: BrandKeys) -> None:
    svc = services_of(app)
    svc.settings = svc.settings.with_changes(env="production")
    client = app.test_client()
    body = {"url": "http://hooks.example.com/", "events": ["*"]}
    response = client.post("/api/v1/webhooks", json=body, headers=brand.admin)
    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == "url"
    body["url"] = "https://hooks.example.com/"
    assert client.post("/api/v1/webhooks", json=body, headers=brand.admin).status_code == 201


# --- delivery end to end -------------------------------------------------------------------------


def test_events_reach_the_receiver_signed_in_order_and_once(
    app: Flask,
    client: FlaskClient,
    brand: BrandKeys,
    clock: FrozenClock,
    receiver: WebhookReceiver,
    dispatcher: Dispatcher,
) -> None:
    hook = create(client, brand, receiver.url + "/walletd")
    member = enroll(client, brand, email="ada@example.com")
    barcode = member["card"]["barcode"]
    clock.advance(seconds=1)
    first = scan(client, brand, barcode, "600.00", "s-1")
    assert first.status_code == 201
    # A replay of the same request changes nothing and emits nothing.
    assert scan(client, brand, barcode, "600.00", "s-1").status_code == 200
    clock.advance(seconds=1)
    spent = client.post(
        "/api/v1/redemptions",
        json={"barcode": barcode, "points": 100},
        headers={**brand.cashier, "Idempotency-Key": "r-1"},
    )
    assert spent.status_code == 201, spent.get_data(as_text=True)
    coupon = issue_coupon(client, brand, member["id"], name="5 off", kind="amount_off", value="5")
    redeem = {"barcode": coupon["barcode"], "amount": "20.00"}
    key = {**brand.cashier, "Idempotency-Key": "c-1"}
    assert client.post("/api/v1/coupons/redemptions", json=redeem, headers=key).status_code == 201
    assert client.post("/api/v1/coupons/redemptions", json=redeem, headers=key).status_code == 200
    scan_id = first.get_json()["scan_id"]
    reversal = client.post(f"/api/v1/scans/{scan_id}/reversal", headers=brand.admin)
    assert reversal.status_code == 201, reversal.get_data(as_text=True)

    assert receiver.requests == []  # nothing is sent by the requests themselves
    assert dispatcher.drain() == 8
    assert events_of(receiver.requests) == [
        "member.enrolled",
        "scan.credited",
        "tier.changed",
        "redemption.created",
        "coupon.issued",
        "coupon.redeemed",
        "scan.reversed",
        "tier.changed",  # issue 12: the refund takes the member back down to Silver at once
    ]
    received = receiver.requests
    bodies = [verify(hook["secret"], r.headers, r.body, clock.now) for r in received]
    assert all(r.path == "/walletd" for r in received)
    assert len({r.headers["webhook-id"] for r in received}) == len(received)
    by_type = {b["type"]: b for b in reversed(bodies)}  # the first event of each type
    enrolled = by_type["member.enrolled"]["data"]
    assert enrolled["member_id"] == member["id"] and enrolled["email"] == "ada@example.com"
    credited = by_type["scan.credited"]["data"]
    assert credited == {
        "member_id": member["id"],
        "external_id": None,
        "program_id": brand.program_id,
        "scan_id": scan_id,
        "points_earned": first.get_json()["points_earned"],
        "balance": first.get_json()["balance"],
        "tier": "Gold",
        "amount": "600.00",
        "currency": "USD",
        "location_id": None,
    }
    assert by_type["tier.changed"]["data"]["from"] == "Silver"
    assert by_type["tier.changed"]["data"]["to"] == "Gold"
    assert by_type["redemption.created"]["data"]["points_redeemed"] == 100
    assert by_type["coupon.redeemed"]["data"]["discount"] == "5.00"
    assert by_type["scan.reversed"]["data"]["amount"] == "600.00"
    assert by_type["scan.reversed"]["data"]["partial"] is False
    assert bodies[-1]["data"]["from"] == "Gold" and bodies[-1]["data"]["to"] == "Silver"
    assert bodies[-1]["data"]["reason"] == "refund"
    assert by_type["scan.credited"]["timestamp"].endswith("Z")
    everything = b" ".join(r.body for r in received).decode()
    assert barcode not in everything and coupon["barcode"] not in everything
    assert coupon["code"] not in everything
    page = deliveries(client, brand, hook["id"])
    assert [d["status"] for d in page["deliveries"]] == ["delivered"] * len(received)
    newest = page["deliveries"][0]
    assert newest["id"] == received[-1].headers["webhook-id"]
    assert newest["attempts"] == 1 and newest["last_status_code"] == 204
    assert newest["attempt_log"][0]["status_code"] == 204
    assert dispatcher.drain() == 0  # nothing left: each event was sent once


def test_events_of_one_member_arrive_in_the_order_they_happened(
    client: FlaskClient,
    brand: BrandKeys,
    clock: FrozenClock,
    receiver: WebhookReceiver,
    dispatcher: Dispatcher,
) -> None:
    create(client, brand, receiver.url, ["scan.credited"])
    barcode = enroll(client, brand)["card"]["barcode"]
    for n in range(5):
        assert scan(client, brand, barcode, f"{n + 1}.00", f"k-{n}").status_code == 201
    dispatcher.drain()
    amounts = [r.json()["data"]["amount"] for r in receiver.requests]
    assert amounts == ["1.00", "2.00", "3.00", "4.00", "5.00"]


def test_a_failing_endpoint_is_retried_with_back_off_until_it_answers(
    client: FlaskClient,
    brand: BrandKeys,
    clock: FrozenClock,
    receiver: WebhookReceiver,
    dispatcher: Dispatcher,
) -> None:
    hook = create(client, brand, receiver.url, ["member.enrolled"])
    receiver.answer(500, 503)
    enroll(client, brand)
    assert dispatcher.drain() == 1
    state = deliveries(client, brand, hook["id"])["deliveries"][0]
    assert state["status"] == "retrying" and state["last_status_code"] == 500
    assert "HTTP 500" in state["last_error"]
    clock.advance(seconds=RETRY_SCHEDULE[0] - 1)
    assert dispatcher.drain() == 0  # not yet due
    clock.advance(seconds=2)
    assert dispatcher.drain() == 1
    clock.advance(seconds=RETRY_SCHEDULE[1] + 1)
    assert dispatcher.drain() == 1
    assert len(receiver.requests) == 3
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1  # one message
    assert len({r.headers["webhook-timestamp"] for r in receiver.requests}) == 3  # re-signed
    state = deliveries(client, brand, hook["id"])["deliveries"][0]
    assert state["status"] == "delivered" and state["attempts"] == 3
    assert [a["status_code"] for a in state["attempt_log"]] == [500, 503, 204]
    listed = client.get("/api/v1/webhooks", headers=brand.admin).get_json()["webhooks"][0]
    assert listed["consecutive_failures"] == 0


def test_an_unreachable_endpoint_fails_for_good_after_the_last_attempt(
    client: FlaskClient, brand: BrandKeys, clock: FrozenClock, dispatcher: Dispatcher
) -> None:
    hook = create(client, brand, f"http://127.0.0.1:{closed_port()}/", ["member.enrolled"])
    enroll(client, brand)
    enroll(client, brand, name="Grace Hopper")
    for wait in (*RETRY_SCHEDULE, 0.0):
        assert dispatcher.drain() == 2
        clock.advance(seconds=wait + 1)
    assert dispatcher.drain() == 0
    rows = deliveries(client, brand, hook["id"])["deliveries"]
    assert [d["status"] for d in rows] == ["failed", "failed"]
    assert [d["attempts"] for d in rows] == [MAX_ATTEMPTS, MAX_ATTEMPTS]
    assert rows[0]["last_status_code"] is None and rows[0]["last_error"]
    listed = client.get("/api/v1/webhooks", headers=brand.admin).get_json()["webhooks"][0]
    assert listed["consecutive_failures"] == 2 * MAX_ATTEMPTS and listed["status"] == "active"


def test_410_gone_disables_the_endpoint(
    app: Flask,
    client: FlaskClient,
    brand: BrandKeys,
    receiver: WebhookReceiver,
    dispatcher: Dispatcher,
) -> None:
    hook = create(client, brand, receiver.url, ["member.enrolled"])
    receiver.answer(410)
    enroll(client, brand)
    enroll(client, brand, name="Grace Hopper")
    dispatcher.drain()
    assert len(receiver.requests) == 1  # the second event is not sent after the 410
    listed = client.get("/api/v1/webhooks", headers=brand.admin).get_json()["webhooks"][0]
    assert listed["status"] == "disabled" and "410" in listed["disabled_reason"]
    assert [d["status"] for d in deliveries(client, brand, hook["id"])["deliveries"]] == [
        "failed",
        "failed",
    ]
    enroll(client, brand, name="Edsger Dijkstra")  # a disabled endpoint gets no new events
    with services_of(app).db.transaction() as session:
        assert session.scalar(select(func.count(OutboxMessage.id))) == 2


def test_redirects_are_not_followed(
    client: FlaskClient, brand: BrandKeys, receiver: WebhookReceiver, dispatcher: Dispatcher
) -> None:
    hook = create(client, brand, receiver.url, ["member.enrolled"])
    receiver.answer(302)
    enroll(client, brand)
    dispatcher.drain()
    assert len(receiver.requests) == 1
    state = deliveries(client, brand, hook["id"])["deliveries"][0]
    assert state["status"] == "retrying" and "not followed" in state["last_error"]


def test_only_subscribed_events_of_the_brand_are_sent(
    app: Flask,
    client: FlaskClient,
    brand: BrandKeys,
    receiver: WebhookReceiver,
    dispatcher: Dispatcher,
) -> None:
    create(client, brand, receiver.url + "/scans", ["scan.credited"])
    other = make_brand(app, "Other Tea")
    with webhook_receiver() as theirs:
        create(client, other, theirs.url, ["*"])
        member = enroll(client, brand)
        assert scan(client, brand, member["card"]["barcode"], "3.00", "k").status_code == 201
        dispatcher.drain()
        assert theirs.requests == []
    assert events_of(receiver.requests) == ["scan.credited"]


def test_no_endpoint_means_no_outbox_row(app: Flask, client: FlaskClient, brand: BrandKeys) -> None:
    member = enroll(client, brand)
    assert scan(client, brand, member["card"]["barcode"], "3.00", "k").status_code == 201
    with services_of(app).db.transaction() as session:
        kinds = session.scalars(select(OutboxMessage.kind)).all()
    assert "webhook" not in kinds


def test_events_queued_for_a_deleted_endpoint_are_dropped_unsent(
    client: FlaskClient, brand: BrandKeys, receiver: WebhookReceiver, dispatcher: Dispatcher
) -> None:
    hook = create(client, brand, receiver.url, ["member.enrolled"])
    enroll(client, brand)
    assert client.delete(f"/api/v1/webhooks/{hook['id']}", headers=brand.admin).status_code == 204
    assert dispatcher.drain() == 1
    assert receiver.requests == []


def test_deliveries_page_newest_first_with_a_cursor(
    client: FlaskClient, brand: BrandKeys, receiver: WebhookReceiver, dispatcher: Dispatcher
) -> None:
    hook = create(client, brand, receiver.url, ["member.enrolled"])
    for n in range(5):
        enroll(client, brand, name=f"Member {n}")
    dispatcher.drain()
    sent = [r.headers["webhook-id"] for r in receiver.requests]
    first = deliveries(client, brand, hook["id"], limit=2)
    second = deliveries(client, brand, hook["id"], limit=2, after=first["next"])
    last = deliveries(client, brand, hook["id"], limit=2, after=second["next"])
    ids = [d["id"] for page in (first, second, last) for d in page["deliveries"]]
    assert ids == list(reversed(sent)) and last["next"] is None
    bad = client.get(
        f"/api/v1/webhooks/{hook['id']}/deliveries?after=msg_nope", headers=brand.admin
    )
    assert bad.status_code == 422
    assert (
        client.get(
            f"/api/v1/webhooks/{hook['id']}/deliveries?limit=0", headers=brand.admin
        ).status_code
        == 422
    )


def test_wallet_installs_and_removals_are_events(
    app: Flask,
    client: FlaskClient,
    brand: BrandKeys,
    clock: FrozenClock,
    receiver: WebhookReceiver,
    dispatcher: Dispatcher,
) -> None:
    create(client, brand, receiver.url, ["pass.installed", "pass.removed"])
    member = enroll(client, brand)
    svc = services_of(app)
    now = clock.now
    with svc.db.transaction() as session:
        card = session.scalars(select(Card).where(Card.member_id == member["id"])).one()
        assert register_device(
            session, library_id="device1", pass_type_id="pass.test", card=card,
            push_token="ab" * 32, now=now,
        )  # fmt: skip
        # Registering again is not a new install.
        assert not register_device(
            session, library_id="device1", pass_type_id="pass.test", card=card,
            push_token="ab" * 32, now=now,
        )  # fmt: skip
        unregister_device(session, library_id="device1", card=card, now=now)
        unregister_device(session, library_id="device1", card=card, now=now)  # already gone
        serial = card.serial_number
        for nonce, kind in (("n1", "save"), ("n1", "save"), ("n2", "del")):
            event = CallbackEvent(
                event_type=kind,  # type: ignore[arg-type]
                class_id="issuer.class",
                object_id=f"issuer.card-{serial}",
                nonce=nonce,
                expires_at=now + timedelta(hours=1),
                count=None,
                signed_message="{}",
            )
            record_callback(session, event, issuer_id="issuer", now=now)
    dispatcher.drain()
    seen = [(r.json()["type"], r.json()["data"]["platform"]) for r in receiver.requests]
    assert seen == [
        ("pass.installed", "apple"),
        ("pass.removed", "apple"),
        ("pass.installed", "google"),
        ("pass.removed", "google"),
    ]
    data = receiver.requests[0].json()["data"]
    assert data == {
        "member_id": member["id"],
        "external_id": None,
        "program_id": brand.program_id,
        "platform": "apple",
        "pass": "loyalty",
        "coupon_id": None,
    }


def test_nightly_tier_reevaluation_emits_tier_changed(
    app: Flask,
    client: FlaskClient,
    brand: BrandKeys,
    clock: FrozenClock,
    receiver: WebhookReceiver,
    dispatcher: Dispatcher,
) -> None:
    from walletd.loyalty.ledger import reevaluate_tiers

    member = enroll(client, brand)
    assert scan(client, brand, member["card"]["barcode"], "600.00", "k").status_code == 201
    create(client, brand, receiver.url, ["tier.changed"])
    clock.advance(days=400)  # the 12-month window no longer holds the purchase
    svc = services_of(app)
    with svc.db.transaction() as session:
        assert reevaluate_tiers(session, svc.context(), program_id=brand.program_id) == 1
        assert session.get_one(Member, member["id"]).tier_id is not None
    dispatcher.drain()
    (changed,) = [r.json()["data"] for r in receiver.requests]
    assert (changed["from"], changed["to"], changed["reason"]) == ("Gold", "Silver", "reevaluation")


def test_the_worker_has_the_webhook_channel(app: Flask) -> None:
    svc = services_of(app)
    # Stand-ins for the Apple adapters, which need signing certificates this suite lacks.
    svc.adapters["apple_passes"] = SimpleNamespace(signer=None)
    svc.adapters["push_sender"] = SimpleNamespace()
    channels = build_channels(svc)
    assert sum(isinstance(c, WebhookChannel) for c in channels) == 1


def test_the_event_list_is_the_contracts() -> None:
    assert EVENTS == (
        "member.enrolled",
        "member.updated",
        "member.erased",
        "scan.credited",
        "scan.reversed",
        "redemption.created",
        "tier.changed",
        "coupon.issued",
        "coupon.redeemed",
        "pass.installed",
        "pass.removed",
        "feedback.received",
    )


def test_each_endpoint_gets_the_event_signed_with_its_own_secret(
    client: FlaskClient,
    brand: BrandKeys,
    clock: FrozenClock,
    receiver: WebhookReceiver,
    dispatcher: Dispatcher,
) -> None:
    with webhook_receiver() as second:
        one = create(client, brand, receiver.url, ["member.enrolled"])
        two = create(client, brand, second.url, ["*"])
        enroll(client, brand)
        assert dispatcher.drain() == 2  # both endpoints in one batch, served in parallel
        (a,), (b,) = receiver.requests, second.requests
    assert a.headers["webhook-id"] == b.headers["webhook-id"]  # one message, two endpoints
    assert verify(one["secret"], a.headers, a.body, clock.now) == verify(
        two["secret"], b.headers, b.body, clock.now
    )
    with pytest.raises(AssertionError):
        verify(one["secret"], b.headers, b.body, clock.now)


def test_rows_left_at_the_batch_deadline_wait_without_losing_an_attempt(
    app: Flask,
    client: FlaskClient,
    brand: BrandKeys,
    clock: FrozenClock,
    receiver: WebhookReceiver,
    dispatcher: Dispatcher,
) -> None:
    hook = create(client, brand, receiver.url, ["member.enrolled"])
    enroll(client, brand)
    (channel,) = dispatcher.channels
    assert isinstance(channel, WebhookChannel)
    channel.batch_seconds = -1.0  # the deadline has passed before the first request
    assert dispatcher.drain() == 1
    assert receiver.requests == []
    with services_of(app).db.transaction() as session:
        row = session.scalars(select(OutboxMessage)).one()
        assert (row.status, row.attempts) == ("pending", 0)
    channel.batch_seconds = 20.0
    clock.advance(seconds=10)
    assert dispatcher.drain() == 1
    state = deliveries(client, brand, hook["id"])["deliveries"][0]
    assert (state["status"], state["attempts"]) == ("delivered", 1)
