"""Enrolling members and reading them back through the JSON API."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
import zxingcpp
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import func, select

from tests.conftest import SECRET
from tests.factories import BrandKeys, FrozenClock, enroll, make_brand, scan, services_of
from walletd.loyalty.barcodes import make_barcode
from walletd.loyalty.brands import revoke_api_key
from walletd.models import Card, LedgerEntry, Member


def _ledger(client: FlaskClient, brand: BrandKeys, member_id: int) -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/members/{member_id}/ledger", headers=brand.admin)
    assert response.status_code == 200, response.get_data(as_text=True)
    entries: list[dict[str, Any]] = response.get_json()["entries"]
    return entries


def _local(url: str) -> str:
    """The path and query of an absolute URL, to fetch it from the test client."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def _assert_error(response: Any, status: int, code: str, field: str | None = None) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    if field is not None:
        assert error.get("field") == field


def _post_member(client: FlaskClient, brand: BrandKeys, body: Any) -> Any:
    return client.post("/api/v1/members", json=body, headers=brand.admin)


def test_enrollment_answers_201_with_the_contract_member_body(
    client: FlaskClient, brand: BrandKeys
) -> None:
    response = _post_member(client, brand, {"name": "Ada Lovelace", "email": "ada@example.com"})
    assert response.status_code == 201
    body = response.get_json()
    assert isinstance(body["id"], int)
    assert body["name"] == "Ada Lovelace"
    assert body["points"] == 50  # the default program's welcome bonus
    assert body["tier"] == "Silver"
    card = body["card"]
    assert set(card) == {"serial_number", "barcode", "qr_url", "apple_pass_url", "google_save_url"}
    assert card["serial_number"]
    assert card["barcode"] == make_barcode(card["serial_number"], SECRET)
    assert card["google_save_url"] is None


def test_enrollment_card_links_are_absolute_urls_on_the_base_url(
    client: FlaskClient, brand: BrandKeys
) -> None:
    card = enroll(client, brand)["card"]
    for name in ("qr_url", "apple_pass_url"):
        parts = urlsplit(card[name])
        assert (parts.scheme, parts.netloc) == ("http", "walletd.test"), card[name]
        assert card["serial_number"] in parts.path


def test_enrollment_stores_the_optional_fields(client: FlaskClient, brand: BrandKeys) -> None:
    body = enroll(
        client,
        brand,
        name="  Grace Hopper ",
        email="Grace@Example.COM",
        phone="+1 650-253-0000",
        birthday="1990-12-09",
        marketing_consent=True,
    )
    assert body["name"] == "Grace Hopper"
    assert body["email"] == "grace@example.com"
    assert body["phone"] == "+16502530000"  # stored in E.164 (issue 9)
    assert body["birthday"] == "1990-12-09"
    assert body["marketing_consent"] is True


def test_each_member_gets_a_distinct_card(client: FlaskClient, brand: BrandKeys) -> None:
    first = enroll(client, brand)["card"]
    second = enroll(client, brand)["card"]
    assert first["serial_number"] != second["serial_number"]
    assert first["barcode"] != second["barcode"]


def test_get_member_answers_the_same_body_as_enrollment(
    client: FlaskClient, brand: BrandKeys
) -> None:
    created = enroll(client, brand)
    response = client.get(f"/api/v1/members/{created['id']}", headers=brand.admin)
    assert response.status_code == 200
    assert response.get_json() == created


def test_qr_png_decodes_to_exactly_the_barcode_text(client: FlaskClient, brand: BrandKeys) -> None:
    card = enroll(client, brand)["card"]
    response = client.get(_local(card["qr_url"]))
    assert response.status_code == 200
    assert response.mimetype == "image/png"
    results = zxingcpp.read_barcodes(Image.open(io.BytesIO(response.data)))
    assert [result.text for result in results] == [card["barcode"]]


def test_qr_png_with_a_wrong_or_missing_signature_is_not_found(
    client: FlaskClient, brand: BrandKeys
) -> None:
    serial = enroll(client, brand)["card"]["serial_number"]
    for query in ("?sig=0123456789abcdef0123456789abcdef", "?sig=", "", "?sig=" + "a" * 5000):
        _assert_error(client.get(f"/cards/{serial}/qr.png{query}"), 404, "not_found")


def test_qr_png_of_an_unknown_serial_is_not_found(client: FlaskClient, brand: BrandKeys) -> None:
    card = enroll(client, brand)["card"]
    url = _local(card["qr_url"]).replace(card["serial_number"], "A" * 24)
    _assert_error(client.get(url), 404, "not_found")


def test_qr_png_with_a_tampered_signature_is_not_found(
    client: FlaskClient, brand: BrandKeys
) -> None:
    url = _local(enroll(client, brand)["card"]["qr_url"])
    tampered = url[:-1] + ("0" if url[-1] != "0" else "1")
    _assert_error(client.get(tampered), 404, "not_found")


def test_qr_png_signature_of_another_card_is_not_found(
    client: FlaskClient, brand: BrandKeys
) -> None:
    first = enroll(client, brand)["card"]
    second = enroll(client, brand)["card"]
    sig = urlsplit(first["qr_url"]).query
    _assert_error(client.get(f"/cards/{second['serial_number']}/qr.png?{sig}"), 404, "not_found")


def test_enrollment_writes_the_welcome_bonus_to_the_ledger(
    client: FlaskClient, brand: BrandKeys
) -> None:
    member = enroll(client, brand)
    entries = _ledger(client, brand, member["id"])
    assert len(entries) == 1
    assert entries[0]["kind"] == "bonus"
    assert entries[0]["points"] == 50
    assert entries[0]["reason"] == "welcome"
    assert entries[0]["expires_at"] is not None


INVALID_ENROLLMENTS: dict[str, list[dict[str, Any]]] = {
    "name": [
        {},
        {"email": "ada@example.com"},
        {"name": None},
        {"name": 42},
        {"name": ["Ada"]},
        {"name": ""},
        {"name": "   "},
        {"name": "x" * 201},
    ],
    "email": [
        {"name": "Ada", "email": "not-an-email"},
        {"name": "Ada", "email": "ada@example"},
        {"name": "Ada", "email": "a b@example.com"},
        {"name": "Ada", "email": 7},
    ],
    "phone": [{"name": "Ada", "phone": "call me"}, {"name": "Ada", "phone": 5551234}],
    "birthday": [
        {"name": "Ada", "birthday": "1990-13-01"},
        {"name": "Ada", "birthday": "1990-02-30"},
        {"name": "Ada", "birthday": "19900101"},
        {"name": "Ada", "birthday": "1990-1-1"},
        {"name": "Ada", "birthday": "01/02/1990"},
        {"name": "Ada", "birthday": "1990-W01-1"},
        {"name": "Ada", "birthday": "1990-01-01T00:00"},
        {"name": "Ada", "birthday": 19900101},
        {"name": "Ada", "birthday": "2026-03-11"},  # tomorrow by the test clock
        {"name": "Ada", "birthday": "2999-01-01"},
        {"name": "Ada", "birthday": "1899-12-31"},
    ],
    "marketing_consent": [
        {"name": "Ada", "marketing_consent": "yes"},
        {"name": "Ada", "marketing_consent": 1},
        {"name": "Ada", "marketing_consent": None},
    ],
    "referral_code": [
        {"name": "Ada", "referral_code": "NOSUCHCD"},
        {"name": "Ada", "referral_code": 12345678},
    ],
    "program_id": [
        {"name": "Ada", "program_id": "1"},
        {"name": "Ada", "program_id": True},
    ],
}


@pytest.mark.parametrize("field", sorted(INVALID_ENROLLMENTS))
def test_invalid_enrollment_is_refused_with_the_field(
    client: FlaskClient, brand: BrandKeys, field: str
) -> None:
    for body in INVALID_ENROLLMENTS[field]:
        response = _post_member(client, brand, body)
        assert response.status_code == 422, body
        error = response.get_json()["error"]
        assert (error["code"], error.get("field")) == ("validation_error", field), body


def test_refused_enrollment_creates_no_member(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    assert _post_member(client, brand, {"name": "Ada", "email": "nope"}).status_code == 422
    assert _post_member(client, brand, {"name": "Ada", "referral_code": "NOPE"}).status_code == 422
    with services_of(app).db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Member)) == 0
        assert session.scalar(select(func.count()).select_from(Card)) == 0
        assert session.scalar(select(func.count()).select_from(LedgerEntry)) == 0


def test_birthday_today_is_accepted(client: FlaskClient, brand: BrandKeys) -> None:
    assert enroll(client, brand, birthday="2026-03-10")["birthday"] == "2026-03-10"


def test_referral_code_is_accepted_case_insensitively(
    client: FlaskClient, brand: BrandKeys
) -> None:
    referrer = enroll(client, brand)
    referred = enroll(client, brand, referral_code=f" {referrer['referral_code'].lower()} ")
    assert referred["id"] != referrer["id"]


def test_referral_code_of_another_brand_is_unknown(app: Flask, client: FlaskClient) -> None:
    first, second = make_brand(app, "First"), make_brand(app, "Second")
    code = enroll(client, first)["referral_code"]
    response = _post_member(client, second, {"name": "Ada", "referral_code": code})
    _assert_error(response, 422, "validation_error", "referral_code")


def test_program_of_another_brand_is_not_found(app: Flask, client: FlaskClient) -> None:
    first, second = make_brand(app, "First"), make_brand(app, "Second")
    response = _post_member(client, first, {"name": "Ada", "program_id": second.program_id})
    _assert_error(response, 404, "not_found")


def test_cashier_key_may_not_manage_members(client: FlaskClient, brand: BrandKeys) -> None:
    member_id = enroll(client, brand)["id"]
    for method, path in [
        ("POST", "/api/v1/members"),
        ("GET", f"/api/v1/members/{member_id}"),
        ("GET", f"/api/v1/members/{member_id}/ledger"),
    ]:
        response = client.open(path, method=method, json={"name": "Ada"}, headers=brand.cashier)
        _assert_error(response, 403, "forbidden")


BAD_AUTHORIZATIONS: list[dict[str, str]] = [
    {},
    {"Authorization": ""},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer "},
    {"Authorization": "Bearer wd_a_not-a-real-key"},
    {"Authorization": "Basic dXNlcjpwYXNz"},
    {"Authorization": "Bearer " + "x" * 500},
]


def test_missing_or_wrong_key_is_unauthorized(client: FlaskClient, brand: BrandKeys) -> None:
    for headers in BAD_AUTHORIZATIONS:
        response = client.post("/api/v1/members", json={"name": "Ada"}, headers=headers)
        _assert_error(response, 401, "unauthorized")
        assert response.headers["WWW-Authenticate"].startswith("Bearer"), headers


def test_key_of_the_right_brand_in_lowercase_scheme_is_accepted(
    client: FlaskClient, brand: BrandKeys
) -> None:
    headers = {"Authorization": f"bearer {brand.creds.admin_key}"}
    assert client.post("/api/v1/members", json={"name": "Ada"}, headers=headers).status_code == 201


def test_revoked_key_is_unauthorized(
    app: Flask, client: FlaskClient, brand: BrandKeys, clock: FrozenClock
) -> None:
    enroll(client, brand)
    with services_of(app).db.transaction() as session:
        revoked = revoke_api_key(session, brand.brand_id, brand.creds.admin_key, now=clock())
    assert revoked == 1
    response = client.post("/api/v1/members", json={"name": "Ada"}, headers=brand.admin)
    _assert_error(response, 401, "unauthorized")
    # The cashier key of the same brand still works.
    assert client.post("/api/v1/scans", json={}, headers=brand.cashier).status_code == 422


def test_member_of_another_brand_is_not_found(app: Flask, client: FlaskClient) -> None:
    first, second = make_brand(app, "First"), make_brand(app, "Second")
    member = enroll(client, first)
    _assert_error(
        client.get(f"/api/v1/members/{member['id']}", headers=second.admin), 404, "not_found"
    )
    _assert_error(
        client.get(f"/api/v1/members/{member['id']}/ledger", headers=second.admin),
        404,
        "not_found",
    )
    assert client.get(f"/api/v1/members/{member['id']}", headers=first.admin).status_code == 200


def test_unknown_member_is_not_found(client: FlaskClient, brand: BrandKeys) -> None:
    _assert_error(client.get("/api/v1/members/999999", headers=brand.admin), 404, "not_found")
    _assert_error(
        client.get("/api/v1/members/999999/ledger", headers=brand.admin), 404, "not_found"
    )


def test_ledger_lists_entries_newest_first(
    client: FlaskClient, brand: BrandKeys, clock: FrozenClock
) -> None:
    member = enroll(client, brand)
    barcode = member["card"]["barcode"]
    clock.advance(hours=1)
    assert scan(client, brand, barcode, "20.00", "scan-1").status_code == 201
    clock.advance(hours=1)
    assert scan(client, brand, barcode, "5.00", "scan-2").status_code == 201
    clock.advance(hours=1)
    headers = {**brand.cashier, "Idempotency-Key": "redeem-1"}
    redeemed = client.post(
        "/api/v1/redemptions", json={"barcode": barcode, "points": 10}, headers=headers
    )
    assert redeemed.status_code == 201

    entries = _ledger(client, brand, member["id"])
    assert [(e["kind"], e["points"]) for e in entries] == [
        ("redeem", -10),
        ("earn", 5),
        ("earn", 20),
        ("bonus", 50),
    ]
    times = [datetime.fromisoformat(e["created_at"]) for e in entries]
    assert times == sorted(times, reverse=True)
    assert entries[1]["amount"] == "5.00"
    assert entries[1]["currency"] == "USD"


def test_ledger_entries_made_in_the_same_instant_are_newest_first_by_id(
    client: FlaskClient, brand: BrandKeys
) -> None:
    member = enroll(client, brand)
    barcode = member["card"]["barcode"]
    for index, amount in enumerate(["1.00", "2.00", "3.00"]):
        assert scan(client, brand, barcode, amount, f"same-instant-{index}").status_code == 201
    entries = _ledger(client, brand, member["id"])
    assert [e["points"] for e in entries] == [3, 2, 1, 50]
    assert [e["id"] for e in entries] == sorted((e["id"] for e in entries), reverse=True)


def test_member_timestamps_are_the_app_clock(client: FlaskClient, brand: BrandKeys) -> None:
    created = datetime.fromisoformat(enroll(client, brand)["created_at"])
    assert created == datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
