"""Automations: each kind reaches the right members once, within consent, caps and quiet hours."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.factories import BrandKeys, FrozenClock
from tests.fakes.apns_server import ApnsFakeServer
from tests.integration.campaigns.conftest import Shop, create_campaign, push_token, with_apns
from walletd.campaigns import automations
from walletd.config import Settings
from walletd.jobs import run_automations
from walletd.models import Card, MessageLog


@pytest.fixture
def settings(settings: Settings, apns: ApnsFakeServer) -> Settings:
    """Deliveries go to the APNs fake."""
    return with_apns(settings, apns)


def enable(client: FlaskClient, brand: BrandKeys, kind: str, **changes: Any) -> dict[str, Any]:
    """Switch an automation on through the API."""
    response = client.put(
        f"/api/v1/programs/{brand.program_id}/automations/{kind}",
        json={"enabled": True, **changes},
        headers=brand.admin,
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()  # type: ignore[no-any-return]


def run(shop: Shop) -> dict[str, int]:
    """One scheduler pass over every enabled automation; the counts by kind and outcome."""
    with shop.svc.db.transaction() as session:
        return automations.run_automations(session, shop.ctx())


def card_messages(shop: Shop) -> dict[int, str]:
    """The message on each member's card, for members who have one."""
    with shop.svc.db.transaction() as session:
        rows = session.execute(
            select(Card.member_id, Card.message).where(Card.message.is_not(None))
        ).all()
    return {int(m): str(text) for m, text in rows}


def logged(shop: Shop, kind: str) -> dict[int, bool]:
    """Members an automation kind logged, and whether each was held out."""
    with shop.svc.db.transaction() as session:
        rows = session.execute(
            select(MessageLog.member_id, MessageLog.holdout).where(MessageLog.kind == kind)
        ).all()
    return {int(m): bool(h) for m, h in rows}


def test_automations_are_listed_switched_off_with_their_default_delays(
    client: FlaskClient, brand: BrandKeys, shop: Shop
) -> None:
    response = client.get(f"/api/v1/programs/{brand.program_id}/automations", headers=brand.admin)
    listed = {
        a["kind"]: (a["enabled"], a["delay_days"]) for a in response.get_json()["automations"]
    }
    assert listed == {
        "welcome": (False, 0), "birthday": (False, 0), "post_purchase": (False, 15),
        "win_back": (False, 30), "tier_upgrade": (False, 0), "points_expiring": (False, 14),
        "reward_near": (False, 0),
    }  # fmt: skip
    shop.enroll("Ann")
    assert run(shop) == {}


def test_welcome_greets_each_new_member_once_consent_or_not(
    client: FlaskClient, brand: BrandKeys, shop: Shop, apns: ApnsFakeServer
) -> None:
    enable(client, brand, "welcome")
    ann = shop.enroll("Ann Lee", consent=False)
    ben = shop.enroll("Ben", at=shop.days_ago(1))
    shop.enroll("Cat", at=shop.days_ago(3))
    shop.install_apple(ann, push_token(1))
    assert run_automations(shop.svc) == 2
    assert run_automations(shop.svc) == 0
    assert card_messages(shop) == {
        ann: "Welcome, Ann! Your card is ready: show it at the till to earn points.",
        ben: "Welcome, Ben! Your card is ready: show it at the till to earn points.",
    }
    assert logged(shop, "welcome") == {ann: False, ben: False}
    shop.deliver()
    assert [r.token for r in apns.requests] == [push_token(1)]


def test_birthday_greets_consenting_members_on_the_day_once(
    client: FlaskClient, brand: BrandKeys, shop: Shop
) -> None:
    enable(client, brand, "birthday")
    ann = shop.enroll("Ann", birthday=date(1990, 3, 10))
    shop.enroll("Ben", birthday=date(1991, 3, 10), consent=False)
    shop.enroll("Cat", birthday=date(1990, 3, 11))
    shop.enroll("Dan")
    assert run(shop)["birthday.sent"] == 1
    assert run(shop).get("birthday.sent", 0) == 0
    assert card_messages(shop) == {ann: "Happy birthday, Ann! A gift is waiting on your card."}


def test_post_purchase_thanks_come_the_set_number_of_days_after_a_visit(
    client: FlaskClient, brand: BrandKeys, shop: Shop, clock: FrozenClock
) -> None:
    enable(client, brand, "post_purchase")  # 15 days by default
    due = shop.enroll("Ann", at=shop.days_ago(30))
    shop.visit(due, "25", at=shop.days_ago(15.5))
    silent = shop.enroll("Ben", at=shop.days_ago(30), consent=False)
    shop.visit(silent, "25", at=shop.days_ago(15.5))
    for name, days in (("Cat", 14), ("Dan", 17)):
        shop.visit(shop.enroll(name, at=shop.days_ago(30)), "25", at=shop.days_ago(days))
    assert run(shop)["post_purchase.sent"] == 1
    assert run(shop).get("post_purchase.sent", 0) == 0
    messages = card_messages(shop)
    assert list(messages) == [due]
    # The care message links the signed page rating that visit (walletd.feedback).
    assert messages[due].startswith(
        "Thanks for your visit, Ann. How was it? You have 75 points. Rate your visit: "
    )
    assert "/feedback/" in messages[due]
    enable(client, brand, "post_purchase", delay_days=14)  # Cat's visit was 14 days ago
    assert run(shop)["post_purchase.sent"] == 1
    assert set(logged(shop, "post_purchase")) == {due, due + 2}


def test_win_back_waits_n_days_or_twice_a_regulars_usual_interval(
    client: FlaskClient, brand: BrandKeys, shop: Shop, clock: FrozenClock
) -> None:
    enable(client, brand, "win_back")  # 30 days by default

    def member(name: str, visits: tuple[float, ...], consent: bool = True) -> int:
        member_id = shop.enroll(name, at=shop.days_ago(60), consent=consent)
        for days in visits:
            shop.visit(member_id, "10", at=shop.days_ago(days))
        return member_id

    lapsed = member("Ann", (31,))
    occasional = member("Ben", (20,))
    regular = member("Rae", (43, 36, 29, 22, 15))  # weekly; twice that is 14 days
    recent = member("Sam", (38, 31, 24, 17, 10))
    member("Ned", (40,), consent=False)
    assert run(shop)["win_back.sent"] == 2
    assert run(shop).get("win_back.sent", 0) == 0
    assert set(logged(shop, "win_back")) == {lapsed, regular}
    # Rae comes back today (her usual interval is now 43 / 5 days), then stays away again:
    # a new absence, and a new message once it is twice that long.
    shop.visit(regular, "10", at=clock())
    clock.advance(days=17)
    assert run(shop)["win_back.sent"] == 2  # Ben (37 days) and Sam (27 > 14)
    clock.advance(days=1)
    assert run(shop)["win_back.sent"] == 1  # Rae (18 > 17.2)
    with shop.svc.db.transaction() as session:
        counts = dict(
            session.execute(
                select(MessageLog.member_id, func.count())
                .where(MessageLog.kind == "win_back")
                .group_by(MessageLog.member_id)
            )
            .tuples()
            .all()
        )
    assert counts == {lapsed: 1, occasional: 1, regular: 2, recent: 1}


def test_tier_upgrade_congratulates_once_per_tier_reached(
    client: FlaskClient, brand: BrandKeys, shop: Shop, clock: FrozenClock
) -> None:
    enable(client, brand, "tier_upgrade")
    climber = shop.enroll("Ann", consent=False)
    shop.visit(climber, "600", at=clock())
    shop.visit(shop.enroll("Ben"), "20", at=clock())
    assert run(shop)["tier_upgrade.sent"] == 1
    assert run(shop).get("tier_upgrade.sent", 0) == 0
    assert card_messages(shop) == {climber: "Congratulations, Ann: you are now Gold!"}
    clock.advance(days=1)
    shop.visit(climber, "1500", at=clock())
    assert run(shop)["tier_upgrade.sent"] == 1
    assert card_messages(shop)[climber] == "Congratulations, Ann: you are now VIP!"


def test_points_expiring_within_fourteen_days_are_announced_once(
    client: FlaskClient, brand: BrandKeys, shop: Shop
) -> None:
    enable(client, brand, "points_expiring")
    # Points expire twelve months after they are earned.
    soon = shop.enroll("Ann", at=datetime(2025, 3, 15, 12, tzinfo=UTC))
    shop.visit(soon, "80", at=datetime(2025, 3, 20, 12, tzinfo=UTC))
    shop.enroll("Ben", at=datetime(2025, 4, 10, 12, tzinfo=UTC))
    shop.enroll("Cat", at=datetime(2025, 3, 1, 12, tzinfo=UTC))  # already past expiry
    assert run(shop)["points_expiring.sent"] == 1
    assert run(shop).get("points_expiring.sent", 0) == 0
    assert card_messages(shop) == {soon: "130 of your points expire on 2026-03-15. Use them soon!"}


def test_one_reward_away_nudges_consenting_members_just_short_of_the_cheapest_reward(
    client: FlaskClient, brand: BrandKeys, shop: Shop, clock: FrozenClock
) -> None:
    enable(client, brand, "reward_near")
    # The cheapest reward costs 150 points; everyone starts with a 50-point welcome bonus.
    close = shop.enroll("Ann")
    shop.visit(close, "80", at=clock())
    for name, amount, consent in (("Ben", "110", True), ("Cat", "60", True), ("Dan", "80", False)):
        shop.visit(shop.enroll(name, consent=consent), amount, at=clock())
    assert run(shop)["reward_near.sent"] == 1
    assert run(shop).get("reward_near.sent", 0) == 0
    assert card_messages(shop) == {close: "Only 20 points to go until Free coffee!"}


def test_the_weekly_cap_counts_campaigns_and_automations_together(
    client: FlaskClient, brand: BrandKeys, shop: Shop, clock: FrozenClock
) -> None:
    shop.set_program(messages_per_week_cap=2)
    ann = shop.enroll("Ann", birthday=date(1990, 3, 12))
    shop.install_apple(ann, push_token(1))
    create_campaign(client, brand)
    shop.fan_out()
    clock.advance(days=2)  # Ann's birthday, and she is one reward away after today's visit
    shop.visit(ann, "80", at=clock())
    enable(client, brand, "birthday")
    enable(client, brand, "reward_near")
    totals = run(shop)
    assert totals.get("birthday.sent", 0) + totals.get("reward_near.sent", 0) == 1
    assert totals.get("birthday.frequency_cap", 0) + totals.get("reward_near.frequency_cap", 0) == 1
    clock.advance(days=6)
    assert run(shop).get("reward_near.sent", 0) == 0  # that reward nudge was for last visit's day


def test_marketing_automations_wait_for_the_end_of_quiet_hours(
    client: FlaskClient, brand: BrandKeys, shop: Shop, clock: FrozenClock
) -> None:
    enable(client, brand, "win_back")
    lapsed = shop.enroll("Ann", at=shop.days_ago(60))
    shop.visit(lapsed, "10", at=shop.days_ago(40))
    clock.now = datetime(2026, 3, 10, 22, 30, tzinfo=UTC)
    assert run(shop) == {"win_back.deferred": 1}
    assert logged(shop, "win_back") == {}
    clock.now = datetime(2026, 3, 11, 9, 0, tzinfo=UTC)
    assert run(shop)["win_back.sent"] == 1


def test_service_automations_also_wait_for_the_end_of_quiet_hours(
    client: FlaskClient, brand: BrandKeys, shop: Shop, clock: FrozenClock
) -> None:
    enable(client, brand, "welcome")
    clock.now = datetime(2026, 3, 10, 23, 0, tzinfo=UTC)
    shop.enroll("Night Owl")
    assert run(shop) == {"welcome.deferred": 1}
    assert logged(shop, "welcome") == {}
    clock.now = datetime(2026, 3, 11, 9, 5, tzinfo=UTC)
    assert run(shop)["welcome.sent"] == 1


def test_held_out_members_are_logged_but_get_no_message(
    client: FlaskClient, brand: BrandKeys, shop: Shop, apns: ApnsFakeServer
) -> None:
    enable(client, brand, "welcome", holdout_percent=50)
    tokens = [push_token(i) for i in range(20)]
    members = shop.enroll_many([f"Member {i}" for i in range(20)], tokens=tokens)
    token_of = dict(zip(members, tokens, strict=True))
    totals = run(shop)
    groups = logged(shop, "welcome")
    held = {m for m, holdout in groups.items() if holdout}
    assert set(groups) == set(members)
    assert 0 < len(held) < 20
    assert (totals["welcome.sent"], totals["welcome.holdout"]) == (20 - len(held), len(held))
    assert set(card_messages(shop)) == set(members) - held
    assert run(shop).get("welcome.sent", 0) == 0
    shop.deliver()
    assert sorted(r.token or "" for r in apns.requests) == sorted(
        token_of[m] for m in members if m not in held
    )


def test_an_automation_reaches_members_beyond_its_first_batch(
    client: FlaskClient, brand: BrandKeys, shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(automations, "CHUNK", 2)  # 2 messages a run, 8 candidates a page
    enable(client, brand, "welcome")
    enable(client, brand, "post_purchase", delay_days=1)
    welcomed = shop.enroll_many([f"New {i}" for i in range(10)])
    # Nine visitors without consent come before the one who may be thanked.
    for i in range(9):
        shop.visit(shop.enroll(f"Quiet {i}", consent=False), "5", at=shop.days_ago(1.5))
    thanked = shop.enroll("Ann")
    shop.visit(thanked, "5", at=shop.days_ago(1.5))
    for _ in range(10):
        if run(shop).get("welcome.sent", 0) == 0:
            break
    assert set(logged(shop, "welcome")) == {*welcomed, *range(welcomed[-1] + 1, thanked + 1)}
    assert set(logged(shop, "post_purchase")) == {thanked}


def test_automation_settings_are_validated(
    client: FlaskClient, brand: BrandKeys, other_shop: Shop
) -> None:
    base = f"/api/v1/programs/{brand.program_id}/automations"
    cases: list[tuple[str, dict[str, Any], int]] = [
        (f"{base}/welcome", {"enabled": "yes"}, 422),
        (f"{base}/welcome", {"enabled": True, "delay_days": 366}, 422),
        (f"{base}/welcome", {"enabled": True, "holdout_percent": 51}, 422),
        (f"{base}/welcome", {"enabled": True, "message": "Hi {nickname}"}, 422),
        (f"{base}/welcome", {"enabled": True, "message": "x" * 501}, 422),
        (f"{base}/anniversary", {"enabled": True}, 404),
        (f"/api/v1/programs/{other_shop.brand.program_id}/automations/welcome",
         {"enabled": True}, 404),
    ]  # fmt: skip
    answers = [
        client.put(path, json=body, headers=brand.admin).status_code for path, body, _ in cases
    ]
    assert answers == [status for _, _, status in cases]
    cashier = client.put(f"{base}/welcome", json={"enabled": True}, headers=brand.cashier)
    assert cashier.status_code == 403
