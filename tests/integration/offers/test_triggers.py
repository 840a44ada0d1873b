"""Automations carrying an offer: the birthday wish arrives with one birthday coupon a year."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from tests.factories import BrandKeys, FrozenClock, make_brand, services_of
from walletd.campaigns import automations
from walletd.loyalty.members import Enrollment, enroll_member
from walletd.models import Card, Coupon, Member, Offer, Tier
from walletd.services import Services


def make_offer(svc: Services, brand: BrandKeys, *, status: str = "active") -> int:
    """A free-coffee offer of the brand's program."""
    with svc.db.transaction() as session:
        offer = Offer(
            brand_id=brand.brand_id, program_id=brand.program_id, name="Birthday coffee",
            kind="free_item", item="Coffee", status=status, value=None,
        )  # fmt: skip
        session.add(offer)
        session.flush()
        return offer.id


def put_automation(
    client: FlaskClient, brand: BrandKeys, kind: str, **body: Any
) -> tuple[int, dict[str, Any]]:
    response = client.put(
        f"/api/v1/programs/{brand.program_id}/automations/{kind}",
        json={"enabled": True, **body},
        headers=brand.admin,
    )
    return response.status_code, response.get_json()


def enroll(svc: Services, brand: BrandKeys, name: str, birthday: date | None = None) -> int:
    with svc.db.transaction() as session:
        enrollment = Enrollment(name=name, marketing_consent=True, birthday=birthday)
        member, _ = enroll_member(session, brand.brand_id, enrollment, svc.context())
        return member.id


def run(svc: Services) -> dict[str, int]:
    with svc.db.transaction() as session:
        return automations.run_automations(session, svc.context())


def coupons_of(svc: Services, member_id: int) -> list[tuple[str, str]]:
    """(occasion, source) of a member's coupons, oldest first."""
    with svc.db.transaction() as session:
        rows = session.execute(
            select(Coupon.occasion, Coupon.source)
            .where(Coupon.member_id == member_id)
            .order_by(Coupon.id)
        ).all()
    return [(str(o), str(s)) for o, s in rows]


def test_the_birthday_message_arrives_with_one_birthday_coupon_a_year(
    app: Flask, client: FlaskClient, brand: BrandKeys, clock: FrozenClock
) -> None:
    svc = services_of(app)
    offer_id = make_offer(svc, brand)
    status, body = put_automation(client, brand, "birthday", offer_id=offer_id)
    assert status == 200, body
    assert body["offer_id"] == offer_id
    ann = enroll(svc, brand, "Ann", birthday=date(1990, 3, 10))
    cat = enroll(svc, brand, "Cat", birthday=date(1990, 3, 11))

    totals = run(svc)
    assert (totals["birthday.sent"], totals["birthday.coupons"]) == (1, 1)
    assert run(svc).get("birthday.coupons", 0) == 0
    assert coupons_of(svc, ann) == [("birthday:2026", "birthday")]
    assert coupons_of(svc, cat) == []
    with svc.db.transaction() as session:
        message = session.scalar(
            select(Card.message).where(Card.member_id == ann, Card.kind == "loyalty")
        )
    assert message == "Happy birthday, Ann! A gift is waiting on your card."

    clock.now = clock.now.replace(year=2027)
    assert run(svc)["birthday.coupons"] == 1
    assert run(svc).get("birthday.coupons", 0) == 0
    assert coupons_of(svc, ann) == [("birthday:2026", "birthday"), ("birthday:2027", "birthday")]

    # Taken off the automation (null), the next birthday brings the wish without a coupon.
    status, body = put_automation(client, brand, "birthday", offer_id=None)
    assert (status, body["offer_id"]) == (200, None)
    clock.now = clock.now.replace(year=2028)
    totals = run(svc)
    assert (totals["birthday.sent"], totals.get("birthday.coupons", 0)) == (1, 0)
    assert len(coupons_of(svc, ann)) == 2


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(gaps=st.lists(st.integers(min_value=0, max_value=2), min_size=1, max_size=6))
def test_any_pattern_of_runs_gives_one_birthday_coupon_per_year_run(
    app: Flask, client: FlaskClient, brand: BrandKeys, clock: FrozenClock, gaps: list[int]
) -> None:
    svc = services_of(app)
    with svc.db.transaction() as session:
        offer_id = session.scalar(select(Offer.id).where(Offer.brand_id == brand.brand_id))
    if offer_id is None:
        offer_id = make_offer(svc, brand)
        assert put_automation(client, brand, "birthday", offer_id=offer_id)[0] == 200
    member = enroll(svc, brand, "Ann", birthday=date(1990, 3, 10))
    years: set[int] = set()
    for gap in gaps:  # 0: run again the same day; n: n years later
        clock.now = clock.now.replace(year=clock.now.year + gap)
        run(svc)
        years.add(clock.now.year)
    assert sorted(coupons_of(svc, member)) == [(f"birthday:{y}", "birthday") for y in sorted(years)]


def test_the_welcome_automation_issues_its_offer_at_enrollment_once(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    svc = services_of(app)
    offer_id = make_offer(svc, brand)
    assert put_automation(client, brand, "welcome", offer_id=offer_id)[0] == 200
    ann = enroll(svc, brand, "Ann")
    assert run(svc)["welcome.coupons"] == 1
    assert run(svc).get("welcome.coupons", 0) == 0
    assert coupons_of(svc, ann) == [("welcome", "enrollment")]
    # Changing the message keeps the offer (offer_id left out).
    status, body = put_automation(client, brand, "welcome", message="Hi {name}!")
    assert (status, body["offer_id"]) == (200, offer_id)


def test_tier_upgrade_issues_its_offer_once_per_tier(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    svc = services_of(app)
    offer_id = make_offer(svc, brand)
    assert put_automation(client, brand, "tier_upgrade", offer_id=offer_id)[0] == 200
    ann = enroll(svc, brand, "Ann")
    with svc.db.transaction() as session:
        tier = session.scalars(
            select(Tier).where(Tier.program_id == brand.program_id, Tier.threshold > 0)
        ).first()
        assert tier is not None
        name = tier.name
        session.execute(
            update(Member)
            .where(Member.id == ann)
            .values(tier_id=tier.id, last_visit_at=svc.clock())
        )
    assert run(svc)["tier_upgrade.coupons"] == 1
    assert run(svc).get("tier_upgrade.coupons", 0) == 0
    assert coupons_of(svc, ann) == [(f"tier:{name}", "tier_upgrade")]


def test_an_automation_takes_only_an_active_offer_of_its_own_program(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    svc = services_of(app)
    archived = make_offer(svc, brand, status="archived")
    theirs = make_offer(svc, make_brand(app, "Rival Roasters"))
    ours = make_offer(svc, brand)
    for offer_id in (archived, theirs, 2**31 - 1):
        status, body = put_automation(client, brand, "birthday", offer_id=offer_id)
        assert status == 422, body
    for bad in ("1", 1.5, True, 0, -3, 2**31):
        status, body = put_automation(client, brand, "birthday", offer_id=bad)
        assert status == 422, body
    # Kinds that have no occasion to issue for take no offer.
    status, body = put_automation(client, brand, "points_expiring", offer_id=ours)
    assert status == 422, body
    status, body = put_automation(client, brand, "birthday", offer_id=ours)
    assert (status, body["offer_id"]) == (200, ours)


def test_an_offer_archived_after_it_was_attached_issues_nothing(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    svc = services_of(app)
    offer_id = make_offer(svc, brand)
    assert put_automation(client, brand, "birthday", offer_id=offer_id)[0] == 200
    with svc.db.transaction() as session:
        session.execute(update(Offer).where(Offer.id == offer_id).values(status="archived"))
    ann = enroll(svc, brand, "Ann", birthday=date(1990, 3, 10))
    totals = run(svc)
    assert (totals["birthday.sent"], totals.get("birthday.coupons", 0)) == (1, 0)
    assert coupons_of(svc, ann) == []
