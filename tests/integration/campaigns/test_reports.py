"""Reports: summary figures and message lift on histories whose answers are worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select

from tests.factories import BrandKeys, FrozenClock
from tests.integration.campaigns.conftest import Shop, create_campaign, push_token
from walletd.campaigns.automations import run_automations
from walletd.models import CampaignRecipient, MessageLog


def at(day: int, hour: int = 12, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def summary(client: FlaskClient, brand: BrandKeys, start: str, end: str) -> dict[str, Any]:
    response = client.get(
        "/api/v1/reports/summary", query_string={"from": start, "to": end}, headers=brand.admin
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()  # type: ignore[no-any-return]


def test_summary_counts_members_activity_returning_spend_and_installed_cards(
    client: FlaskClient, brand: BrandKeys, shop: Shop, other_shop: Shop
) -> None:
    # Period 2026-03-01 .. 2026-03-09 (whole UTC days).
    m1 = shop.enroll("One", at=at(1, month=1))
    for when, amount in ((at(5, month=1), "10"), (at(2), "20"), (at(5), "30")):
        shop.visit(m1, amount, at=when)
    m2 = shop.enroll("Two", at=at(1, hour=10))
    shop.visit(m2, "40", at=at(3))  # first visit ever: new
    shop.visit(m2, "60", at=at(4))  # returning
    m3 = shop.enroll("Three", at=at(2))
    shop.visit(m3, "50", at=at(6))  # new
    m4 = shop.enroll("Four", at=at(1, month=2))
    shop.enroll("Five", at=at(9, hour=23))
    late = shop.enroll("Six", at=at(10, hour=9))  # after the period
    shop.visit(late, "99", at=at(10, hour=10))
    shop.install_apple(m1, push_token(1))
    shop.install_apple(m1, push_token(2))  # two devices, one card
    shop.install_apple(m2, push_token(3))
    shop.save_google(m3, at=at(6))
    shop.save_google(m4, at=at(6), deleted_at=at(7))
    rival = other_shop.enroll("Rival", at=at(1))
    for day in (2, 3, 4):
        other_shop.visit(rival, "500", at=at(day))
    other_shop.install_apple(rival, push_token(99))

    report = summary(client, brand, "2026-03-01", "2026-03-09")
    assert {k: v for k, v in report.items() if k != "messages"} == {
        "from": "2026-03-01",
        "to": "2026-03-09",
        "currency": "USD",
        "members": 5,
        "new_members": 3,
        "active_members": 3,
        "repeat_customer_rate": 0.6667,  # One and Two have come twice or more; Three once
        "transactions": 5,
        "returning_share_of_transactions": 0.6,
        "revenue": "200.00",
        "revenue_from_returning": "110.00",
        "aov_new": "45.00",  # (40 + 50) / 2
        "aov_returning": "36.67",  # (20 + 30 + 60) / 3
        "cards_installed": {"apple": 2, "google": 1},
    }
    empty = summary(client, brand, "2025-06-01", "2025-06-30")
    assert (empty["members"], empty["active_members"], empty["transactions"]) == (0, 0, 0)
    assert (empty["repeat_customer_rate"], empty["aov_new"], empty["aov_returning"]) == (
        None, None, None,
    )  # fmt: skip


def test_a_summary_needs_a_proper_period(client: FlaskClient, brand: BrandKeys) -> None:
    cases: list[tuple[dict[str, str], str]] = [
        ({"to": "2026-03-09"}, "from"),
        ({"from": "2026-03-01"}, "to"),
        ({"from": "2026-3-1", "to": "2026-03-09"}, "from"),
        ({"from": "2026-03-09", "to": "2026-03-01"}, "to"),
        ({"from": "2010-01-01", "to": "2026-03-09"}, "to"),
    ]
    answers = []
    for query, _ in cases:
        response = client.get("/api/v1/reports/summary", query_string=query, headers=brand.admin)
        answers.append((response.status_code, response.get_json()["error"]["field"]))
    assert answers == [(422, field) for _, field in cases]


def _groups(shop: Shop, campaign_id: int) -> dict[str, list[int]]:
    with shop.svc.db.transaction() as session:
        rows = session.execute(
            select(CampaignRecipient.member_id, CampaignRecipient.group).where(
                CampaignRecipient.campaign_id == campaign_id
            )
        ).all()
    groups: dict[str, list[int]] = {}
    for member_id, group in rows:
        groups.setdefault(str(group), []).append(int(member_id))
    return groups


def test_campaign_lift_compares_recipients_with_the_holdout_group(
    client: FlaskClient, brand: BrandKeys, shop: Shop, clock: FrozenClock
) -> None:
    members = shop.enroll_many(
        [f"Member {i}" for i in range(12)], tokens=[push_token(i) for i in range(12)]
    )
    for member_id in members:
        shop.visit(member_id, "99", at=shop.days_ago(1))  # before the campaign: not counted
    campaign = create_campaign(client, brand, holdout_percent=50, lift_window_days=14)
    shop.fan_out()
    groups = _groups(shop, campaign["id"])
    treated, control = groups["recipient"], groups["holdout"]
    assert treated and control and len(treated) + len(control) == 12
    sent = clock()

    def visits(member_ids: list[int], days: tuple[float, ...]) -> None:
        for member_id in member_ids:
            for day in days:
                shop.visit(member_id, "10", at=sent + timedelta(days=day))

    # Within the 14-day window recipients come 3 times, held-out members twice; everyone comes
    # once more after the window, which must not count.
    visits(treated, (1, 5, 13.9, 20))
    visits(control, (2, 6, 20))
    clock.advance(days=21)
    response = client.get(f"/api/v1/campaigns/{campaign['id']}/report", headers=brand.admin)
    assert response.status_code == 200
    lift = response.get_json()["lift"]
    assert lift == {
        "window_days": 14,
        "recipients": {"members": len(treated), "returned": len(treated), "return_rate": 1.0,
                       "visits_per_member": 3.0, "spend_per_member": "30.00",
                       "coupon_redemptions": 0, "redemptions_per_member": 0.0},
        "holdout": {"members": len(control), "returned": len(control), "return_rate": 1.0,
                    "visits_per_member": 2.0, "spend_per_member": "20.00",
                    "coupon_redemptions": 0, "redemptions_per_member": 0.0},
        "visit_lift": 0.5,
        "spend_lift": 0.5,
        "extra_visits": float(len(treated)),
        # Every member has the card installed: one channel, the wallet.
        "by_channel": {"wallet": {"members": len(treated), "returned": len(treated),
                                  "holdout_members": len(control),
                                  "holdout_returned": len(control)}},
    }  # fmt: skip
    report = summary(client, brand, "2026-03-10", "2026-03-10")
    assert report["messages"]["campaigns"] == [
        {"id": campaign["id"], "name": "Spring promo", "sent": len(treated), "lift": lift}
    ]


def test_automation_lift_is_reported_with_the_messages_it_sent(
    client: FlaskClient, brand: BrandKeys, shop: Shop, clock: FrozenClock
) -> None:
    response = client.put(
        f"/api/v1/programs/{brand.program_id}/automations/welcome",
        json={"enabled": True, "holdout_percent": 50},
        headers=brand.admin,
    )
    assert response.status_code == 200
    automation_id = response.get_json()["id"]
    members = shop.enroll_many([f"Member {i}" for i in range(12)])
    clock.advance(minutes=5)
    with shop.svc.db.transaction() as session:
        run_automations(session, shop.ctx())
        held = set(session.scalars(select(MessageLog.member_id).where(MessageLog.holdout)).all())
    welcomed = [m for m in members if m not in held]
    assert welcomed and held
    for member_id in members:
        shop.visit(member_id, "12.50", at=clock() + timedelta(days=3))
    for member_id in welcomed:
        shop.visit(member_id, "12.50", at=clock() + timedelta(days=4))
    report = summary(client, brand, "2026-03-01", "2026-03-31")
    [entry] = report["messages"]["automations"]
    assert (entry["id"], entry["kind"], entry["sent"]) == (automation_id, "welcome", len(welcomed))
    assert entry["lift"]["recipients"]["visits_per_member"] == 2.0
    assert entry["lift"]["recipients"]["spend_per_member"] == "25.00"
    assert entry["lift"]["holdout"]["visits_per_member"] == 1.0
    assert (entry["lift"]["visit_lift"], entry["lift"]["spend_lift"]) == (1.0, 1.0)


def test_campaign_lift_counts_coupons_redeemed_in_the_window(
    client: FlaskClient, brand: BrandKeys, shop: Shop, clock: FrozenClock
) -> None:
    offer = client.post(
        "/api/v1/offers",
        json={"name": "Come back", "kind": "amount_off", "value": "2"},
        headers=brand.admin,
    ).get_json()
    members = shop.enroll_many(
        [f"Member {i}" for i in range(10)], tokens=[push_token(i) for i in range(10)]
    )
    barcodes: dict[int, str] = {}
    for member_id in members:
        issued = client.post(
            f"/api/v1/offers/{offer['id']}/issue", json={"member_id": member_id},
            headers=brand.admin,
        ).get_json()  # fmt: skip
        barcodes[member_id] = issued["coupon"]["barcode"]
    campaign = create_campaign(client, brand, holdout_percent=50, lift_window_days=7)
    shop.fan_out()
    groups = _groups(shop, campaign["id"])
    treated, control = groups["recipient"], groups["holdout"]

    def redeem(member_id: int, key: str) -> None:
        response = client.post(
            "/api/v1/coupons/redemptions", json={"barcode": barcodes[member_id], "amount": "9"},
            headers={**brand.cashier, "Idempotency-Key": key},
        )  # fmt: skip
        assert response.status_code == 201, response.get_data(as_text=True)

    clock.advance(days=2)
    for member_id in treated:  # every recipient redeems within the window
        redeem(member_id, f"t{member_id}")
    clock.advance(days=6)  # day 8: past the 7-day window
    redeem(control[0], "late")
    lift = client.get(f"/api/v1/campaigns/{campaign['id']}/report", headers=brand.admin)
    body = lift.get_json()["lift"]
    assert body["recipients"]["coupon_redemptions"] == len(treated)
    assert body["recipients"]["redemptions_per_member"] == 1.0
    assert body["holdout"]["coupon_redemptions"] == 0  # the late one is outside the window


def test_a_campaign_with_an_offer_gives_each_recipient_one_coupon_and_the_holdout_none(
    client: FlaskClient, brand: BrandKeys, shop: Shop, clock: FrozenClock
) -> None:
    from walletd.models import Coupon

    offer = client.post(
        "/api/v1/offers",
        json={"name": "Weekend treat", "kind": "percent_off", "value": "15"},
        headers=brand.admin,
    ).get_json()
    shop.enroll_many([f"Member {i}" for i in range(10)], tokens=[push_token(i) for i in range(10)])
    for bad in (offer["id"] + 100, "1", True, 0):
        refused = client.post(
            "/api/v1/campaigns", headers=brand.admin,
            json={"name": "x", "message": "y", "segment": {"preset": "all"}, "offer_id": bad},
        )  # fmt: skip
        assert refused.status_code == 422, bad
        assert refused.get_json()["error"]["field"] == "offer_id"
    campaign = create_campaign(client, brand, holdout_percent=50, offer_id=offer["id"])
    assert campaign["offer_id"] == offer["id"]
    shop.fan_out()
    shop.fan_out()  # nothing more: one coupon per member per campaign
    groups = _groups(shop, campaign["id"])
    with shop.svc.db.sessions() as session:
        holders = sorted(
            session.scalars(
                select(Coupon.member_id).where(Coupon.occasion == f"campaign:{campaign['id']}")
            ).all()
        )
    assert holders == sorted(groups["recipient"])
