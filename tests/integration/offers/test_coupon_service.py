"""Coupons through the service layer: issue once per occasion, redeem once, expire, scan."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tests.factories import BrandKeys, FrozenClock, enroll, services_of, sql_statements
from walletd.errors import (
    CouponExpiredError,
    CouponRedeemedError,
    CouponVoidError,
    IdempotencyConflictError,
    UnknownCouponError,
    ValidationError,
)
from walletd.loyalty.barcodes import make_barcode
from walletd.loyalty.ledger import Actor
from walletd.models import Card, Coupon, Member
from walletd.offers.catalog import OfferInput, check_value, create_offer
from walletd.offers.codes import (
    coupon_serial_from_barcode,
    make_coupon_barcode,
    new_coupon_code,
)
from walletd.offers.coupons import (
    coupons_of_scan,
    expire_due_coupons,
    issue_coupon,
    list_member_coupons,
    redeem_coupon,
    redeem_coupons_in_scan,
    void_coupon,
)


def _offer(app: Flask, brand: BrandKeys, **fields: Any) -> int:
    svc = services_of(app)
    described: dict[str, Any] = {"name": "Ten off", "kind": "percent_off", "value": "10", **fields}
    data = OfferInput(program_id=brand.program_id, **described)
    with svc.db.transaction() as session:
        return create_offer(session, brand.brand_id, data, svc.context()).id


def _issue(app: Flask, offer_id: int, member_id: int, occasion: str = "manual:1") -> Coupon | None:
    svc = services_of(app)
    from walletd.models import Offer

    with svc.db.transaction() as session:
        offer = session.get_one(Offer, offer_id)
        member = session.get_one(Member, member_id)
        coupon = issue_coupon(session, offer, member, source="manual", occasion=occasion,
                              ctx=svc.context())  # fmt: skip
        if coupon is not None:
            session.expunge(coupon)
        return coupon


def test_codes_round_trip_and_refuse_card_barcodes() -> None:
    barcode = make_coupon_barcode("ABC123", "k1")
    assert coupon_serial_from_barcode(barcode, "k1") == "ABC123"
    assert coupon_serial_from_barcode(barcode.lower(), ["k0", "k1"]) == "ABC123"
    assert coupon_serial_from_barcode(barcode, "k2") is None
    # A loyalty card's barcode with the same serial and key is not a coupon.
    assert coupon_serial_from_barcode(make_barcode("ABC123", "k1"), "k1") is None
    assert len(new_coupon_code()) == 10


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=200), st.binary().map(repr), st.integers(), st.none()))
def test_barcode_parser_never_raises_and_never_accepts_noise(text: object) -> None:
    assert coupon_serial_from_barcode(text, ("k1", "k2")) is None


def test_issue_is_once_per_occasion_and_touches_both_cards(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    member = enroll(client, brand)
    offer_id = _offer(app, brand, valid_days=30)
    first = _issue(app, offer_id, member["id"])
    assert first is not None and first.status == "active" and first.value == Decimal("10")
    assert _issue(app, offer_id, member["id"]) is None
    svc = services_of(app)
    with svc.db.transaction() as session:
        card = session.get_one(Card, first.card_id)
        assert card.kind == "coupon" and card.barcode == first.barcode
        assert first.expires_at == svc.clock() + timedelta(days=30)
        coupons = list_member_coupons(session, brand.brand_id, member["id"])
        assert [c.id for c in coupons] == [first.id]
        loyalty = session.scalars(
            select(Card).where(Card.member_id == member["id"], Card.kind == "loyalty")
        ).one()
        assert loyalty.update_tag > 0 and card.update_tag > 0


def test_per_member_limit(app: Flask, client: FlaskClient, brand: BrandKeys) -> None:
    member = enroll(client, brand)
    offer_id = _offer(app, brand, per_member_limit=2)
    assert _issue(app, offer_id, member["id"], "a") is not None
    assert _issue(app, offer_id, member["id"], "b") is not None
    assert _issue(app, offer_id, member["id"], "c") is None


def test_redeem_once_replay_and_conflicts(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    member = enroll(client, brand)
    coupon = _issue(app, _offer(app, brand), member["id"])
    assert coupon is not None
    svc = services_of(app)
    actor = Actor(brand.brand_id)
    with svc.db.transaction() as session:
        out = redeem_coupon(session, actor, barcode=coupon.barcode, amount="33.35",
                            idempotency_key="k1", ctx=svc.context())  # fmt: skip
    assert out.body == {"coupon_id": coupon.id, "member_id": member["id"],
                        "kind": "percent_off", "discount": "3.34"}  # fmt: skip
    with svc.db.transaction() as session:
        again = redeem_coupon(session, actor, barcode=coupon.barcode, amount="33.35",
                              idempotency_key="k1", ctx=svc.context())  # fmt: skip
    assert again.replayed and again.body == out.body
    with pytest.raises(IdempotencyConflictError), svc.db.transaction() as session:
        redeem_coupon(session, actor, barcode=coupon.barcode, amount="40",
                      idempotency_key="k1", ctx=svc.context())  # fmt: skip
    with pytest.raises(CouponRedeemedError), svc.db.transaction() as session:
        redeem_coupon(session, actor, barcode=coupon.barcode, amount="33.35",
                      idempotency_key="k2", ctx=svc.context())  # fmt: skip
    with pytest.raises(UnknownCouponError), svc.db.transaction() as session:
        redeem_coupon(session, Actor(brand.brand_id + 1000), barcode=coupon.barcode,
                      amount="1", idempotency_key="k3", ctx=svc.context())  # fmt: skip


def test_expired_before_the_job_runs_and_after(
    app: Flask, client: FlaskClient, brand: BrandKeys, clock: FrozenClock
) -> None:
    member = enroll(client, brand)
    coupon = _issue(app, _offer(app, brand, kind="amount_off", value="5", valid_days=1),
                    member["id"])  # fmt: skip
    assert coupon is not None
    clock.advance(days=1)
    svc = services_of(app)
    with pytest.raises(CouponExpiredError), svc.db.transaction() as session:
        redeem_coupon(session, Actor(brand.brand_id), barcode=coupon.barcode, amount=None,
                      idempotency_key="k", ctx=svc.context())  # fmt: skip
    with svc.db.transaction() as session:
        assert expire_due_coupons(session, svc.context()) == 1
        assert session.get_one(Coupon, coupon.id).status == "expired"


def test_redeem_in_scan_and_rebuild(app: Flask, client: FlaskClient, brand: BrandKeys) -> None:
    member = enroll(client, brand)
    coupon = _issue(app, _offer(app, brand, kind="bonus_points", value="50"), member["id"])
    assert coupon is not None
    svc = services_of(app)
    with svc.db.transaction() as session:
        m = session.get_one(Member, member["id"])
        before = m.points
        bodies = redeem_coupons_in_scan(session, Actor(brand.brand_id), m, [coupon.barcode],
                                        1000, 4242, svc.context())  # fmt: skip
        assert bodies == [{"coupon_id": coupon.id, "member_id": m.id, "kind": "bonus_points",
                           "points_awarded": 50}]  # fmt: skip
        assert m.points == before + 50
    with svc.db.transaction() as session:
        assert coupons_of_scan(session, 4242) == bodies


def test_scan_redemption_refuses_another_members_coupon_and_duplicates(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    owner, other = enroll(client, brand), enroll(client, brand, name="Grace")
    offer_id = _offer(app, brand)
    coupon = _issue(app, offer_id, owner["id"])
    assert coupon is not None
    svc = services_of(app)
    actor = Actor(brand.brand_id)
    with pytest.raises(UnknownCouponError), svc.db.transaction() as session:
        stranger = session.get_one(Member, other["id"])
        redeem_coupons_in_scan(session, actor, stranger, [coupon.barcode], 1000, 1, svc.context())
    with pytest.raises(ValidationError), svc.db.transaction() as session:
        member = session.get_one(Member, owner["id"])
        redeem_coupons_in_scan(session, actor, member, [coupon.barcode, coupon.code], 1000, 1,
                               svc.context())  # fmt: skip


def test_void_and_expire_job_leave_redeemed_coupons_alone(
    app: Flask, client: FlaskClient, brand: BrandKeys, clock: FrozenClock
) -> None:
    member = enroll(client, brand)
    offer_id = _offer(app, brand, valid_days=2)
    kept, voided = (
        _issue(app, offer_id, member["id"], "a"),
        _issue(app, offer_id, member["id"], "b"),
    )
    assert kept is not None and voided is not None
    svc = services_of(app)
    with svc.db.transaction() as session:
        redeem_coupon(session, Actor(brand.brand_id), barcode=kept.barcode, amount="10",
                      idempotency_key="k", ctx=svc.context())  # fmt: skip
        assert void_coupon(session, brand.brand_id, voided.id, svc.context()).status == "void"
    with pytest.raises(CouponVoidError), svc.db.transaction() as session:
        redeem_coupon(session, Actor(brand.brand_id), barcode=voided.barcode, amount="10",
                      idempotency_key="k2", ctx=svc.context())  # fmt: skip
    clock.advance(days=3)
    with svc.db.transaction() as session:
        assert expire_due_coupons(session, svc.context()) == 0
        assert session.get_one(Coupon, kept.id).status == "redeemed"


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    kind=st.sampled_from(["percent_off", "amount_off", "bonus_points", "free_item"]),
    value=st.one_of(
        st.none(), st.integers(-10, 10**8).map(str), st.decimals(allow_nan=True).map(str),
        st.text(max_size=12),
    ),
)  # fmt: skip
def test_offer_values_are_accepted_only_within_their_kinds_bounds(
    kind: str, value: str | None
) -> None:
    try:
        checked = check_value(kind, value, "USD")
    except ValidationError as exc:
        assert exc.field == "value"
        return
    if kind == "free_item":
        assert checked is None
        return
    assert checked is not None and checked.is_finite()
    if kind == "percent_off":
        assert Decimal(0) < checked <= Decimal(100)
    elif kind == "amount_off":
        assert checked > 0 and checked == checked.quantize(Decimal("0.01"))
    else:
        assert 1 <= checked <= 10_000_000 and checked == checked.to_integral_value()


def test_a_redemption_reads_the_member_and_the_webhooks_only_for_a_listener(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    """The locked read says whether the brand has webhook endpoints: without one, redeeming a
    coupon sends no query for endpoints nor for the member (test_webhooks.py checks the event
    when someone listens); the coupon's key is looked up only when it was used."""
    member = enroll(client, brand)
    offer_id = _offer(app, brand)
    coupon = _issue(app, offer_id, member["id"])
    assert coupon is not None

    def redeem() -> None:
        response = client.post(
            "/api/v1/coupons/redemptions",
            json={"barcode": coupon.barcode, "amount": "20.00"},
            headers={**brand.cashier, "Idempotency-Key": "till-1"},
        )
        assert response.status_code in (200, 201), response.get_data(as_text=True)

    def reads(statements: list[str]) -> dict[str, bool]:
        selects = [" ".join(s.split()) for s in statements if s.lstrip().startswith("SELECT")]
        own = [s for s in selects if "EXISTS" not in s]  # not the locked read's own answers
        return {
            "endpoints": any("FROM webhook_endpoints" in s for s in own),
            "member": any(s.startswith("SELECT members.") for s in own),
            "key": any("coupons.redeem_key =" in s for s in own),
        }

    assert reads(sql_statements(app, redeem)) == {"endpoints": False, "member": False, "key": False}
    # The replay: the key was used, so its coupon is looked up, and the first answer comes back.
    assert reads(sql_statements(app, redeem))["key"] is True


def test_a_redemption_writes_in_one_statement_and_reads_no_reminders_of_a_member_without(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    """Redeeming a coupon at the till: the locked read says the member holds no live reminder
    (no card_messages query), and on Postgres the coupon, both cards and the push rows are
    written in one statement (no savepoint); the cards and the outbox hold the change."""
    member = enroll(client, brand)
    coupon = _issue(app, _offer(app, brand), member["id"])
    assert coupon is not None
    with services_of(app).db.transaction() as session:
        before = {c.id: c.update_tag for c in session.scalars(select(Card)).all()}

    def redeem() -> None:
        response = client.post(
            "/api/v1/coupons/redemptions",
            json={"barcode": coupon.barcode, "amount": "20.00"},
            headers={**brand.cashier, "Idempotency-Key": "till-1"},
        )
        assert response.status_code == 201, response.get_data(as_text=True)

    statements = [" ".join(s.split()) for s in sql_statements(app, redeem)]
    assert not any(s.startswith("SELECT card_messages.") for s in statements)
    writes = [
        s for s in statements
        if s.split()[0] in ("WITH", "INSERT", "UPDATE", "SAVEPOINT") and "api_keys" not in s
    ]  # fmt: skip
    if services_of(app).db.is_postgres:
        assert len(writes) == 1 and writes[0].startswith("WITH"), writes
    with services_of(app).db.transaction() as session:
        redeemed = session.get_one(Coupon, coupon.id)
        assert redeemed.status == "redeemed" and redeemed.redeem_key == "till-1"
        touched = {
            c.serial_number if c.kind == "loyalty" else c.id
            for c in session.scalars(select(Card)).all()
            if c.update_tag > before[c.id]
        }
        assert touched == {member["card"]["serial_number"], coupon.card_id} - {None}
