"""An admin voids a coupon: it gives nothing at any till from then on, its card updates, the
audit log keeps who and why, and nobody else (a cashier, another brand) can void it."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.factories import (
    BrandKeys,
    FrozenClock,
    enroll,
    issue_coupon,
    make_brand,
    raw_post,
    scan,
    services_of,
)
from walletd.models import AuditEntry, Card, Coupon


def _void(client: FlaskClient, headers: dict[str, str], coupon_id: object, body: Any) -> Any:
    return client.post(f"/api/v1/coupons/{coupon_id}/void", json=body, headers=headers)


def _error(response: Any) -> tuple[int, str, str | None]:
    error = response.get_json()["error"]
    return response.status_code, error["code"], error.get("field")


def _status(app: Flask, coupon_id: int) -> str:
    with services_of(app).db.sessions() as session:
        return session.scalars(select(Coupon.status).where(Coupon.id == coupon_id)).one()


def test_a_voided_coupon_gives_nothing_its_card_updates_and_the_audit_log_says_why(
    app: Flask, client: FlaskClient, brand: BrandKeys, clock: FrozenClock
) -> None:
    member = enroll(client, brand)
    coupon = issue_coupon(client, brand, member["id"])
    with services_of(app).db.sessions() as session:
        card_changed = session.scalars(
            select(Card.updated_at).where(Card.member_id == member["id"], Card.kind == "loyalty")
        ).one()
    clock.advance(minutes=5)

    voided = _void(client, brand.admin, coupon["id"], {"reason": "issued to the wrong member"})
    assert voided.status_code == 200, voided.get_data(as_text=True)
    body = voided.get_json()
    assert (body["id"], body["status"]) == (coupon["id"], "void")
    assert body["barcode"] == coupon["barcode"]

    till = {**brand.cashier, "Idempotency-Key": "after-void"}
    redeemed = client.post(
        "/api/v1/coupons/redemptions", json={"barcode": coupon["barcode"]}, headers=till
    )
    assert _error(redeemed)[:2] == (409, "coupon_void")
    barcode = member["card"]["barcode"]
    with_scan = scan(client, brand, barcode, "30.00", "s1", coupons=[coupon["barcode"]])
    assert _error(with_scan)[:2] == (409, "coupon_void")
    listed = client.get(f"/api/v1/members/{member['id']}/coupons", headers=brand.cashier)
    assert [c["status"] for c in listed.get_json()["coupons"]] == ["void"]

    with services_of(app).db.sessions() as session:
        (entry,) = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "coupon.voided")
        ).all()
        assert (entry.brand_id, entry.target_type, entry.target_id) == (
            brand.brand_id, "coupon", coupon["id"],
        )  # fmt: skip
        assert entry.actor_api_key_id is not None
        assert entry.changes == {
            "status": ["active", "void"], "reason": [None, "issued to the wrong member"],
        }  # fmt: skip
        card_now = session.scalars(
            select(Card.updated_at).where(Card.member_id == member["id"], Card.kind == "loyalty")
        ).one()
    assert card_now > card_changed  # the card's back lists coupons: the wallet is told


def test_only_an_active_coupon_is_voided_and_a_refusal_changes_nothing(
    app: Flask, client: FlaskClient, brand: BrandKeys, clock: FrozenClock
) -> None:
    member = enroll(client, brand)
    reason = {"reason": "mistake"}
    once = issue_coupon(client, brand, member["id"])
    assert _void(client, brand.admin, once["id"], reason).status_code == 200
    assert _error(_void(client, brand.admin, once["id"], reason))[:2] == (409, "coupon_void")

    used = issue_coupon(client, brand, member["id"], kind="free_item", value=None, item="Tea")
    till = {**brand.cashier, "Idempotency-Key": "used"}
    assert (
        client.post(
            "/api/v1/coupons/redemptions", json={"barcode": used["barcode"]}, headers=till
        ).status_code
        == 201
    )
    assert _error(_void(client, brand.admin, used["id"], reason))[:2] == (409, "coupon_redeemed")
    assert _status(app, used["id"]) == "redeemed"

    # Past its expiry the coupon is expired for the till before the nightly job marks it.
    late = issue_coupon(client, brand, member["id"], valid_days=7)
    clock.advance(days=7)
    assert _error(_void(client, brand.admin, late["id"], reason))[:2] == (409, "coupon_expired")
    assert _status(app, late["id"]) == "active"

    with services_of(app).db.sessions() as session:
        actions = session.scalars(
            select(AuditEntry.target_id).where(AuditEntry.action == "coupon.voided")
        ).all()
    assert actions == [once["id"]]


def test_a_cashier_another_brand_and_forged_ids_void_nothing(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    member = enroll(client, brand)
    coupon = issue_coupon(client, brand, member["id"])
    reason = {"reason": "mine now"}
    assert _error(_void(client, brand.cashier, coupon["id"], reason))[:2] == (403, "forbidden")
    other = make_brand(app, "Other")
    assert _void(client, other.admin, coupon["id"], reason).status_code == 404
    assert client.post(f"/api/v1/coupons/{coupon['id']}/void", json=reason).status_code == 401
    for forged in (0, 2**31, 10**30, coupon["id"] + 1000):
        assert _void(client, brand.admin, forged, reason).status_code == 404, forged
    for path in (f"/api/v1/coupons/-{coupon['id']}/void", "/api/v1/coupons/abc/void"):
        assert client.post(path, json=reason, headers=brand.admin).status_code == 404
    assert _status(app, coupon["id"]) == "active"


def test_the_reason_is_required_and_bounded(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    member = enroll(client, brand)
    coupon = issue_coupon(client, brand, member["id"])
    refusals: list[dict[str, Any]] = [
        {}, {"reason": ""}, {"reason": "x" * 201}, {"reason": 7}, {"reason": None},
        {"reason": "   "}, {"reason": "nul\u0000"}, {"reason": "\ud800"},
        {"reason": "zero\u200bwidth"},
    ]  # fmt: skip
    for body in refusals:
        response = _void(client, brand.admin, coupon["id"], body)
        assert _error(response) == (422, "validation_error", "reason"), body
    assert _error(_void(client, brand.admin, coupon["id"], ["reason"]))[:2] == (
        400, "malformed_json",
    )  # fmt: skip
    malformed = raw_post(
        client,
        f"/api/v1/coupons/{coupon['id']}/void",
        '{"reason": ',
        {**brand.admin, "Content-Type": "application/json"},
    )
    assert _error(malformed)[:2] == (400, "malformed_json")
    assert _status(app, coupon["id"]) == "active"
    unicode = _void(client, brand.admin, coupon["id"], {"reason": " 發錯會員 🙈 "})
    assert unicode.status_code == 200
    with services_of(app).db.sessions() as session:
        (changes,) = session.scalars(
            select(AuditEntry.changes).where(AuditEntry.action == "coupon.voided")
        ).all()
    assert changes["reason"] == [None, "發錯會員 🙈"]  # trimmed
    # Unknown fields are ignored, as everywhere in the API: they cannot set anything.
    other = issue_coupon(client, brand, member["id"])
    smuggled = _void(client, brand.admin, other["id"], {"reason": "ok", "status": "active"})
    assert smuggled.get_json()["status"] == "void"
