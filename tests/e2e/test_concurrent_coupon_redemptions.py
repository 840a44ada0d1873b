"""Parallel coupon redemptions against a real server process: a coupon is redeemed once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from flask import Flask
from sqlalchemy import func, select

from tests.e2e.conftest import LiveServer
from tests.factories import BrandKeys, services_of
from walletd.models import Coupon, LedgerEntry, Member

PARALLEL = 16


def _post(server: LiveServer, path: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
    response = httpx.post(f"{server.url}{path}", json=body, headers=headers, timeout=30)
    assert response.status_code == 201, response.text
    return response.json()


def _coupon(server: LiveServer, brand: BrandKeys, **offer: Any) -> tuple[dict[str, Any], int]:
    member = _post(server, "/api/v1/members", {"name": "Grace Hopper"}, brand.admin)
    created = _post(server, "/api/v1/offers", {"name": "Deal", **offer}, brand.admin)
    issued = _post(
        server, f"/api/v1/offers/{created['id']}/issue", {"member_id": member["id"]}, brand.admin
    )
    return issued["coupon"], member["points"]


def _redeem(server: LiveServer, brand: BrandKeys, barcode: str, key: str) -> httpx.Response:
    with httpx.Client(timeout=30) as http:
        return http.post(
            f"{server.url}/api/v1/coupons/redemptions",
            json={"barcode": barcode, "amount": "40.00"},
            headers={**brand.cashier, "Idempotency-Key": key},
        )


def test_sixteen_tills_redeem_one_coupon_once(
    live_server: LiveServer, brand: BrandKeys, app: Flask
) -> None:
    coupon, points = _coupon(live_server, brand, kind="bonus_points", value="250")
    with ThreadPoolExecutor(PARALLEL) as pool:
        responses = list(
            pool.map(
                lambda i: _redeem(live_server, brand, coupon["barcode"], f"till-{i}"),
                range(PARALLEL),
            )
        )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * (PARALLEL - 1), [r.text for r in responses]
    codes = {r.json()["error"]["code"] for r in responses if r.status_code == 409}
    assert codes == {"coupon_redeemed"}
    with services_of(app).db.transaction() as session:
        stored = session.get_one(Coupon, coupon["id"])
        assert stored.status == "redeemed" and stored.points_awarded == 250
        bonuses = session.scalar(
            select(func.count())
            .select_from(LedgerEntry)
            .where(LedgerEntry.member_id == coupon["member_id"], LedgerEntry.kind == "bonus",
                   LedgerEntry.reason == f"coupon {stored.code}")
        )  # fmt: skip
        assert bonuses == 1
        assert session.get_one(Member, coupon["member_id"]).points == points + 250


def test_sixteen_replays_of_one_key_answer_the_first_result(
    live_server: LiveServer, brand: BrandKeys
) -> None:
    coupon, _ = _coupon(live_server, brand, kind="percent_off", value="15")
    with ThreadPoolExecutor(PARALLEL) as pool:
        responses = list(
            pool.map(lambda _: _redeem(live_server, brand, coupon["barcode"], "same"),
                     range(PARALLEL))
        )  # fmt: skip
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * (PARALLEL - 1) + [201], [r.text for r in responses]
    bodies = {str(sorted(r.json().items())) for r in responses}
    assert len(bodies) == 1
    assert responses[0].json()["discount"] == "6.00"
