"""Offer pages: build, edit, archive, issue and report; coupons at the till and on the card."""

from __future__ import annotations

import re
from datetime import UTC
from decimal import Decimal
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tests.factories import BrandKeys, FrozenClock, enroll, make_brand, services_of, set_timezone
from tests.integration.pages.conftest import csrf_of, log_in, make_staff
from walletd.models import Coupon, Offer, Promotion

SUPPRESS = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
FORM = {
    "name": "Ten off",
    "kind": "percent_off",
    "value": "10",
    "item": "",
    "min_spend": "",
    "valid_from": "",
    "valid_until": "",
    "valid_days": "30",
    "per_member_limit": "",
    "terms": "One per visit.",
}


def _post(client: FlaskClient, path: str, data: dict[str, str]) -> Any:
    return client.post(path, data={"csrf_token": csrf_of(client, "/dashboard/offers"), **data})


def _create(client: FlaskClient, **fields: str) -> int:
    response = _post(client, "/dashboard/offers/new", {**FORM, **fields})
    assert response.status_code == 303, response.get_data(as_text=True)
    match = re.search(r"/dashboard/offers/(\d+)$", response.headers["Location"])
    assert match
    return int(match.group(1))


def _offer(app: Flask, offer_id: int) -> Offer:
    with services_of(app).db.transaction() as session:
        offer = session.get_one(Offer, offer_id)
        session.expunge(offer)
        return offer


def _coupons(app: Flask, offer_id: int) -> list[Coupon]:
    with services_of(app).db.transaction() as session:
        found = list(session.scalars(select(Coupon).where(Coupon.offer_id == offer_id)).all())
        for coupon in found:
            session.expunge(coupon)
        return found


def test_the_builder_shows_every_field_the_tiers_and_a_coupon_preview(
    dashboard: FlaskClient,
) -> None:
    page = dashboard.get("/dashboard/offers/new")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    for name in ("name", "kind", "value", "item", "min_spend", "valid_from", "valid_until",
                 "valid_days", "per_member_limit", "terms"):  # fmt: skip
        assert f'name="{name}"' in html, name
    assert 'name="tier_value-' in html and ">Silver<" in html
    assert 'data-preview="coupon"' in html and "10% off" in html
    assert "offer-builder.js" in html and "<script>" not in html and "style=" not in html
    assert 'href="/dashboard/offers"' in dashboard.get("/dashboard").get_data(as_text=True)


def test_create_edit_archive_and_list(app: Flask, dashboard: FlaskClient) -> None:
    offer_id = _create(dashboard, **{"tier_value-1": ""})
    offer = _offer(app, offer_id)
    assert (offer.name, offer.kind, offer.value, offer.valid_days) == (
        "Ten off", "percent_off", Decimal("10"), 30
    )  # fmt: skip
    edit = dashboard.get(f"/dashboard/offers/{offer_id}/edit").get_data(as_text=True)
    assert 'value="Ten off"' in edit and "One per visit." in edit

    tier_field = re.search(r'name="(tier_value-\d+)"', edit)
    assert tier_field
    response = _post(
        dashboard,
        f"/dashboard/offers/{offer_id}/edit",
        {**FORM, "name": "Free muffin", "kind": "free_item", "value": "", "item": "Muffin",
         "min_spend": "5", "valid_from": "2030-01-01", "valid_until": "2030-01-31",
         "per_member_limit": "2"},
    )  # fmt: skip
    assert response.status_code == 303
    offer = _offer(app, offer_id)
    assert (offer.kind, offer.item, offer.value, offer.min_spend_minor) == (
        "free_item", "Muffin", None, 500
    )  # fmt: skip
    assert offer.valid_from and offer.valid_until and offer.per_member_limit == 2
    edit = dashboard.get(f"/dashboard/offers/{offer_id}/edit").get_data(as_text=True)
    assert 'value="2030-01-01"' in edit and 'value="2030-01-31"' in edit

    gold = _post(
        dashboard,
        f"/dashboard/offers/{offer_id}/edit",
        {**FORM, tier_field.group(1): "25"},
    )
    assert gold.status_code == 303
    assert _offer(app, offer_id).tier_values == {"Silver": "25"}

    listing = dashboard.get("/dashboard/offers").get_data(as_text=True)
    assert "Ten off" in listing and "Active" in listing
    archived = _post(dashboard, f"/dashboard/offers/{offer_id}/archive", {})
    assert archived.status_code == 303
    assert _offer(app, offer_id).status == "archived"
    assert "Archived" in dashboard.get("/dashboard/offers").get_data(as_text=True)


def test_issue_to_a_member_by_number_or_email_once_per_form_and_the_report(
    app: Flask, brand: BrandKeys, dashboard: FlaskClient
) -> None:
    ada = enroll(app.test_client(), brand, email="ada@example.com")
    offer_id = _create(dashboard)
    page = dashboard.get(f"/dashboard/offers/{offer_id}").get_data(as_text=True)
    key = re.search(r'name="issue_key" value="([0-9a-f]+)"', page)
    assert key
    path = f"/dashboard/offers/{offer_id}/issue"
    for _ in range(2):  # a double submit of one form issues one coupon
        form = {"target": "member", "member": str(ada["id"]), "issue_key": key.group(1)}
        assert _post(dashboard, path, form).status_code == 303
    assert len(_coupons(app, offer_id)) == 1
    by_email = {"target": "member", "member": "ADA@example.com", "issue_key": "other"}
    assert _post(dashboard, path, by_email).status_code == 303
    assert len(_coupons(app, offer_id)) == 2

    unknown = _post(dashboard, path, {"target": "member", "member": "nobody@example.com"})
    assert unknown.status_code == 422
    assert "no member has this number or e-mail" in unknown.get_data(as_text=True)
    segment = _post(dashboard, path, {"target": "segment", "preset": "all"})
    assert segment.status_code == 303
    assert "Issuing to the segment has started" in dashboard.get(
        segment.headers["Location"]
    ).get_data(as_text=True)

    report = dashboard.get(f"/dashboard/offers/{offer_id}").get_data(as_text=True)
    assert re.search(r'id="stat-issued">2<', report)
    assert re.search(r'id="stat-redeemed">0<', report)
    assert re.search(r'id="stat-rate">0.0%<', report)


def test_another_brands_offer_is_not_found(
    app: Flask, brand: BrandKeys, dashboard: FlaskClient
) -> None:
    other = make_brand(app, "Other Cafe")
    theirs = app.test_client()
    log_in(theirs, make_staff(app, other.brand_id, "boss@other.example"))
    their_offer = _create(theirs)
    assert dashboard.get(f"/dashboard/offers/{their_offer}").status_code == 404
    assert dashboard.get(f"/dashboard/offers/{their_offer}/edit").status_code == 404
    for path in ("edit", "archive", "issue"):
        response = _post(dashboard, f"/dashboard/offers/{their_offer}/{path}", FORM)
        assert response.status_code == 404, path
    assert _offer(app, their_offer).name == "Ten off"
    assert _offer(app, their_offer).status == "active"
    assert dashboard.get("/dashboard/offers/99999999999").status_code == 404


def test_bad_input_re_renders_the_form_with_the_error_next_to_the_field(
    dashboard: FlaskClient,
) -> None:
    cases = {
        "value": {"value": "150"},
        "name": {"name": "   "},
        "kind": {"kind": "everything"},
        "item": {"kind": "free_item", "value": "", "item": ""},
        "valid_days": {"valid_days": "٣"},
        "per_member_limit": {"per_member_limit": "99999999999999999999999"},
        "valid_until": {"valid_from": "2030-02-01", "valid_until": "2030-01-01"},
        "valid_from": {"valid_from": "0001-01-01"},
        "min_spend": {"min_spend": "-3"},
    }
    for field, change in cases.items():
        response = _post(dashboard, "/dashboard/offers/new", {**FORM, **change})
        html = response.get_data(as_text=True)
        assert response.status_code == 422, field
        assert f'id="f-{field}-error"' in html, (field, html[:3000])
        assert 'data-preview="coupon"' in html


@settings(max_examples=60, deadline=None, suppress_health_check=SUPPRESS)
@given(
    fields=st.fixed_dictionaries(
        {},
        optional={
            name: st.one_of(
                st.text(max_size=30),
                st.from_regex(r"-?[0-9]{1,25}(\.[0-9]{0,5})?", fullmatch=True),
                st.sampled_from(
                    [
                        "percent_off",
                        "amount_off",
                        "free_item",
                        "bonus_points",
                        "2030-13-01",
                        "9999-12-31",
                        "2000-01-01",
                        "",
                    ]
                ),  # fmt: skip
            )
            for name in (*FORM, "tier_value-1", "tier_value-2")
        },
    )
)
def test_generated_builder_forms_never_fail_with_a_server_error(
    dashboard: FlaskClient, fields: dict[str, str]
) -> None:
    clean = {k: v.replace("\x00", "") for k, v in fields.items()}
    response = _post(dashboard, "/dashboard/offers/new", clean)
    assert response.status_code in (303, 400, 422), response.get_data(as_text=True)[:2000]


def _coupon_for(app: Flask, brand: BrandKeys, dashboard: FlaskClient, **fields: str) -> Any:
    member = enroll(app.test_client(), brand)
    offer_id = _create(dashboard, **fields)
    form = {"target": "member", "member": str(member["id"]), "issue_key": "k"}
    assert _post(dashboard, f"/dashboard/offers/{offer_id}/issue", form).status_code == 303
    (coupon,) = _coupons(app, offer_id)
    return member, offer_id, coupon


def _till(app: Flask, brand: BrandKeys) -> tuple[FlaskClient, dict[str, str]]:
    client = app.test_client()
    log_in(client, make_staff(app, brand.brand_id, "till@acme.example", role="cashier"), "cashier")
    return client, {"X-CSRF-Token": csrf_of(client, "/cashier")}


def test_a_scan_lists_the_members_coupons_and_the_till_redeems_one_exactly_once(
    app: Flask, brand: BrandKeys, dashboard: FlaskClient
) -> None:
    member, offer_id, coupon = _coupon_for(app, brand, dashboard, value="10")
    till, headers = _till(app, brand)
    scanned = till.post(
        "/cashier/api/scan",
        json={"barcode": member["card"]["barcode"], "amount": "40.00"},
        headers={**headers, "Idempotency-Key": "scan-1"},
    )
    assert scanned.status_code == 201
    listed = scanned.get_json()["coupons"]
    assert [(c["barcode"], c["name"], c["value"]) for c in listed] == [
        (coupon.barcode, "Ten off", "10")
    ]
    for status in (201, 200):  # the same key again replays the first answer
        response = till.post(
            "/cashier/api/coupons/redeem",
            json={"barcode": coupon.barcode, "amount": "40.00"},
            headers={**headers, "Idempotency-Key": "coupon-1"},
        )
        body = response.get_json()
        assert response.status_code == status, body
        assert (body["discount"], body["name"], body["coupons"]) == ("4.00", member["name"], [])
        assert body["replayed"] is (status == 200)
    again = till.post(
        "/cashier/api/coupons/redeem",
        json={"barcode": coupon.barcode, "amount": "40.00"},
        headers={**headers, "Idempotency-Key": "coupon-2"},
    )
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "coupon_redeemed"
    assert [c.status for c in _coupons(app, offer_id)] == ["redeemed"]
    report = dashboard.get(f"/dashboard/offers/{offer_id}").get_data(as_text=True)
    assert re.search(r'id="stat-redeemed">1<', report)
    assert re.search(r'id="stat-rate">100.0%<', report)
    assert re.search(r'id="stat-discount">4.00<', report)
    assert re.search(r'id="stat-revenue">40.00<', report)


def test_the_till_needs_its_csrf_header_and_refuses_another_brands_coupon(
    app: Flask, brand: BrandKeys, dashboard: FlaskClient
) -> None:
    _member, _offer_id, coupon = _coupon_for(app, brand, dashboard, min_spend="20")
    till, headers = _till(app, brand)
    path = "/cashier/api/coupons/redeem"
    no_csrf = till.post(path, json={"barcode": coupon.barcode}, headers={"Idempotency-Key": "a"})
    assert no_csrf.status_code == 403
    below = till.post(path, json={"barcode": coupon.barcode, "amount": "5"},
                      headers={**headers, "Idempotency-Key": "b"})  # fmt: skip
    assert below.status_code == 422 and below.get_json()["error"]["code"] == "below_min_spend"
    other = make_brand(app, "Other Cafe")
    their_till = app.test_client()
    log_in(their_till, make_staff(app, other.brand_id, "till@other.example", "cashier"), "cashier")
    their_headers = {"X-CSRF-Token": csrf_of(their_till, "/cashier"), "Idempotency-Key": "c"}
    foreign = their_till.post(path, json={"barcode": coupon.barcode, "amount": "50"},
                              headers=their_headers)  # fmt: skip
    assert foreign.status_code == 404
    assert foreign.get_json()["error"]["code"] == "unknown_coupon"
    assert [c.status for c in _coupons(app, coupon.offer_id)] == ["active"]


def test_the_card_page_lists_active_coupons_with_their_apple_wallet_link(
    app: Flask, brand: BrandKeys, dashboard: FlaskClient
) -> None:
    member, offer_id, coupon = _coupon_for(app, brand, dashboard, valid_days="30")
    card_page = app.test_client().get(_card_path(app, member))
    html = card_page.get_data(as_text=True)
    assert card_page.status_code == 200
    assert 'id="coupons"' in html and "10% off" in html and "Ten off" in html
    assert coupon.code in html and "Valid until" in html
    assert re.search(r'href="http://[^"]+/cards/[A-Za-z0-9]+/pass.pkpass\?sig=[^"]+"'
                     r' data-wallet-button="apple-coupon"', html)  # fmt: skip
    assert "Google Wallet your coupons appear inside your loyalty card" in html

    till, headers = _till(app, brand)
    till.post("/cashier/api/coupons/redeem", json={"barcode": coupon.code, "amount": "9"},
              headers={**headers, "Idempotency-Key": "k1"})  # fmt: skip
    html = app.test_client().get(_card_path(app, member)).get_data(as_text=True)
    assert 'id="no-coupons"' in html and coupon.code not in html
    zh = app.test_client()
    zh.set_cookie("walletd_lang", "zh-Hant")
    assert "目前沒有優惠券" in zh.get(_card_path(app, member)).get_data(as_text=True)


def test_the_card_page_gives_a_coupons_last_day_in_the_programs_time_zone(
    app: Flask, brand: BrandKeys, dashboard: FlaskClient, clock: FrozenClock
) -> None:
    set_timezone(app, brand, "Asia/Taipei")
    clock.advance(hours=8)  # issued 20:00 UTC on 10 March: 04:00 on 11 March in Taipei
    member, _offer_id, coupon = _coupon_for(app, brand, dashboard, valid_days="30")
    assert coupon.expires_at.astimezone(UTC).day == 9  # 9 April in UTC, 10 April in Taipei
    html = app.test_client().get(_card_path(app, member)).get_data(as_text=True)
    assert "Valid until Apr 10, 2026" in html


def _card_path(app: Flask, member: dict[str, Any]) -> str:
    with app.test_request_context():
        from walletd.web.pages.customer import card_page_url

        return card_page_url(member["card"]["serial_number"])


PROMOTION = {"name": "Member Tuesday", "multiplier": "2", "starts_on": "", "ends_on": "",
             "active": "yes"}  # fmt: skip


def _promotions(app: Flask) -> list[Promotion]:
    with services_of(app).db.transaction() as session:
        found = list(session.scalars(select(Promotion).order_by(Promotion.id)).all())
        for promotion in found:
            session.expunge(promotion)
        return found


def test_promotions_are_created_edited_and_deleted(app: Flask, dashboard: FlaskClient) -> None:
    assert 'href="/dashboard/promotions"' in dashboard.get("/dashboard").get_data(as_text=True)
    created = dashboard.post(
        "/dashboard/promotions",
        data={"csrf_token": csrf_of(dashboard, "/dashboard/promotions"), **PROMOTION,
              "weekdays": ["2"], "tiers": ["Silver", "Nobody"]},
    )  # fmt: skip
    assert created.status_code == 303
    (promo,) = _promotions(app)
    assert (promo.name, promo.multiplier, promo.weekdays, promo.tiers, promo.active) == (
        "Member Tuesday", Decimal("2"), [2], ["Silver"], True
    )  # fmt: skip
    listing = dashboard.get("/dashboard/promotions").get_data(as_text=True)
    assert "Member Tuesday" in listing and "×2" in listing
    edit = dashboard.get(f"/dashboard/promotions/{promo.id}").get_data(as_text=True)
    assert 'value="Member Tuesday"' in edit and re.search(r'value="2"\s+checked', edit)
    # The preview is the member's card while the promotion runs, drawn from the real pass.json.
    preview = edit[edit.index('id="preview-title"') :]
    assert "Member Tuesday" in preview

    changed = dashboard.post(
        f"/dashboard/promotions/{promo.id}",
        data={"csrf_token": csrf_of(dashboard, "/dashboard/promotions"), **PROMOTION,
              "multiplier": "1.5", "starts_on": "2030-05-01", "ends_on": "2030-05-31",
              "active": ""},
    )  # fmt: skip
    assert changed.status_code == 303
    (promo,) = _promotions(app)
    assert (promo.multiplier, promo.weekdays, promo.tiers, promo.active) == (
        Decimal("1.5"), None, None, False
    )  # fmt: skip
    assert str(promo.starts_on) == "2030-05-01" and str(promo.ends_on) == "2030-05-31"

    bad = dashboard.post(
        f"/dashboard/promotions/{promo.id}",
        data={"csrf_token": csrf_of(dashboard, "/dashboard/promotions"), **PROMOTION,
              "multiplier": "11"},
    )  # fmt: skip
    assert bad.status_code == 422 and 'id="f-multiplier-error"' in bad.get_data(as_text=True)
    assert _promotions(app)[0].multiplier == Decimal("1.5")
    deleted = _post(dashboard, f"/dashboard/promotions/{promo.id}/delete", {})
    assert deleted.status_code == 303 and _promotions(app) == []


def test_another_brands_promotion_is_not_found(app: Flask, dashboard: FlaskClient) -> None:
    other = make_brand(app, "Other Cafe")
    theirs = app.test_client()
    log_in(theirs, make_staff(app, other.brand_id, "boss@other.example"))
    token = csrf_of(theirs, "/dashboard/promotions")
    theirs.post("/dashboard/promotions", data={"csrf_token": token, **PROMOTION})
    (promo,) = _promotions(app)
    assert dashboard.get(f"/dashboard/promotions/{promo.id}").status_code == 404
    for path in ("", "/delete"):
        response = _post(dashboard, f"/dashboard/promotions/{promo.id}{path}", PROMOTION)
        assert response.status_code == 404
    assert [p.name for p in _promotions(app)] == ["Member Tuesday"]


@settings(max_examples=60, deadline=None, suppress_health_check=SUPPRESS)
@given(
    fields=st.fixed_dictionaries(
        {},
        optional={
            name: st.one_of(
                st.text(max_size=30),
                st.text(min_size=190, max_size=260),
                st.from_regex(r"-?[0-9]{1,25}(\.[0-9]{0,6})?", fullmatch=True),
                st.sampled_from(["2030-13-01", "9999-12-31", "2000-01-01", "yes", "8", ""]),
            )
            for name in (*PROMOTION, "weekdays", "tiers")
        },
    )
)
def test_generated_promotion_forms_never_fail_with_a_server_error(
    dashboard: FlaskClient, fields: dict[str, str]
) -> None:
    clean = {k: v.replace("\x00", "") for k, v in fields.items()}
    response = _post(dashboard, "/dashboard/promotions", clean)
    assert response.status_code in (303, 400, 422), response.get_data(as_text=True)[:2000]
