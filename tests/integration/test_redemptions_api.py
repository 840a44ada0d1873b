"""Redemptions: spending points directly or on a reward, exactly once, never below zero."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.factories import BrandKeys, FrozenClock, enroll, make_brand, scan, services_of
from walletd.loyalty import ledger
from walletd.loyalty.context import Context
from walletd.models import Member, Reward


def _redeem(client: FlaskClient, brand: BrandKeys, body: dict[str, Any], key: str) -> Any:
    headers = {**brand.cashier, "Idempotency-Key": key}
    return client.post("/api/v1/redemptions", json=body, headers=headers)


def _reward_id(app: Flask, brand: BrandKeys, name: str) -> int:
    with services_of(app).db.transaction() as session:
        return session.scalars(
            select(Reward.id).where(Reward.program_id == brand.program_id, Reward.name == name)
        ).one()


def _points(app: Flask, member_id: int) -> int:
    with services_of(app).db.transaction() as session:
        return session.get_one(Member, member_id).points


def _entry_kinds(client: FlaskClient, brand: BrandKeys, member_id: int) -> list[str]:
    response = client.get(f"/api/v1/members/{member_id}/ledger", headers=brand.admin)
    return [entry["kind"] for entry in response.get_json()["entries"]]


def _error(response: Any) -> tuple[int, str, str | None]:
    assert response.mimetype == "application/json", response.get_data(as_text=True)
    error = response.get_json()["error"]
    return response.status_code, error["code"], error.get("field")


def _expire_now(app: Flask, clock: FrozenClock) -> int:
    svc = services_of(app)
    with svc.db.transaction() as session:
        return ledger.expire_due_lots(session, Context(now=clock(), secret_key="unused"))


def _member_with_points(client: FlaskClient, brand: BrandKeys, amount: str) -> dict[str, Any]:
    member = enroll(client, brand)
    assert scan(client, brand, member["card"]["barcode"], amount, "setup").status_code == 201
    return member


def test_redemption_by_points_spends_them(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    member = _member_with_points(client, brand, "100.00")
    response = _redeem(client, brand, {"barcode": member["card"]["barcode"], "points": 30}, "r1")
    assert response.status_code == 201
    body = response.get_json()
    assert body["member_id"] == member["id"]
    assert body["points_redeemed"] == 30
    assert body["balance"] == 150 - 30
    assert _points(app, member["id"]) == 120
    assert _entry_kinds(client, brand, member["id"])[0] == "redeem"


def test_redemption_of_the_whole_balance_leaves_zero(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    member = enroll(client, brand)
    response = _redeem(client, brand, {"barcode": member["card"]["barcode"], "points": 50}, "r1")
    assert response.get_json()["balance"] == 0
    assert _points(app, member["id"]) == 0


def test_redemption_by_reward_spends_its_cost(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    member = _member_with_points(client, brand, "100.00")
    coffee = _reward_id(app, brand, "Free coffee")
    body = {"barcode": member["card"]["barcode"], "reward_id": coffee}
    response = _redeem(client, brand, body, "r1")
    assert response.status_code == 201
    assert response.get_json()["points_redeemed"] == 150
    assert response.get_json()["balance"] == 0
    assert response.get_json()["reward"] == "Free coffee"
    entries = client.get(f"/api/v1/members/{member['id']}/ledger", headers=brand.admin)
    newest = entries.get_json()["entries"][0]
    assert (newest["kind"], newest["points"], newest["reason"]) == ("redeem", -150, "Free coffee")


def test_redemption_with_an_admin_key_is_accepted(client: FlaskClient, brand: BrandKeys) -> None:
    barcode = enroll(client, brand)["card"]["barcode"]
    headers = {**brand.admin, "Idempotency-Key": "r1"}
    body = {"barcode": barcode, "points": 5}
    assert client.post("/api/v1/redemptions", json=body, headers=headers).status_code == 201


def test_insufficient_points_are_a_conflict_and_change_nothing(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    member = enroll(client, brand)
    barcode = member["card"]["barcode"]
    voucher = _reward_id(app, brand, "10% off voucher")
    for index, body in enumerate([{"points": 51}, {"points": 10_000}, {"reward_id": voucher}]):
        response = _redeem(client, brand, {"barcode": barcode, **body}, f"r{index}")
        assert _error(response)[:2] == (409, "insufficient_points"), body
    assert _points(app, member["id"]) == 50
    assert _entry_kinds(client, brand, member["id"]) == ["bonus"]


def test_points_and_reward_together_or_neither_are_refused(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    member = _member_with_points(client, brand, "200.00")
    barcode = member["card"]["barcode"]
    coffee = _reward_id(app, brand, "Free coffee")
    for index, body in enumerate(
        [
            {"barcode": barcode, "points": 10, "reward_id": coffee},
            {"barcode": barcode},
            {"barcode": barcode, "points": None, "reward_id": None},
        ]
    ):
        response = _redeem(client, brand, body, f"r{index}")
        assert _error(response)[:2] == (422, "validation_error"), body
    assert _points(app, member["id"]) == 250


def test_redemption_replay_returns_first_result(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    member = _member_with_points(client, brand, "100.00")
    body = {"barcode": member["card"]["barcode"], "points": 30}
    first = _redeem(client, brand, body, "r1")
    assert first.status_code == 201
    replay = _redeem(client, brand, body, "r1")
    assert replay.status_code == 200
    assert replay.get_json() == first.get_json()
    assert _points(app, member["id"]) == 120
    assert _entry_kinds(client, brand, member["id"]).count("redeem") == 1


def test_redemption_reused_key_with_a_different_body_is_a_conflict(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    member = _member_with_points(client, brand, "100.00")
    barcode = member["card"]["barcode"]
    assert _redeem(client, brand, {"barcode": barcode, "points": 30}, "r1").status_code == 201
    response = _redeem(client, brand, {"barcode": barcode, "points": 31}, "r1")
    assert _error(response)[:2] == (409, "idempotency_key_reused")
    coffee = _reward_id(app, brand, "Free coffee")
    response = _redeem(client, brand, {"barcode": barcode, "reward_id": coffee}, "r1")
    assert _error(response)[:2] == (409, "idempotency_key_reused")
    # A scan's key is in the same space: a redemption may not reuse it.
    response = _redeem(client, brand, {"barcode": barcode, "points": 30}, "setup")
    assert _error(response)[:2] == (409, "idempotency_key_reused")
    assert _points(app, member["id"]) == 120


def test_redemption_without_idempotency_key_is_refused(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    member = enroll(client, brand)
    body = {"barcode": member["card"]["barcode"], "points": 10}
    response = client.post("/api/v1/redemptions", json=body, headers=brand.cashier)
    assert _error(response) == (422, "validation_error", "Idempotency-Key")
    assert _points(app, member["id"]) == 50


def test_invalid_points_are_refused(app: Flask, client: FlaskClient, brand: BrandKeys) -> None:
    member = enroll(client, brand)
    barcode = member["card"]["barcode"]
    for index, points in enumerate(
        [0, -1, -50, True, False, 10_000_001, 10**30, "10", 1.5, 10.0, [10], {"n": 10}]
    ):
        response = _redeem(client, brand, {"barcode": barcode, "points": points}, f"r{index}")
        assert _error(response) == (422, "validation_error", "points"), points
    assert _points(app, member["id"]) == 50
    assert _entry_kinds(client, brand, member["id"]) == ["bonus"]


def test_invalid_reward_ids_are_refused(app: Flask, client: FlaskClient, brand: BrandKeys) -> None:
    member = enroll(client, brand)
    barcode = member["card"]["barcode"]
    for index, reward_id in enumerate(["1", True, 1.0, [1]]):
        body = {"barcode": barcode, "reward_id": reward_id}
        response = _redeem(client, brand, body, f"r{index}")
        assert _error(response) == (422, "validation_error", "reward_id"), reward_id
    assert _points(app, member["id"]) == 50


def test_reward_of_another_program_is_not_found(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    other = make_brand(app, "Other Brand")
    member = _member_with_points(client, brand, "200.00")
    foreign = _reward_id(app, other, "Free coffee")
    for index, reward_id in enumerate([foreign, 999_999]):
        body = {"barcode": member["card"]["barcode"], "reward_id": reward_id}
        assert _error(_redeem(client, brand, body, f"r{index}"))[:2] == (404, "not_found")
    assert _points(app, member["id"]) == 250


def test_inactive_reward_is_not_found(app: Flask, client: FlaskClient, brand: BrandKeys) -> None:
    member = _member_with_points(client, brand, "200.00")
    coffee = _reward_id(app, brand, "Free coffee")
    with services_of(app).db.transaction() as session:
        session.get_one(Reward, coffee).active = False
    body = {"barcode": member["card"]["barcode"], "reward_id": coffee}
    assert _error(_redeem(client, brand, body, "r1"))[:2] == (404, "not_found")
    assert _points(app, member["id"]) == 250


def test_redemption_with_a_foreign_or_forged_barcode_is_an_unknown_card(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    other = make_brand(app, "Other Brand")
    foreign = enroll(client, other)
    for index, barcode in enumerate([foreign["card"]["barcode"], "WD1.AAAA.BBBB"]):
        response = _redeem(client, brand, {"barcode": barcode, "points": 10}, f"r{index}")
        assert _error(response)[:2] == (404, "unknown_card"), barcode
    response = _redeem(client, brand, {"barcode": None, "points": 10}, "r-null")
    assert _error(response) == (422, "validation_error", "barcode")
    assert _points(app, foreign["id"]) == 50


def test_redemption_consumes_the_oldest_lots_first(
    app: Flask, client: FlaskClient, brand: BrandKeys, clock: FrozenClock
) -> None:
    # Lot 1: the 50-point welcome bonus, expiring 12 months after enrollment.
    member = enroll(client, brand)
    barcode = member["card"]["barcode"]
    clock.advance(days=180)
    # Lot 2: 100 points, expiring 12 months after this scan.
    assert scan(client, brand, barcode, "100.00", "s1").status_code == 201
    # Spends all of lot 1 and 10 points of lot 2.
    assert _redeem(client, brand, {"barcode": barcode, "points": 60}, "r1").status_code == 201
    assert _points(app, member["id"]) == 90

    clock.advance(days=200)  # lot 1 is due, lot 2 is not
    _expire_now(app, clock)
    assert _points(app, member["id"]) == 90  # lot 1 was already spent: nothing to expire

    clock.advance(days=200)  # lot 2 is due
    assert _expire_now(app, clock) == 1
    assert _points(app, member["id"]) == 0
    assert _entry_kinds(client, brand, member["id"])[0] == "expire"


def test_unspent_oldest_lot_expires_without_a_redemption(
    app: Flask, client: FlaskClient, brand: BrandKeys, clock: FrozenClock
) -> None:
    member = enroll(client, brand)
    clock.advance(days=180)
    assert scan(client, brand, member["card"]["barcode"], "100.00", "s1").status_code == 201
    clock.advance(days=200)
    assert _expire_now(app, clock) == 1
    assert _points(app, member["id"]) == 100
