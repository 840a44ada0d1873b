"""The stores on an Apple pass: `locations` with their lock-screen text and `maxDistance`, on
store cards and on coupons that can still be used."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from walletd.passes.pkpass import load_template, render_pass_json
from walletd.passes.view import CardView, CouponView, StoreView

STORES = (
    StoreView(25.033964, 121.564468, "Main Street"),
    StoreView(25.047675, 121.517055, "Station"),
)


def _render(view: CardView, templates_root: Path) -> dict[str, object]:
    return render_pass_json(
        view,
        pass_type_id="pass.example",
        team_id="TEAM",
        web_service_url="https://cards.example.com/",
        template=load_template(templates_root, "default"),
    )


def _coupon(view: CardView, status: str) -> CardView:
    coupon = CouponView(
        offer_name="Free tea",
        offer_kind="free_item",
        value=None,
        item="tea",
        currency="USD",
        code="TEA-1234",
        status=status,
        expires_at=None,
    )
    return replace(view, kind="coupon", coupon=coupon)


def test_stores_replace_the_bare_locations_and_carry_their_text_and_distance(
    card_view: CardView, templates_root: Path
) -> None:
    document = _render(replace(card_view, stores=STORES, max_distance=200), templates_root)
    assert document["locations"] == [
        {"latitude": 25.033964, "longitude": 121.564468, "relevantText": "Main Street"},
        {"latitude": 25.047675, "longitude": 121.517055, "relevantText": "Station"},
    ]
    assert document["maxDistance"] == 200


def test_at_most_ten_stores_are_rendered(card_view: CardView, templates_root: Path) -> None:
    many = tuple(StoreView(25.0 + n / 100, 121.5, f"Shop {n}") for n in range(12))
    document = _render(replace(card_view, stores=many), templates_root)
    assert len(document["locations"]) == 10  # type: ignore[arg-type]
    assert "maxDistance" not in document


def test_a_closed_card_surfaces_nowhere(card_view: CardView, templates_root: Path) -> None:
    document = _render(
        replace(card_view, stores=STORES, max_distance=200, voided=True), templates_root
    )
    assert "locations" not in document and "maxDistance" not in document


@pytest.mark.parametrize(("status", "shown"), [("active", True), ("redeemed", False),
                                               ("expired", False), ("void", False)])  # fmt: skip
def test_only_a_usable_coupon_comes_up_at_the_store(
    card_view: CardView, templates_root: Path, status: str, shown: bool
) -> None:
    view = _coupon(replace(card_view, stores=STORES, max_distance=150), status)
    document = _render(view, templates_root)
    assert ("locations" in document) is shown
    assert ("maxDistance" in document) is shown
