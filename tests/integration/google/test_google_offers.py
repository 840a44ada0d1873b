"""Coupons reach Google Wallet as offer objects linked into the member's loyalty object."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from tests.factories import BrandKeys, FrozenClock, enroll, services_of
from tests.fakes.google_wallet import GoogleWalletFake, iter_issues, validate_body
from tests.integration.google.conftest import calls, object_id_of, outbox_rows
from walletd.loyalty.context import Context
from walletd.loyalty.ledger import Actor
from walletd.models import Card, Coupon, Member, Offer, OutboxMessage
from walletd.offers.coupons import issue_coupon, redeem_coupon
from walletd.offers.wallets import coupon_changed
from walletd.passes.google import (
    OFFER_STATES,
    build_offer_class,
    build_offer_object,
    modify_linked_offers_body,
)
from walletd.push.dispatcher import Dispatcher
from walletd.push.google_sync import queue_google_coupon
from walletd.push.outbox import GOOGLE_COUPON, GOOGLE_OBJECT

_SCHEMA_OF = {
    "/offerClass": "OfferClass",
    "/offerObject": "OfferObject",
    "/modifyLinkedOfferObjects": "ModifyLinkedOfferObjectsRequest",
}


def _offer(app: Flask, brand: BrandKeys, **fields: Any) -> int:
    """An offer of the brand's program, made with the model (issue 10's catalog is H-core's)."""
    svc = services_of(app)
    with svc.db.transaction() as session:
        offer = Offer(
            brand_id=brand.brand_id,
            program_id=brand.program_id,
            name=fields.pop("name", "10% off any coffee"),
            kind=fields.pop("kind", "percent_off"),
            value=fields.pop("value", Decimal("10")),
            terms=fields.pop("terms", "One per visit."),
            created_at=svc.clock(),
            updated_at=svc.clock(),
            **fields,
        )
        session.add(offer)
        session.flush()
        return offer.id


def _issue(
    app: Flask, brand: BrandKeys, member_id: int, offer_id: int, *, days: int = 30
) -> tuple[int, str]:
    """A coupon with its own Apple card, announced through the wallets hook; (id, barcode)."""
    svc = services_of(app)
    ctx = svc.context()
    token = secrets.token_hex(6)
    with svc.db.transaction() as session:
        card = Card(
            brand_id=brand.brand_id,
            member_id=member_id,
            kind="coupon",
            serial_number=f"coupon-{token}",
            auth_token=secrets.token_hex(16),
            barcode=f"WC1.test.{token}",
            updated_at=ctx.now,
            created_at=ctx.now,
        )
        session.add(card)
        session.flush()
        coupon = Coupon(
            brand_id=brand.brand_id,
            offer_id=offer_id,
            member_id=member_id,
            card_id=card.id,
            code=token.upper(),
            barcode=card.barcode,
            value=Decimal("10"),
            occasion=f"test:{token}",
            issued_at=ctx.now,
            expires_at=ctx.now + timedelta(days=days),
            updated_at=ctx.now,
        )
        session.add(coupon)
        session.flush()
        coupon_changed(session, coupon, ctx)
        return coupon.id, coupon.barcode


def _finish(app: Flask, coupon_id: int, status: str) -> None:
    """Move a coupon to redeemed, expired or void and announce it, as the offers services do."""
    svc = services_of(app)
    ctx = svc.context()
    with svc.db.transaction() as session:
        coupon = session.get(Coupon, coupon_id)
        assert coupon is not None
        coupon.status = status
        if status == "redeemed":
            coupon.redeemed_at = ctx.now
        coupon.updated_at = ctx.now
        coupon_changed(session, coupon, ctx)


def _coupon(app: Flask, coupon_id: int) -> Coupon:
    with services_of(app).db.transaction() as session:
        coupon = session.get(Coupon, coupon_id)
        assert coupon is not None
        return coupon


def _assert_offer_bodies_valid(fake: GoogleWalletFake) -> None:
    """Every offer request walletd sent is valid against the discovery document."""
    checked = 0
    for request in fake.api_requests():
        method, path = request.method, request.path
        for schema, post_suffix, patch_part in (
            ("OfferClass", "/offerClass", "/offerClass/"),
            ("OfferObject", "/offerObject", "/offerObject/"),
            ("ModifyLinkedOfferObjectsRequest", "/modifyLinkedOfferObjects", None),
        ):
            if method == "POST" and path.endswith(post_suffix):
                problems = list(iter_issues(validate_body(schema, request.body)))
            elif method == "PATCH" and patch_part is not None and patch_part in path:
                problems = list(iter_issues(validate_body(schema, request.body, partial=True)))
            else:
                continue
            assert problems == [], (method, path, problems)
            checked += 1
    assert checked > 0


def _ids(fake: GoogleWalletFake, offer_id: int, coupon_id: int) -> tuple[str, str]:
    return f"{fake.issuer_id}.offer-{offer_id}", f"{fake.issuer_id}.coupon-{coupon_id}"


def test_issue_inserts_the_offer_class_and_object_and_links_it_into_the_loyalty_card(
    app: Flask,
    client: FlaskClient,
    brand: BrandKeys,
    fake: GoogleWalletFake,
    dispatcher: Dispatcher,
    clock: FrozenClock,
) -> None:
    member = enroll(client, brand)
    loyalty_oid = object_id_of(fake, member["card"]["serial_number"])
    dispatcher.drain()
    clock.advance(minutes=1)
    offer_id = _offer(app, brand)
    coupon_id, barcode = _issue(app, brand, member["id"], offer_id)
    assert [r.payload for r in outbox_rows(app, GOOGLE_COUPON)] == [{"coupon_id": coupon_id}]

    dispatcher.drain()
    cid, oid = _ids(fake, offer_id, coupon_id)
    [class_insert] = calls(fake, "POST", "/offerClass")
    assert class_insert.status == 200
    assert class_insert.body["reviewStatus"] == "UNDER_REVIEW"
    assert class_insert.body["redemptionChannel"] == "INSTORE"
    assert class_insert.body["provider"] == "Acme Coffee"
    assert class_insert.body["title"] == "10% off any coffee"
    assert class_insert.body["finePrint"] == "One per visit."
    stored = fake.offer_objects[oid]
    assert stored["classId"] == cid
    assert stored["state"] == "ACTIVE"
    assert stored["barcode"] == {
        "type": "QR_CODE",
        "value": barcode,
        "alternateText": _coupon(app, coupon_id).code,
    }
    expires = (clock.now + timedelta(days=30)).replace(microsecond=0)
    assert stored["validTimeInterval"] == {"end": {"date": expires.isoformat()[:-6] + "Z"}}
    assert fake.objects[loyalty_oid]["linkedOfferIds"] == [oid]
    # The coupon's own Apple card never becomes a second Google loyalty object.
    assert set(fake.objects) == {loyalty_oid}
    coupon_card_rows = [r for r in outbox_rows(app, GOOGLE_OBJECT) if r.status == "gone"]
    assert len(coupon_card_rows) == 1
    assert {r.status for r in outbox_rows(app, GOOGLE_COUPON)} == {"sent"}
    assert _coupon(app, coupon_id).google_synced_at == clock.now
    with services_of(app).db.transaction() as session:
        offer = session.get(Offer, offer_id)
        assert offer is not None and offer.google_class_synced_at == clock.now
    _assert_offer_bodies_valid(fake)

    # A second coupon of the same offer reuses the class: one object insert and one link more.
    clock.advance(minutes=1)
    second, _ = _issue(app, brand, member["id"], offer_id)
    dispatcher.drain()
    assert len(calls(fake, "POST", "/offerClass")) == 1
    assert calls(fake, "PATCH", cid) == []
    assert fake.objects[loyalty_oid]["linkedOfferIds"] == [oid, _ids(fake, offer_id, second)[1]]


@pytest.mark.parametrize(
    ("status", "state"), [("redeemed", "COMPLETED"), ("expired", "EXPIRED"), ("void", "INACTIVE")]
)
def test_a_finished_coupon_changes_state_and_leaves_the_loyalty_card(
    app: Flask,
    client: FlaskClient,
    brand: BrandKeys,
    fake: GoogleWalletFake,
    dispatcher: Dispatcher,
    clock: FrozenClock,
    status: str,
    state: str,
) -> None:
    member = enroll(client, brand)
    loyalty_oid = object_id_of(fake, member["card"]["serial_number"])
    offer_id = _offer(app, brand)
    kept, _ = _issue(app, brand, member["id"], offer_id)
    used, _ = _issue(app, brand, member["id"], offer_id)
    dispatcher.drain()
    _, kept_oid = _ids(fake, offer_id, kept)
    _, used_oid = _ids(fake, offer_id, used)
    assert fake.objects[loyalty_oid]["linkedOfferIds"] == [kept_oid, used_oid]

    clock.advance(minutes=5)
    _finish(app, used, status)
    dispatcher.drain()
    [patch] = calls(fake, "PATCH", used_oid)
    assert (patch.status, patch.body["state"]) == (200, state)
    assert fake.offer_objects[used_oid]["state"] == state
    assert fake.offer_objects[kept_oid]["state"] == "ACTIVE"
    [*_, unlink] = calls(fake, "POST", f"{loyalty_oid}/modifyLinkedOfferObjects")
    assert unlink.body == {"linkedOfferObjectIds": {"removeLinkedOfferObjectIds": [used_oid]}}
    assert fake.objects[loyalty_oid]["linkedOfferIds"] == [kept_oid]
    assert _coupon(app, used).google_synced_at == clock.now
    _assert_offer_bodies_valid(fake)


def test_a_coupon_finished_before_its_first_delivery_is_inserted_finished_and_never_linked(
    app: Flask,
    client: FlaskClient,
    brand: BrandKeys,
    fake: GoogleWalletFake,
    dispatcher: Dispatcher,
) -> None:
    member = enroll(client, brand)
    offer_id = _offer(app, brand)
    coupon_id, _ = _issue(app, brand, member["id"], offer_id)
    _finish(app, coupon_id, "redeemed")
    # The pending row was coalesced: one delivery, reading the coupon as it is now.
    assert len(outbox_rows(app, GOOGLE_COUPON)) == 1
    dispatcher.drain()
    _, oid = _ids(fake, offer_id, coupon_id)
    assert fake.offer_objects[oid]["state"] == "COMPLETED"
    loyalty = fake.objects[object_id_of(fake, member["card"]["serial_number"])]
    assert "linkedOfferIds" not in loyalty


def test_retries_converge_on_one_object_linked_once(
    app: Flask,
    client: FlaskClient,
    brand: BrandKeys,
    fake: GoogleWalletFake,
    dispatcher: Dispatcher,
    clock: FrozenClock,
) -> None:
    member = enroll(client, brand)
    loyalty_oid = object_id_of(fake, member["card"]["serial_number"])
    dispatcher.drain()
    clock.advance(minutes=1)
    offer_id = _offer(app, brand)
    coupon_id, _ = _issue(app, brand, member["id"], offer_id)
    _, oid = _ids(fake, offer_id, coupon_id)

    # Google fails the link (both of the client's attempts) after the object went in.
    fake.fail_next(503, count=2, path_suffix="/modifyLinkedOfferObjects")
    dispatcher.drain()
    [row] = outbox_rows(app, GOOGLE_COUPON)
    assert (row.status, row.attempts) == ("pending", 1)
    assert oid in fake.offer_objects
    assert "linkedOfferIds" not in fake.objects[loyalty_oid]
    assert _coupon(app, coupon_id).google_synced_at is None

    # The retry inserts again (409: patched whole) and links exactly once.
    clock.advance(minutes=5)
    dispatcher.drain()
    [row] = outbox_rows(app, GOOGLE_COUPON)
    assert row.status == "sent"
    assert [r.status for r in calls(fake, "POST", "/offerObject")] == [200, 409]
    assert [r.status for r in calls(fake, "PATCH", oid)] == [200]
    assert fake.objects[loyalty_oid]["linkedOfferIds"] == [oid]

    # Delivered once more (a lost record, a re-queue): nothing doubles.
    svc = services_of(app)
    with svc.db.transaction() as session:
        coupon = session.get(Coupon, coupon_id)
        assert coupon is not None
        coupon_changed(session, coupon, svc.context())
    dispatcher.drain()
    assert fake.objects[loyalty_oid]["linkedOfferIds"] == [oid]
    assert list(fake.offer_objects) == [oid]
    _assert_offer_bodies_valid(fake)


def test_google_lost_the_loyalty_object_so_the_link_inserts_it_again(
    app: Flask,
    client: FlaskClient,
    brand: BrandKeys,
    fake: GoogleWalletFake,
    dispatcher: Dispatcher,
    clock: FrozenClock,
) -> None:
    member = enroll(client, brand)
    loyalty_oid = object_id_of(fake, member["card"]["serial_number"])
    dispatcher.drain()
    fake.objects.clear()
    clock.advance(minutes=1)
    offer_id = _offer(app, brand)
    coupon_id, _ = _issue(app, brand, member["id"], offer_id)
    # Only the coupon's row this time (the card's own balance update went out separately).
    with services_of(app).db.transaction() as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.kind == GOOGLE_OBJECT, OutboxMessage.status == "pending")
            .values(status="cancelled")
        )
    dispatcher.drain()
    _, oid = _ids(fake, offer_id, coupon_id)
    assert fake.objects[loyalty_oid]["linkedOfferIds"] == [oid]
    statuses = [r.status for r in calls(fake, "POST", f"{loyalty_oid}/modifyLinkedOfferObjects")]
    assert statuses == [404, 200]


def test_an_edited_offer_patches_its_class_with_under_review(
    app: Flask,
    client: FlaskClient,
    brand: BrandKeys,
    fake: GoogleWalletFake,
    dispatcher: Dispatcher,
    clock: FrozenClock,
) -> None:
    member = enroll(client, brand)
    offer_id = _offer(app, brand)
    _issue(app, brand, member["id"], offer_id)
    dispatcher.drain()
    clock.advance(minutes=1)
    svc = services_of(app)
    with svc.db.transaction() as session:
        offer = session.get(Offer, offer_id)
        assert offer is not None
        offer.name, offer.updated_at = "15% off any coffee", clock.now
    second, _ = _issue(app, brand, member["id"], offer_id)
    dispatcher.drain()
    cid, _ = _ids(fake, offer_id, second)
    [patch] = calls(fake, "PATCH", cid)
    assert patch.status == 200
    assert patch.body["reviewStatus"] == "UNDER_REVIEW"
    assert fake.offer_classes[cid]["title"] == "15% off any coffee"


def test_without_google_no_coupon_rows_are_queued(app: Flask, client: FlaskClient) -> None:
    svc = services_of(app)
    with svc.db.transaction() as session:
        assert session.scalars(select(Coupon)).all() == []
    disabled = Context(now=svc.clock(), secret_key="x", google_enabled=False)
    with svc.db.transaction() as session:
        queue_google_coupon(session, Coupon(id=1), disabled)
    assert outbox_rows(app, GOOGLE_COUPON) == []


_text = st.text(st.characters(codec="utf-8"), min_size=1, max_size=80)


@settings(max_examples=100, deadline=None)
@given(
    offer_id=st.integers(0, 2**31),
    coupon_id=st.integers(0, 2**62),
    status=st.sampled_from(sorted(OFFER_STATES)),
    title=_text,
    provider=_text,
    terms=st.none() | _text,
    barcode=_text,
    code=_text,
    colour=st.from_regex(r"\A#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})\Z"),
    expires=st.none()
    | st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    ),
    value_text=st.none() | _text,
)
def test_generated_offer_bodies_are_valid_against_the_discovery_document(
    offer_id: int,
    coupon_id: int,
    status: str,
    title: str,
    provider: str,
    terms: str | None,
    barcode: str,
    code: str,
    colour: str,
    expires: datetime | None,
    value_text: str | None,
) -> None:
    issuer = "3388000000022141777"
    cls = build_offer_class(
        issuer_id=issuer,
        offer_id=offer_id,
        title=title,
        provider=provider,
        background_color=colour,
        logo_uri="https://walletd.test/logo.png",
        fine_print=terms,
    )
    assert list(iter_issues(validate_body("OfferClass", cls))) == []
    obj = build_offer_object(
        issuer_id=issuer,
        offer_id=offer_id,
        coupon_id=coupon_id,
        status=status,
        barcode=barcode,
        code=code,
        expires_at=expires,
        value_text=value_text,
    )
    assert list(iter_issues(validate_body("OfferObject", obj))) == []
    assert obj["state"] == OFFER_STATES[status]
    if expires is not None:
        end = obj["validTimeInterval"]["end"]["date"]
        assert datetime.fromisoformat(end) == expires.replace(microsecond=0)
    link = modify_linked_offers_body(add=[obj["id"]] if status == "active" else [])
    assert list(iter_issues(validate_body("ModifyLinkedOfferObjectsRequest", link))) == []


def test_naive_expiry_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        build_offer_object(
            issuer_id="1",
            offer_id=1,
            coupon_id=1,
            status="active",
            barcode="b",
            code="c",
            expires_at=datetime(2030, 1, 1),
        )


def test_issue_and_redeem_through_the_coupon_services(
    app: Flask,
    client: FlaskClient,
    brand: BrandKeys,
    fake: GoogleWalletFake,
    dispatcher: Dispatcher,
    clock: FrozenClock,
) -> None:
    member = enroll(client, brand)
    loyalty_oid = object_id_of(fake, member["card"]["serial_number"])
    offer_id = _offer(app, brand, valid_days=14)
    svc = services_of(app)
    with svc.db.transaction() as session:
        offer, holder = session.get(Offer, offer_id), session.get(Member, member["id"])
        assert offer is not None and holder is not None
        coupon = issue_coupon(
            session, offer, holder, source="manual", occasion="t", ctx=svc.context()
        )
        assert coupon is not None
        coupon_id, barcode = coupon.id, coupon.barcode
    dispatcher.drain()
    _, oid = _ids(fake, offer_id, coupon_id)
    assert fake.offer_objects[oid]["state"] == "ACTIVE"
    assert fake.offer_objects[oid]["barcode"]["value"] == barcode
    assert fake.objects[loyalty_oid]["linkedOfferIds"] == [oid]

    clock.advance(minutes=3)
    for _ in range(2):  # the replay of the same key changes nothing more
        with svc.db.transaction() as session:
            redeem_coupon(
                session,
                Actor(brand.brand_id),
                barcode=barcode,
                amount="12.00",
                idempotency_key="till-1",
                ctx=svc.context(),
            )
        dispatcher.drain()
    assert fake.offer_objects[oid]["state"] == "COMPLETED"
    assert "linkedOfferIds" not in fake.objects[loyalty_oid]
    assert len(calls(fake, "PATCH", oid)) == 1
    _assert_offer_bodies_valid(fake)
