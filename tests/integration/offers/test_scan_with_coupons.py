"""A scan that redeems coupons in the same transaction, and answers the member's discount."""

from __future__ import annotations

import itertools
import re
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from tests.factories import BrandKeys, enroll, make_brand, scan, services_of
from tests.integration.pages.conftest import csrf_of, log_in, make_staff
from walletd.models import Coupon, LedgerEntry, Member, Offer, Tier
from walletd.offers.catalog import OfferInput, create_offer
from walletd.offers.coupons import issue_coupon

GENERATED = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
OCCASIONS = itertools.count()


def _offer(app: Flask, brand: BrandKeys, **fields: Any) -> int:
    svc = services_of(app)
    described: dict[str, Any] = {"name": "Ten off", "kind": "percent_off", "value": "10", **fields}
    with svc.db.transaction() as session:
        data = OfferInput(program_id=brand.program_id, **described)
        return create_offer(session, brand.brand_id, data, svc.context()).id


def _coupon(app: Flask, offer_id: int, member_id: int) -> str:
    svc = services_of(app)
    with svc.db.transaction() as session:
        coupon = issue_coupon(
            session, session.get_one(Offer, offer_id), session.get_one(Member, member_id),
            source="manual", occasion=f"manual:{next(OCCASIONS)}", ctx=svc.context(),
        )  # fmt: skip
        assert coupon is not None
        return coupon.barcode


def _state(app: Flask, member_id: int) -> tuple[int, int, int, list[str]]:
    with services_of(app).db.transaction() as session:
        member = session.get_one(Member, member_id)
        entries = session.scalar(
            select(func.count()).select_from(LedgerEntry).where(LedgerEntry.member_id == member_id)
        )
        statuses = session.scalars(
            select(Coupon.status).where(Coupon.member_id == member_id).order_by(Coupon.id)
        ).all()
        return member.points, member.visits, entries or 0, list(statuses)


def test_scan_redeems_coupons_and_a_replay_answers_the_same(
    client: FlaskClient, app: Flask, brand: BrandKeys
) -> None:
    member = enroll(client, brand)
    percent = _coupon(app, _offer(app, brand), member["id"])
    bonus = _coupon(app, _offer(app, brand, kind="bonus_points", value="50"), member["id"])
    welcome = _state(app, member["id"])[0]
    # Listed out of issue order: the answer lists coupons by id, replay or not.
    first = scan(client, brand, member["card"]["barcode"], "20.00", "with-coupons",
                 coupons=[bonus, percent])  # fmt: skip
    assert first.status_code == 201, first.get_data(as_text=True)
    body = first.get_json()
    assert [c["kind"] for c in body["coupons"]] == ["percent_off", "bonus_points"]
    assert body["coupons"][0]["discount"] == "2.00"
    assert body["coupons"][1]["points_awarded"] == 50
    assert body["points_earned"] == 20 and body["balance"] == welcome + 70
    again = scan(client, brand, member["card"]["barcode"], "20.00", "with-coupons",
                 coupons=[bonus, percent])  # fmt: skip
    assert again.status_code == 200 and again.get_json() == body
    assert _state(app, member["id"])[3] == ["redeemed", "redeemed"]
    reused = scan(client, brand, member["card"]["barcode"], "20.00", "with-coupons",
                  coupons=[percent])  # fmt: skip
    assert reused.status_code == 409
    assert reused.get_json()["error"]["code"] == "idempotency_key_reused"


def test_a_refused_coupon_refuses_the_whole_scan(
    client: FlaskClient, app: Flask, brand: BrandKeys
) -> None:
    member = enroll(client, brand)
    barcode = member["card"]["barcode"]
    used = _coupon(app, _offer(app, brand), member["id"])
    fresh = _coupon(app, _offer(app, brand), member["id"])
    assert scan(client, brand, barcode, "5.00", "k1", coupons=[used]).status_code == 201
    before = _state(app, member["id"])
    again = scan(client, brand, barcode, "5.00", "k2", coupons=[fresh, used])
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "coupon_redeemed"
    assert _state(app, member["id"]) == before  # neither points, nor the visit, nor `fresh`
    minimum = _coupon(app, _offer(app, brand, min_spend="30"), member["id"])
    below = scan(client, brand, barcode, "5.00", "k3", coupons=[minimum])
    assert below.status_code == 422 and below.get_json()["error"]["code"] == "below_min_spend"
    someone = enroll(client, brand, name="Someone else")
    theirs = _coupon(app, _offer(app, brand), someone["id"])
    other_brand = make_brand(app, "Other")
    stranger = enroll(client, other_brand)
    foreign = _coupon(app, _offer(app, other_brand), stranger["id"])
    for barcodes in ([theirs], [foreign], ["WC1-NOT-A-COUPON"]):
        response = scan(client, brand, barcode, "5.00", f"k-{barcodes[0]}", coupons=barcodes)
        assert response.status_code == 404, response.get_data(as_text=True)
        assert response.get_json()["error"]["code"] == "unknown_coupon"
    assert _state(app, member["id"]) == (*before[:3], ["redeemed", "active", "active"])
    assert _state(app, someone["id"])[3] == ["active"]


def test_coupon_lists_are_bounded_and_without_duplicates(
    client: FlaskClient, app: Flask, brand: BrandKeys
) -> None:
    member = enroll(client, brand)
    barcode = member["card"]["barcode"]
    coupon = _coupon(app, _offer(app, brand), member["id"])
    assert scan(client, brand, barcode, "5.00", "d1", coupons=[coupon] * 11).status_code == 422
    twice = scan(client, brand, barcode, "5.00", "d2", coupons=[coupon, f" {coupon} "])
    assert twice.status_code == 422
    assert scan(client, brand, barcode, "5.00", "d3", coupons=[7]).status_code == 422
    assert scan(client, brand, barcode, "5.00", "d4", coupons="x").status_code == 422
    plain = scan(client, brand, barcode, "5.00", "d5", coupons=[])
    assert plain.status_code == 201 and plain.get_json()["coupons"] == []
    assert _state(app, member["id"])[3] == ["active"]


def test_scan_answers_the_member_discount_of_the_tier_walked_in_with(
    client: FlaskClient, app: Flask, brand: BrandKeys
) -> None:
    with services_of(app).db.transaction() as session:
        for tier in session.scalars(select(Tier).where(Tier.program_id == brand.program_id)):
            tier.member_discount_percent = {"Silver": Decimal("5"), "Gold": Decimal("12.5")}.get(
                tier.name, Decimal(0)
            )
    member = enroll(client, brand)
    first = scan(client, brand, member["card"]["barcode"], "600.00", "gold-1")
    assert first.get_json()["member_discount_percent"] == "5"
    assert first.get_json()["tier"] == "Gold"
    second = scan(client, brand, member["card"]["barcode"], "1.00", "gold-2")
    assert second.get_json()["member_discount_percent"] == "12.5"
    with services_of(app).db.transaction() as session:
        for tier in session.scalars(select(Tier).where(Tier.program_id == brand.program_id)):
            tier.member_discount_percent = Decimal(0)
    replay = scan(client, brand, member["card"]["barcode"], "1.00", "gold-2")
    assert replay.status_code == 200 and replay.get_json() == second.get_json()
    plain = scan(client, brand, member["card"]["barcode"], "1.00", "gold-3").get_json()
    assert plain["member_discount_percent"] == "0" and plain["stamps"] is None


@GENERATED
@given(
    held=st.integers(1, 4),
    picks=st.lists(st.integers(0, 3), max_size=4, unique=True),
    cents=st.integers(1, 100_000),
)
def test_each_listed_coupon_is_redeemed_exactly_once_with_its_scan(
    client: FlaskClient, app: Flask, held: int, picks: list[int], cents: int
) -> None:
    brand = make_brand(app, "Generated")
    member = enroll(client, brand)
    offer_id = _offer(app, brand, value="15")
    coupons = [_coupon(app, offer_id, member["id"]) for _ in range(held)]
    chosen = [coupons[i] for i in picks if i < held]
    amount = f"{cents / 100:.2f}"
    first = scan(client, brand, member["card"]["barcode"], amount, "gen", coupons=chosen)
    assert first.status_code == 201, first.get_data(as_text=True)
    body = first.get_json()
    expected = str((Decimal(cents) * 15 / 100).quantize(Decimal(1), "ROUND_HALF_UP").scaleb(-2))
    assert [c["discount"] for c in body["coupons"]] == [expected] * len(chosen)
    replay = scan(client, brand, member["card"]["barcode"], amount, "gen", coupons=chosen)
    assert replay.status_code == 200 and replay.get_json() == body
    statuses = _state(app, member["id"])[3]
    assert statuses.count("redeemed") == len(chosen) and len(statuses) == held
    if chosen:
        again = scan(client, brand, member["card"]["barcode"], amount, "gen-2", coupons=chosen)
        assert again.status_code == 409


@pytest.fixture
def editor(client: FlaskClient, app: Flask, brand: BrandKeys) -> FlaskClient:
    """A client logged in to the dashboard as the brand's admin."""
    log_in(client, make_staff(app, brand.brand_id, "owner@acme.example"))
    return client


def _program_form(client: FlaskClient, **changes: str) -> dict[str, str]:
    html = client.get("/dashboard/program").get_data(as_text=True)
    found = re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', html)
    form = {name: value for name, value in found if not name.endswith("-delete")}
    for name in re.findall(r'<input[^>]*type="checkbox"[^>]*name="([^"]+)"[^>]*checked', html):
        form[name] = "yes"
    form.update({"rounding": "floor", "tier_basis": "spend", "template": "default"})
    form.update(changes)
    form["csrf_token"] = csrf_of(client, "/dashboard/program")
    return form


@GENERATED
@given(
    percent=st.decimals(min_value=-5, max_value=120, places=3) | st.text(max_size=6),
    benefits=st.text(st.characters(codec="utf-8"), max_size=520)
    | st.sampled_from(["Free upsizing\r\nPriority line", "a\tb", "x" * 501]),
)
def test_member_prices_are_edited_in_the_program_editor_and_answered_by_the_scan(
    editor: FlaskClient, app: Flask, brand: BrandKeys, percent: Any, benefits: str
) -> None:
    dashboard = editor
    text = str(percent)
    form = _program_form(dashboard, **{"tier-0-discount": text, "tier-0-benefits": benefits})
    response = dashboard.post("/dashboard/program", data=form)
    try:
        number: Decimal | None = Decimal(text.strip() if text else "0")  # blank is no discount
    except ArithmeticError:
        number = None
    if any(ord(ch) < 32 and ch not in "\t\n\r" or 127 <= ord(ch) < 160 for ch in text + benefits):
        assert response.status_code == 400  # the pages refuse control characters first
        return
    cleaned = benefits.replace("\r\n", "\n").strip()
    good_percent = (
        number is not None
        and number.is_finite()
        and 0 <= number <= 100
        and int(number.as_tuple().exponent) >= -4
    )
    good_benefits = len(cleaned) <= 500 and all(line.isprintable() for line in cleaned.split("\n"))
    if not (good_percent and good_benefits):
        assert response.status_code == 422, (text, benefits)
        return
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    with services_of(app).db.transaction() as session:
        silver = session.get_one(Tier, int(form["tier-0-id"]))
        assert silver.member_discount_percent == number and silver.benefits == (cleaned or None)
    member = enroll(dashboard, brand)
    body = scan(dashboard, brand, member["card"]["barcode"], "1.00", f"mp-{next(OCCASIONS)}")
    assert number is not None and Decimal(body.get_json()["member_discount_percent"]) == number
    page = dashboard.get("/dashboard/program").get_data(as_text=True)
    assert 'name="tier-0-discount"' in page
