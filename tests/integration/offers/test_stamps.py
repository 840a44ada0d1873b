"""Stamp cards: the settings route, a stamp per qualifying visit, a full card issues the offer."""

from __future__ import annotations

import itertools
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tests.factories import BrandKeys, enroll, make_brand, scan, services_of
from walletd.models import Coupon, Member
from walletd.offers.catalog import OfferInput, archive_offer, create_offer

GENERATED = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
KEYS = itertools.count()


def _offer(app: Flask, brand: BrandKeys, *, archived: bool = False) -> int:
    svc = services_of(app)
    data = OfferInput(program_id=brand.program_id, name="Free coffee", kind="free_item",
                      item="Coffee")  # fmt: skip
    with svc.db.transaction() as session:
        offer = create_offer(session, brand.brand_id, data, svc.context())
        if archived:
            archive_offer(session, brand.brand_id, offer.id, svc.context())
        return offer.id


def _put(client: FlaskClient, brand: BrandKeys, program_id: int | None = None, **body: Any) -> Any:
    return client.put(
        f"/api/v1/programs/{program_id or brand.program_id}/stamps", json=body, headers=brand.admin
    )


def _scan(client: FlaskClient, brand: BrandKeys, barcode: str, amount: str) -> dict[str, Any]:
    response = scan(client, brand, barcode, amount, f"stamp-{next(KEYS)}")
    assert response.status_code == 201, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    return body


def _coupons(app: Flask, member_id: int) -> list[tuple[str, str]]:
    with services_of(app).db.transaction() as session:
        rows = session.execute(
            select(Coupon.source, Coupon.occasion)
            .where(Coupon.member_id == member_id)
            .order_by(Coupon.id)
        ).all()
        return [(r[0], r[1]) for r in rows]


def test_stamp_settings_are_checked(client: FlaskClient, app: Flask, brand: BrandKeys) -> None:
    offer_id = _offer(app, brand)
    ok = _put(client, brand, enabled=True, stamps_per_reward=10, min_spend="3.50",
              offer_id=offer_id)  # fmt: skip
    assert ok.status_code == 200, ok.get_data(as_text=True)
    assert ok.get_json() == {
        "program_id": brand.program_id, "enabled": True, "stamps_per_reward": 10,
        "min_spend": "3.50", "offer_id": offer_id,
    }  # fmt: skip
    for size in (0, 1, 51, 1000, "10", True):
        response = _put(client, brand, enabled=True, stamps_per_reward=size, offer_id=offer_id)
        assert response.status_code == 422, size
    archived = _offer(app, brand, archived=True)
    other = make_brand(app, "Other")
    foreign = _offer(app, other)
    for bad in (archived, foreign, 2**31 - 1, None):
        response = _put(client, brand, enabled=True, stamps_per_reward=5, offer_id=bad)
        assert response.status_code == 422, bad
        assert response.get_json()["error"]["field"] == "offer_id"
    bad_spend = _put(client, brand, enabled=True, stamps_per_reward=5, offer_id=offer_id,
                     min_spend="1.001")  # fmt: skip
    assert bad_spend.status_code == 422
    assert bad_spend.get_json()["error"]["field"] == "min_spend"
    assert _put(client, brand, enabled=False, stamps_per_reward=5).status_code == 200
    assert _put(client, other, brand.program_id, enabled=False,
                stamps_per_reward=5).status_code == 404  # fmt: skip
    cashier = client.put(
        f"/api/v1/programs/{brand.program_id}/stamps",
        json={"enabled": False, "stamps_per_reward": 5},
        headers=brand.cashier,
    )
    assert cashier.status_code == 403  # fmt: skip


def test_a_full_card_issues_the_offer_and_starts_again(
    client: FlaskClient, app: Flask, brand: BrandKeys
) -> None:
    member = enroll(client, brand)
    barcode = member["card"]["barcode"]
    assert _scan(client, brand, barcode, "1.00")["stamps"] is None  # no stamp card yet
    offer_id = _offer(app, brand)
    _put(client, brand, enabled=True, stamps_per_reward=3, min_spend="2.00", offer_id=offer_id)
    assert _scan(client, brand, barcode, "2.00")["stamps"] == {"count": 1, "of": 3}
    assert _scan(client, brand, barcode, "1.99")["stamps"] == {"count": 1, "of": 3}
    assert _scan(client, brand, barcode, "5.00")["stamps"] == {"count": 2, "of": 3}
    assert _coupons(app, member["id"]) == []
    assert _scan(client, brand, barcode, "5.00")["stamps"] == {"count": 0, "of": 3}
    assert _coupons(app, member["id"]) == [("stamps", "stamps:1")]
    for _ in range(3):
        _scan(client, brand, barcode, "9.00")
    assert _coupons(app, member["id"]) == [("stamps", "stamps:1"), ("stamps", "stamps:2")]


def test_a_stamp_replay_answers_the_first_body_and_stamps_once(
    client: FlaskClient, app: Flask, brand: BrandKeys
) -> None:
    member = enroll(client, brand)
    _put(client, brand, enabled=True, stamps_per_reward=2, offer_id=_offer(app, brand))
    first = scan(client, brand, member["card"]["barcode"], "3.00", "stamp-replay")
    again = scan(client, brand, member["card"]["barcode"], "3.00", "stamp-replay")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json() == first.get_json()
    assert first.get_json()["stamps"] == {"count": 1, "of": 2}
    with services_of(app).db.transaction() as session:
        assert session.get_one(Member, member["id"]).stamps == 1


@GENERATED
@given(
    size=st.integers(2, 6),
    minimum=st.none() | st.integers(1, 500),
    amounts=st.lists(st.integers(1, 1000), min_size=1, max_size=14),
)
def test_stamps_count_qualifying_visits_and_each_full_card_issues_one_coupon(
    client: FlaskClient, app: Flask, size: int, minimum: int | None, amounts: list[int]
) -> None:
    brand = make_brand(app, "Generated")
    offer_id = _offer(app, brand)
    spend = None if minimum is None else f"{minimum / 100:.2f}"
    response = _put(client, brand, enabled=True, stamps_per_reward=size, min_spend=spend,
                    offer_id=offer_id)  # fmt: skip
    assert response.status_code == 200
    member = enroll(client, brand)
    qualifying = 0
    for amount in amounts:
        body = _scan(client, brand, member["card"]["barcode"], f"{amount / 100:.2f}")
        qualifying += minimum is None or amount >= minimum
        assert body["stamps"] == {"count": qualifying % size, "of": size}
    full = qualifying // size
    assert _coupons(app, member["id"]) == [("stamps", f"stamps:{n}") for n in range(1, full + 1)]
