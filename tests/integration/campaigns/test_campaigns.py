"""Campaigns end to end: schedule, fan out at the time, push to the APNs fake, count, cancel."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.factories import BrandKeys, FrozenClock
from tests.fakes.apns_server import ApnsFakeServer
from tests.integration.campaigns.conftest import (
    PASS_TYPE_ID,
    Shop,
    create_campaign,
    push_token,
    show_campaign,
    with_apns,
)
from walletd.campaigns import service
from walletd.config import Settings
from walletd.jobs import campaign_step
from walletd.models import (
    Campaign,
    CampaignRecipient,
    Card,
    MessageLog,
    OutboxMessage,
    PassPackage,
)
from walletd.push.dispatcher import Dispatcher
from walletd.worker import build_channels


@pytest.fixture
def settings(settings: Settings, apns: ApnsFakeServer) -> Settings:
    """Deliveries go to the APNs fake."""
    return with_apns(settings, apns)


def audience(shop: Shop, n: int, *, first_token: int = 1) -> dict[int, str]:
    """`n` consenting members, each with the card in Apple Wallet; member id -> push token."""
    tokens = [push_token(first_token + i) for i in range(n)]
    ids = shop.enroll_many([f"Member {i}" for i in range(n)], tokens=tokens)
    return dict(zip(ids, tokens, strict=True))


def pushed(apns: ApnsFakeServer) -> list[str]:
    """Tokens the fake received pushes for, sorted (repeats kept)."""
    return sorted(r.token or "" for r in apns.requests)


def recipients_of(shop: Shop, campaign_id: int) -> list[tuple[int, str]]:
    """(member id, group) of every recipient row of a campaign, by member."""
    with shop.svc.db.transaction() as session:
        rows = session.execute(
            select(CampaignRecipient.member_id, CampaignRecipient.group)
            .where(CampaignRecipient.campaign_id == campaign_id)
            .order_by(CampaignRecipient.member_id)
        ).all()
    return [(int(m), str(g)) for m, g in rows]


def campaign_rows(shop: Shop, campaign_id: int) -> list[str]:
    """Dedupe keys of the outbox rows a campaign wrote."""
    with shop.svc.db.transaction() as session:
        return sorted(
            session.scalars(
                select(OutboxMessage.dedupe_key).where(OutboxMessage.campaign_id == campaign_id)
            ).all()
        )


def test_a_campaign_waits_for_its_time_then_reaches_every_installed_card(
    client: FlaskClient, brand: BrandKeys, shop: Shop, clock: FrozenClock, apns: ApnsFakeServer
) -> None:
    members = audience(shop, 4)
    shop.install_apple(shop.enroll("No consent", consent=False), push_token(50))
    shop.enroll("Never added the card")
    gone = members[max(members)]
    apns.respond(gone, status=410, reason="Unregistered", timestamp_ms=1)

    # 15:00 at +02:00 is 13:00 UTC, an hour after the clock's 12:00.
    created = create_campaign(client, brand, send_at="2026-03-10T15:00:00+02:00")
    assert (created["status"], created["send_at"]) == ("scheduled", "2026-03-10T13:00:00+00:00")
    assert (created["segment_size"], created["recipients"]) == (6, 0)

    clock.advance(minutes=59)
    assert shop.fan_out() == 0
    assert recipients_of(shop, created["id"]) == []

    clock.advance(minutes=1)
    assert shop.fan_out() == 1
    queued = show_campaign(client, brand, created["id"])
    assert queued["status"] == "sent"
    assert (queued["recipients"], queued["skipped"], queued["pending"]) == (4, 2, 4)
    assert queued["skipped_by_reason"] == {"no_consent": 1, "no_card_installed": 1}
    assert queued["delivered"] == queued["failed"] == 0

    assert shop.deliver() == 4
    done = show_campaign(client, brand, created["id"])
    assert (done["delivered"], done["failed"], done["pending"]) == (3, 1, 0)
    assert pushed(apns) == sorted(members.values())
    assert {r.headers["apns-topic"] for r in apns.requests} == {PASS_TYPE_ID}
    with shop.svc.db.transaction() as session:
        messages = dict(session.execute(select(Card.member_id, Card.message)).tuples().all())
    assert {messages[m] for m in members} == {"Double points this week!"}
    assert [m for m, text in messages.items() if text] == sorted(members)


def test_the_expected_finish_time_follows_the_delivery_rate(
    client: FlaskClient, brand: BrandKeys, shop: Shop, clock: FrozenClock
) -> None:
    audience(shop, 6)
    campaign = create_campaign(client, brand)
    assert show_campaign(client, brand, campaign["id"])["expected_finish_at"] is None
    shop.fan_out()
    slow = Dispatcher(shop.svc.db, build_channels(shop.svc), clock=clock, batch_size=2)
    assert slow.run_once() == 2
    running = show_campaign(client, brand, campaign["id"])
    assert (running["delivered"], running["pending"]) == (2, 4)
    # Two deliveries in the last minute: the four left take two more minutes.
    assert running["expected_finish_at"] == (clock() + timedelta(minutes=2)).isoformat()
    slow.drain()
    assert show_campaign(client, brand, campaign["id"])["expected_finish_at"] is None


def test_the_expected_finish_time_counts_members_not_fanned_out_yet(
    client: FlaskClient,
    brand: BrandKeys,
    shop: Shop,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(service, "CHUNK", 2)
    audience(shop, 6)
    campaign = create_campaign(client, brand)
    assert campaign_step(shop.svc, "worker-a", set(), max_chunks=1) == 1
    slow = Dispatcher(shop.svc.db, build_channels(shop.svc), clock=clock, batch_size=1)
    assert slow.run_once() == 1
    running = show_campaign(client, brand, campaign["id"])
    assert (running["status"], running["delivered"], running["pending"]) == ("sending", 1, 1)
    # One delivery a minute; one queued and four members still to fan out, one push each.
    assert running["expected_finish_at"] == (clock() + timedelta(minutes=5)).isoformat()


def test_members_at_the_weekly_cap_are_skipped_until_a_week_has_passed(
    client: FlaskClient, brand: BrandKeys, shop: Shop, clock: FrozenClock, apns: ApnsFakeServer
) -> None:
    shop.set_program(messages_per_week_cap=1)
    members = audience(shop, 2)
    first = create_campaign(client, brand)
    shop.fan_out()
    shop.deliver()
    clock.advance(days=6, hours=23)
    second = create_campaign(client, brand, name="Too soon")
    shop.fan_out()
    capped = show_campaign(client, brand, second["id"])
    assert capped["recipients"] == 0
    assert capped["skipped_by_reason"] == {"frequency_cap": 2}
    clock.advance(hours=1, seconds=1)
    third = create_campaign(client, brand, name="A week later")
    shop.fan_out()
    assert show_campaign(client, brand, third["id"])["recipients"] == 2
    shop.deliver()
    assert pushed(apns) == sorted(2 * list(members.values()))
    assert show_campaign(client, brand, first["id"])["recipients"] == 2


def test_held_out_members_are_logged_but_get_nothing(
    client: FlaskClient, brand: BrandKeys, shop: Shop, apns: ApnsFakeServer
) -> None:
    members = audience(shop, 24)
    campaign = create_campaign(client, brand, holdout_percent=50)
    shop.fan_out()
    shop.deliver()
    groups = dict(recipients_of(shop, campaign["id"]))
    held = {m for m, g in groups.items() if g == "holdout"}
    assert 0 < len(held) < 24
    assert set(groups.values()) == {"recipient", "holdout"}
    body = show_campaign(client, brand, campaign["id"])
    assert (body["recipients"], body["holdout"]) == (24 - len(held), len(held))
    assert pushed(apns) == sorted(t for m, t in members.items() if m not in held)
    with shop.svc.db.transaction() as session:
        logged = dict(
            session.execute(select(MessageLog.member_id, MessageLog.holdout)).tuples().all()
        )
        cards = dict(session.execute(select(Card.member_id, Card.message)).tuples().all())
    assert logged == {m: m in held for m in members}
    assert {m for m, text in cards.items() if text is None} == held


def test_a_campaign_due_in_quiet_hours_is_deferred_to_their_end(
    client: FlaskClient, brand: BrandKeys, shop: Shop, clock: FrozenClock
) -> None:
    audience(shop, 2)
    campaign = create_campaign(client, brand, send_at="2026-03-10T22:00:00Z")
    clock.now = datetime(2026, 3, 10, 22, 0, tzinfo=UTC)
    assert shop.fan_out() == 0
    deferred = show_campaign(client, brand, campaign["id"])
    assert deferred["status"] == "scheduled"
    assert deferred["send_at"] == "2026-03-11T09:00:00+00:00"
    assert deferred["deferred_reason"] == "quiet_hours"
    assert deferred["recipients"] == 0
    clock.now = datetime(2026, 3, 11, 8, 59, tzinfo=UTC)
    assert shop.fan_out() == 0
    clock.now = datetime(2026, 3, 11, 9, 0, tzinfo=UTC)
    assert shop.fan_out() == 1
    assert show_campaign(client, brand, campaign["id"])["recipients"] == 2


def test_quiet_hours_are_kept_in_the_programs_time_zone(
    client: FlaskClient, brand: BrandKeys, shop: Shop
) -> None:
    # 12:00 UTC is 21:00 in Tokyo: quiet there until 09:00 local, which is 00:00 UTC.
    shop.set_program(timezone="Asia/Tokyo")
    audience(shop, 1)
    campaign = create_campaign(client, brand)
    shop.fan_out()
    deferred = show_campaign(client, brand, campaign["id"])
    assert (deferred["status"], deferred["deferred_reason"]) == ("scheduled", "quiet_hours")
    assert deferred["send_at"] == "2026-03-11T00:00:00+00:00"


def test_a_campaign_cancelled_before_its_time_sends_nothing(
    client: FlaskClient, brand: BrandKeys, shop: Shop, clock: FrozenClock, apns: ApnsFakeServer
) -> None:
    audience(shop, 3)
    campaign = create_campaign(client, brand, send_at="2026-03-10T13:00:00+00:00")
    response = client.post(f"/api/v1/campaigns/{campaign['id']}/cancel", headers=brand.admin)
    assert response.status_code == 200
    assert response.get_json()["status"] == "cancelled"
    clock.advance(hours=2)
    assert shop.fan_out() == 0
    shop.deliver()
    assert recipients_of(shop, campaign["id"]) == []
    assert campaign_rows(shop, campaign["id"]) == []
    assert apns.requests == []
    again = client.post(f"/api/v1/campaigns/{campaign['id']}/cancel", headers=brand.admin)
    assert again.status_code == 409


def test_a_campaign_cancelled_while_sending_writes_no_further_chunk(
    client: FlaskClient,
    brand: BrandKeys,
    shop: Shop,
    apns: ApnsFakeServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(service, "CHUNK", 2)
    members = audience(shop, 6)
    campaign = create_campaign(client, brand)
    held: set[int] = set()
    assert campaign_step(shop.svc, "worker-a", held, max_chunks=1) == 1
    assert held == {campaign["id"]}
    cancelled = client.post(f"/api/v1/campaigns/{campaign['id']}/cancel", headers=brand.admin)
    assert cancelled.get_json()["status"] == "cancelled"
    assert campaign_step(shop.svc, "worker-a", held) == 0
    assert held == set()
    first_two = sorted(members)[:2]
    assert recipients_of(shop, campaign["id"]) == [(m, "recipient") for m in first_two]
    # The first chunk's cards already carry the message, so their pushes still go out.
    shop.deliver()
    assert pushed(apns) == sorted(members[m] for m in first_two)
    body = show_campaign(client, brand, campaign["id"])
    assert (body["status"], body["recipients"], body["delivered"]) == ("cancelled", 2, 2)


def test_a_draft_waits_until_it_is_scheduled(
    client: FlaskClient, brand: BrandKeys, shop: Shop, clock: FrozenClock
) -> None:
    audience(shop, 2)
    draft = create_campaign(client, brand, draft=True)
    assert draft["status"] == "draft"
    clock.advance(hours=1)
    assert shop.fan_out() == 0
    scheduled = client.post(f"/api/v1/campaigns/{draft['id']}/schedule", headers=brand.admin)
    assert scheduled.status_code == 200
    assert scheduled.get_json()["status"] == "scheduled"
    assert shop.fan_out() == 1
    assert show_campaign(client, brand, draft["id"])["recipients"] == 2
    again = client.post(f"/api/v1/campaigns/{draft['id']}/schedule", headers=brand.admin)
    assert again.status_code == 409


INVALID_CAMPAIGNS: dict[str, tuple[dict[str, Any], str]] = {
    "send_at without an offset": ({"send_at": "2026-03-10T13:00:00"}, "send_at"),
    "send_at that is not a time": ({"send_at": "tomorrow"}, "send_at"),
    "send_at as a number": ({"send_at": 1773144000}, "send_at"),
    "send_at over a year away": ({"send_at": "2027-06-01T00:00:00Z"}, "send_at"),
    "holdout above 50": ({"holdout_percent": 51}, "holdout_percent"),
    "negative holdout": ({"holdout_percent": -1}, "holdout_percent"),
    "holdout as text": ({"holdout_percent": "10"}, "holdout_percent"),
    "no segment": ({"segment": None}, "segment"),
    "a bad segment": ({"segment": {"preset": "whales"}}, "segment.preset"),
    "message over 500 characters": ({"message": "x" * 501}, "message"),
    "blank message": ({"message": "   "}, "message"),
    "no message": ({"message": None}, "message"),
    "no name": ({"name": None}, "name"),
    "lift window of zero days": ({"lift_window_days": 0}, "lift_window_days"),
    "draft as text": ({"draft": "yes"}, "draft"),
    "program id as text": ({"program_id": "1"}, "program_id"),
}


def test_invalid_campaigns_are_refused_with_422_on_the_field_and_the_limits_accepted(
    client: FlaskClient, brand: BrandKeys
) -> None:
    base: dict[str, Any] = {"name": "Promo", "message": "Hello", "segment": {"preset": "all"}}
    answers = {}
    for name, (change, _) in INVALID_CAMPAIGNS.items():
        body = {k: v for k, v in {**base, **change}.items() if v is not None}
        response = client.post("/api/v1/campaigns", json=body, headers=brand.admin)
        error = response.get_json()["error"]
        answers[name] = (response.status_code, error.get("field"))
    assert answers == {name: (422, field) for name, (_, field) in INVALID_CAMPAIGNS.items()}
    assert client.get("/api/v1/campaigns", headers=brand.admin).get_json()["campaigns"] == []
    at_the_limits = create_campaign(client, brand, message="x" * 500, holdout_percent=50)
    assert at_the_limits["holdout_percent"] == 50


def test_another_brands_campaign_is_not_found(
    client: FlaskClient, brand: BrandKeys, other_shop: Shop
) -> None:
    theirs = create_campaign(client, other_shop.brand)
    campaign_id = theirs["id"]
    answers = [
        client.get(f"/api/v1/campaigns/{campaign_id}", headers=brand.admin).status_code,
        client.get(f"/api/v1/campaigns/{campaign_id}/report", headers=brand.admin).status_code,
        client.post(f"/api/v1/campaigns/{campaign_id}/cancel", headers=brand.admin).status_code,
        client.post(f"/api/v1/campaigns/{campaign_id}/schedule", headers=brand.admin).status_code,
    ]
    assert answers == [404, 404, 404, 404]
    assert client.get("/api/v1/campaigns", headers=brand.admin).get_json()["campaigns"] == []
    other_program = {"program_id": other_shop.brand.program_id}
    refused = client.post(
        "/api/v1/campaigns",
        json={"name": "x", "message": "y", "segment": {"preset": "all"}, **other_program},
        headers=brand.admin,
    )
    assert refused.status_code == 404
    assert show_campaign(client, other_shop.brand, campaign_id)["status"] == "scheduled"


def test_a_cashier_key_may_not_touch_campaigns(client: FlaskClient, brand: BrandKeys) -> None:
    campaign = create_campaign(client, brand, draft=True)
    body = {"name": "x", "message": "y", "segment": {"preset": "all"}}
    answers = [
        client.post("/api/v1/campaigns", json=body, headers=brand.cashier).status_code,
        client.get("/api/v1/campaigns", headers=brand.cashier).status_code,
        client.get(f"/api/v1/campaigns/{campaign['id']}", headers=brand.cashier).status_code,
        client.post(
            f"/api/v1/campaigns/{campaign['id']}/cancel", headers=brand.cashier
        ).status_code,
        client.post(
            f"/api/v1/campaigns/{campaign['id']}/schedule", headers=brand.cashier
        ).status_code,
        client.get(f"/api/v1/campaigns/{campaign['id']}/report", headers=brand.cashier).status_code,
    ]
    assert answers == [403] * 6


def _assert_everyone_once(shop: Shop, campaign_id: int, members: dict[int, str]) -> None:
    recipients = recipients_of(shop, campaign_id)
    assert [m for m, _ in recipients] == sorted(members)
    with shop.svc.db.transaction() as session:
        logs = (
            session.execute(
                select(MessageLog.member_id, func.count())
                .where(MessageLog.source == "campaign", MessageLog.source_id == campaign_id)
                .group_by(MessageLog.member_id)
            )
            .tuples()
            .all()
        )
        campaign = session.get_one(Campaign, campaign_id)
        assert (campaign.status, campaign.cursor_member_id) == ("sent", max(members))
    assert dict(logs) == {m: 1 for m in members}
    assert campaign_rows(shop, campaign_id) == sorted(f"apns:{t}" for t in members.values())


def test_two_workers_racing_on_one_campaign_reach_each_member_once(
    client: FlaskClient,
    brand: BrandKeys,
    shop: Shop,
    clock: FrozenClock,
    apns: ApnsFakeServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(service, "CHUNK", 3)
    members = audience(shop, 30)
    campaign = create_campaign(client, brand)
    start = threading.Barrier(2)
    lock = threading.Lock()
    failures: list[BaseException] = []
    chunks: dict[str, int] = {}

    def work(worker_id: str) -> None:
        held: set[int] = set()
        done = 0
        try:
            start.wait()
            for _ in range(200):
                done += campaign_step(shop.svc, worker_id, held, max_chunks=1)
                # Let the lease run out after every step so the other worker can take over
                # mid-campaign while this one may still believe it holds the campaign.
                with lock:
                    clock.advance(seconds=service.LEASE.total_seconds() + 1)
                if shop.count(Campaign, Campaign.status == "sent") == 1 and not held:
                    break
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failures.append(exc)
        chunks[worker_id] = done

    threads = [threading.Thread(target=work, args=(w,)) for w in ("worker-a", "worker-b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    assert sum(chunks.values()) == 10
    _assert_everyone_once(shop, campaign["id"], members)
    shop.deliver()
    assert pushed(apns) == sorted(members.values())


def test_a_worker_killed_mid_send_is_replaced_after_its_lease(
    client: FlaskClient,
    brand: BrandKeys,
    shop: Shop,
    clock: FrozenClock,
    apns: ApnsFakeServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(service, "CHUNK", 3)
    members = audience(shop, 10)
    campaign = create_campaign(client, brand)
    held_by_a: set[int] = set()
    assert campaign_step(shop.svc, "worker-a", held_by_a, max_chunks=2) == 2
    # Worker A is killed here. Until its lease runs out nobody else touches the campaign.
    held_by_b: set[int] = set()
    clock.advance(seconds=service.LEASE.total_seconds() - 1)
    assert campaign_step(shop.svc, "worker-b", held_by_b) == 0
    assert len(recipients_of(shop, campaign["id"])) == 6
    clock.advance(seconds=2)
    assert campaign_step(shop.svc, "worker-b", held_by_b) == 2
    assert held_by_b == set()
    # Were A only frozen, not dead, waking up must not write anything.
    assert campaign_step(shop.svc, "worker-a", held_by_a) == 0
    assert held_by_a == set()
    _assert_everyone_once(shop, campaign["id"], members)
    shop.deliver()
    assert pushed(apns) == sorted(members.values())


def test_a_campaigns_passes_are_signed_before_their_pushes_go_out(
    client: FlaskClient, brand: BrandKeys, shop: Shop, apns: ApnsFakeServer
) -> None:
    members = audience(shop, 3)
    create_campaign(client, brand)
    assert shop.fan_out() == 1
    assert stored_tags(shop, members) == {}  # changed by the fan-out, not signed yet
    assert shop.deliver() == 3
    assert pushed(apns) == sorted(members.values())
    # Each card's pass is stored at the tag the push announced: the fetches read stored bytes.
    with shop.svc.db.transaction() as session:
        current = dict(
            session.execute(
                select(Card.member_id, Card.update_tag).where(Card.member_id.in_(members))
            )
            .tuples()
            .all()
        )
    assert stored_tags(shop, members) == {m: int(tag) for m, tag in current.items()}


def stored_tags(shop: Shop, members: dict[int, str]) -> dict[int, int]:
    """member id -> the tag of the pass stored for their card, where it is the card's current."""
    with shop.svc.db.transaction() as session:
        rows = session.execute(
            select(Card.member_id, PassPackage.update_tag)
            .join(PassPackage, PassPackage.card_id == Card.id)
            .where(Card.member_id.in_(members), PassPackage.update_tag == Card.update_tag)
        ).tuples()
        return {int(m): int(tag) for m, tag in rows}
