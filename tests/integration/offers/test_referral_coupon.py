"""The referrer's reward coupon: issued with the referral bonuses, once, and voided on refund."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from tests.factories import BrandKeys, enroll, scan, services_of
from walletd.models import Program


def _offer(client: FlaskClient, brand: BrandKeys) -> int:
    response = client.post(
        "/api/v1/offers",
        json={"name": "Thanks for the friend", "kind": "amount_off", "value": "3"},
        headers=brand.admin,
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    return int(response.get_json()["id"])


def _coupons(client: FlaskClient, brand: BrandKeys, member_id: int) -> list[dict[str, object]]:
    response = client.get(f"/api/v1/members/{member_id}/coupons", headers=brand.admin)
    assert response.status_code == 200
    return list(response.get_json()["coupons"])


def test_the_referrer_gets_the_reward_coupon_once_and_loses_it_with_the_refund(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    offer_id = _offer(client, brand)
    with services_of(app).db.transaction() as session:
        program = session.get_one(Program, brand.program_id)
        program.referral_offer_id = offer_id
        program.referral_bonus_referrer = 0
        program.referral_bonus_referee = 0
        program.referral_min_purchase_minor = 500
    referrer = enroll(client, brand, name="Grace")
    referee = enroll(client, brand, name="Ada", referral_code=referrer["referral_code"])
    barcode = referee["card"]["barcode"]

    assert scan(client, brand, barcode, "4.99", "small").status_code == 201
    assert _coupons(client, brand, referrer["id"]) == []  # below the minimum: nothing yet

    qualifying = scan(client, brand, barcode, "5.00", "first")
    assert qualifying.status_code == 201
    [coupon] = _coupons(client, brand, referrer["id"])
    assert coupon["offer_id"] == offer_id and coupon["status"] == "active"
    assert _coupons(client, brand, referee["id"]) == []

    assert scan(client, brand, barcode, "50.00", "second").status_code == 201
    assert len(_coupons(client, brand, referrer["id"])) == 1  # a referral rewards once

    scan_id = qualifying.get_json()["scan_id"]
    refund = client.post(f"/api/v1/scans/{scan_id}/reversal", headers=brand.admin)
    assert refund.status_code == 201
    [voided] = _coupons(client, brand, referrer["id"])
    assert voided["id"] == coupon["id"] and voided["status"] == "void"


def test_the_program_editor_sets_only_an_active_offer_of_the_program(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    from walletd.errors import ValidationError
    from walletd.loyalty.programs import _referral_offer

    offer_id = _offer(client, brand)
    with services_of(app).db.transaction() as session:
        program = session.get_one(Program, brand.program_id)
        assert _referral_offer(session, program, str(offer_id)) == offer_id
        assert _referral_offer(session, program, "") is None
        for bad in ("999999", "0", "x", "²", str(2**40)):
            try:
                _referral_offer(session, program, bad)
            except ValidationError as exc:
                assert exc.field == "referral_offer_id"
            else:
                raise AssertionError(bad)
