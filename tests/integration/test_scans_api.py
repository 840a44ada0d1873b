"""Checkout scans: earning exactly once, refusing bad input, tiers, referrals and reversals."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.conftest import SECRET
from tests.factories import BrandKeys, FrozenClock, enroll, make_brand, scan, services_of
from walletd.loyalty.barcodes import make_barcode
from walletd.models import LedgerEntry, Location, Member


@dataclass(frozen=True)
class Snapshot:
    """What a refused request must leave untouched."""

    points: int
    visits: int
    spend_minor: int
    entries: int


def _snapshot(app: Flask, member_id: int) -> Snapshot:
    with services_of(app).db.transaction() as session:
        member = session.get_one(Member, member_id)
        entries = session.scalar(
            select(func.count()).select_from(LedgerEntry).where(LedgerEntry.member_id == member_id)
        )
        return Snapshot(member.points, member.visits, member.lifetime_spend_minor, entries or 0)


def _ledger(client: FlaskClient, brand: BrandKeys, member_id: int) -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/members/{member_id}/ledger", headers=brand.admin)
    assert response.status_code == 200
    entries: list[dict[str, Any]] = response.get_json()["entries"]
    return entries


def _member(client: FlaskClient, brand: BrandKeys, member_id: int) -> dict[str, Any]:
    response = client.get(f"/api/v1/members/{member_id}", headers=brand.admin)
    assert response.status_code == 200
    body: dict[str, Any] = response.get_json()
    return body


def _raw_scan(client: FlaskClient, brand: BrandKeys, data: str | bytes, **headers: str) -> Any:
    all_headers = {
        **brand.cashier,
        "Idempotency-Key": "raw-1",
        "Content-Type": "application/json",
        **headers,
    }
    return client.post("/api/v1/scans", data=data, headers=all_headers)


def _error(response: Any) -> tuple[int, str, str | None]:
    assert response.mimetype == "application/json", response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert isinstance(error["message"], str) and error["message"]
    return response.status_code, error["code"], error.get("field")


def _reverse(client: FlaskClient, headers: dict[str, str], scan_id: int) -> Any:
    return client.post(f"/api/v1/scans/{scan_id}/reversal", headers=headers)


def test_scan_credits_points_and_answers_201(client: FlaskClient, brand: BrandKeys) -> None:
    member = enroll(client, brand)
    response = scan(client, brand, member["card"]["barcode"], "12.50", "scan-1")
    assert response.status_code == 201
    body = response.get_json()
    assert body["member_id"] == member["id"]
    assert body["points_earned"] == 12
    assert body["balance"] == 62
    assert body["tier"] == "Silver"
    assert body["amount"] == "12.50"
    assert body["currency"] == "USD"
    assert isinstance(body["scan_id"], int)
    assert _member(client, brand, member["id"])["points"] == 62
    assert _member(client, brand, member["id"])["visits"] == 1


def test_scan_with_an_admin_key_is_accepted(client: FlaskClient, brand: BrandKeys) -> None:
    barcode = enroll(client, brand)["card"]["barcode"]
    headers = {**brand.admin, "Idempotency-Key": "admin-scan"}
    response = client.post(
        "/api/v1/scans", json={"barcode": barcode, "amount": "1"}, headers=headers
    )
    assert response.status_code == 201


def test_scan_without_a_key_is_unauthorized(client: FlaskClient, brand: BrandKeys) -> None:
    barcode = enroll(client, brand)["card"]["barcode"]
    response = client.post(
        "/api/v1/scans", json={"barcode": barcode, "amount": "1"}, headers={"Idempotency-Key": "k"}
    )
    assert _error(response)[:2] == (401, "unauthorized")


def test_scan_replay_returns_first_result(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    member = enroll(client, brand)
    barcode = member["card"]["barcode"]
    first = scan(client, brand, barcode, "12.50", "scan-1")
    assert first.status_code == 201
    after_first = _snapshot(app, member["id"])

    replay = scan(client, brand, barcode, "12.50", "scan-1")
    assert replay.status_code == 200
    assert replay.get_json() == first.get_json()
    assert _snapshot(app, member["id"]) == after_first
    assert [e["kind"] for e in _ledger(client, brand, member["id"])].count("earn") == 1


def test_scan_replay_with_an_equivalent_amount_is_a_replay(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    barcode = enroll(client, brand)["card"]["barcode"]
    first = scan(client, brand, barcode, "12.50", "scan-1")
    for same_amount in ("12.5", " 12.50 ", 12.5):
        replay = scan(client, brand, barcode, same_amount, "scan-1")
        assert replay.status_code == 200, same_amount
        assert replay.get_json() == first.get_json()


def test_scan_replay_answers_the_first_result_even_after_later_scans(
    client: FlaskClient, brand: BrandKeys
) -> None:
    barcode = enroll(client, brand)["card"]["barcode"]
    first = scan(client, brand, barcode, "10.00", "scan-1").get_json()
    assert scan(client, brand, barcode, "600.00", "scan-2").get_json()["tier"] == "Gold"
    replay = scan(client, brand, barcode, "10.00", "scan-1")
    assert replay.status_code == 200
    assert replay.get_json() == first
    assert first["tier"] == "Silver"


def test_scan_reused_key_with_a_different_body_is_a_conflict(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    member = enroll(client, brand)
    other = enroll(client, brand, name="Grace Hopper")
    assert scan(client, brand, member["card"]["barcode"], "12.50", "scan-1").status_code == 201
    before = _snapshot(app, member["id"]), _snapshot(app, other["id"])

    different_amount = scan(client, brand, member["card"]["barcode"], "12.51", "scan-1")
    assert _error(different_amount)[:2] == (409, "idempotency_key_reused")
    different_card = scan(client, brand, other["card"]["barcode"], "12.50", "scan-1")
    assert _error(different_card)[:2] == (409, "idempotency_key_reused")
    assert (_snapshot(app, member["id"]), _snapshot(app, other["id"])) == before


def test_idempotency_keys_are_scoped_to_the_brand(app: Flask, client: FlaskClient) -> None:
    first, second = make_brand(app, "First"), make_brand(app, "Second")
    one = enroll(client, first)["card"]["barcode"]
    two = enroll(client, second)["card"]["barcode"]
    assert scan(client, first, one, "5.00", "shared-key").status_code == 201
    assert scan(client, second, two, "7.00", "shared-key").status_code == 201


def test_concurrent_twins_of_one_scan_credit_once(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    member = enroll(client, brand)
    barcode = member["card"]["barcode"]

    def post(_: int) -> tuple[int, Any]:
        response = scan(app.test_client(), brand, barcode, "20.00", "twin-key")
        return response.status_code, response.get_json()

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(post, range(4)))
    statuses = sorted(status for status, _ in results)
    assert statuses == [200, 200, 200, 201]
    assert len({json.dumps(body, sort_keys=True) for _, body in results}) == 1
    assert _snapshot(app, member["id"]) == Snapshot(
        points=70, visits=1, spend_minor=2000, entries=2
    )


def test_scan_without_idempotency_key_is_refused(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    member = enroll(client, brand)
    before = _snapshot(app, member["id"])
    body = {"barcode": member["card"]["barcode"], "amount": "5.00"}
    for headers in ({}, {"Idempotency-Key": ""}, {"Idempotency-Key": "   "},
                    {"Idempotency-Key": "k" * 201}):  # fmt: skip
        response = client.post("/api/v1/scans", json=body, headers={**brand.cashier, **headers})
        assert _error(response) == (422, "validation_error", "Idempotency-Key"), headers
    assert _snapshot(app, member["id"]) == before


def test_lowercase_barcode_credits_the_card(client: FlaskClient, brand: BrandKeys) -> None:
    member = enroll(client, brand)
    response = scan(client, brand, member["card"]["barcode"].lower(), "3.00", "scan-1")
    assert response.status_code == 201
    assert response.get_json()["member_id"] == member["id"]


def test_forged_altered_or_foreign_barcode_is_an_unknown_card(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    member = enroll(client, brand)
    other_brand = make_brand(app, "Other Brand")
    foreign = enroll(client, other_brand)
    prefix, serial, mac = member["card"]["barcode"].split(".")
    flipped_serial = serial[:-1] + ("A" if serial[-1] != "A" else "B")
    flipped_mac = mac[:-1] + ("A" if mac[-1] != "A" else "B")
    before = _snapshot(app, member["id"]), _snapshot(app, foreign["id"])

    for barcode in (
        "WD1.AAAAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAA",
        f"{prefix}.{flipped_serial}.{mac}",
        f"{prefix}.{serial}.{flipped_mac}",
        make_barcode(serial, "a-different-secret-key-0123456789abcdef"),
        make_barcode("B" * 24, SECRET),  # well signed, never issued
        foreign["card"]["barcode"],
        "garbage",
        "W" * 10_000,
    ):
        response = scan(client, brand, barcode, "5.00", "forged")
        assert _error(response)[:2] == (404, "unknown_card"), barcode
    # A barcode that is not text at all is a malformed request, not an unknown card.
    for not_text in ("", "   ", 12345, ["WD1"], None):
        response = scan(client, brand, not_text, "5.00", "forged")
        assert _error(response) == (422, "validation_error", "barcode"), not_text
    assert (_snapshot(app, member["id"]), _snapshot(app, foreign["id"])) == before


def test_invalid_amounts_are_refused_and_change_nothing(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    member = enroll(client, brand)
    barcode = member["card"]["barcode"]
    before = _snapshot(app, member["id"])
    for index, amount in enumerate(
        [
            "0",
            "0.00",
            "-1",
            "-0.01",
            0,
            -5,
            "1.234",
            "0.001",
            "abc",
            "",
            "12,50",
            "NaN",
            "Infinity",
            True,
            False,
            None,
            [],
            ["5.00"],
            {"x": 1},
            "1e400",
            "100000.01",
            "1" + "0" * 31,
            "9" * 40,
        ]
    ):
        response = scan(client, brand, barcode, amount, f"bad-amount-{index}")
        assert _error(response) == (422, "validation_error", "amount"), amount
    missing = client.post(
        "/api/v1/scans",
        json={"barcode": barcode},
        headers={**brand.cashier, "Idempotency-Key": "no-amount"},
    )
    assert _error(missing) == (422, "validation_error", "amount")
    assert _snapshot(app, member["id"]) == before


def test_invalid_json_number_amounts_are_refused(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    member = enroll(client, brand)
    barcode = member["card"]["barcode"]
    before = _snapshot(app, member["id"])
    for index, number in enumerate(["1e400", "0.001", "-1.5", "0", "1.0e-2000", "123456789012"]):
        data = f'{{"barcode": "{barcode}", "amount": {number}}}'
        response = _raw_scan(client, brand, data, **{"Idempotency-Key": f"number-{index}"})
        assert _error(response) == (422, "validation_error", "amount"), number
    assert _snapshot(app, member["id"]) == before


def test_astronomical_amount_is_refused_as_invalid_not_a_server_error(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    member = enroll(client, brand)
    barcode = member["card"]["barcode"]
    before = _snapshot(app, member["id"])
    for index, amount in enumerate(['"1e999999999"', "1e999999999"]):
        data = f'{{"barcode": "{barcode}", "amount": {amount}}}'
        response = _raw_scan(client, brand, data, **{"Idempotency-Key": f"huge-{index}"})
        assert _error(response) == (422, "validation_error", "amount"), data
    assert _snapshot(app, member["id"]) == before


def test_vanishingly_small_amount_is_refused(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    member = enroll(client, brand)
    before = _snapshot(app, member["id"])
    response = scan(client, brand, member["card"]["barcode"], "1e-999999999", "tiny")
    assert _error(response) == (422, "validation_error", "amount")
    assert _snapshot(app, member["id"]) == before


def test_json_number_amount_is_read_as_an_exact_decimal(
    client: FlaskClient, brand: BrandKeys
) -> None:
    barcode = enroll(client, brand)["card"]["barcode"]
    response = _raw_scan(client, brand, f'{{"barcode": "{barcode}", "amount": 1.5}}')
    assert response.status_code == 201
    assert response.get_json()["amount"] == "1.50"
    assert response.get_json()["points_earned"] == 1
    # 0.1 + 0.2 is not 0.3 in binary floats; as a decimal it is exact.
    response = _raw_scan(
        client, brand, f'{{"barcode": "{barcode}", "amount": 0.30}}', **{"Idempotency-Key": "k2"}
    )
    assert response.get_json()["amount"] == "0.30"
    response = _raw_scan(
        client, brand, f'{{"barcode": "{barcode}", "amount": 12}}', **{"Idempotency-Key": "k3"}
    )
    assert response.get_json()["amount"] == "12.00"


def test_amount_at_the_ceiling_is_accepted(client: FlaskClient, brand: BrandKeys) -> None:
    barcode = enroll(client, brand)["card"]["barcode"]
    response = scan(client, brand, barcode, "100000.00", "ceiling")
    assert response.status_code == 201
    assert response.get_json()["points_earned"] == 100_000


def test_currency_must_match_the_program(app: Flask, client: FlaskClient, brand: BrandKeys) -> None:
    member = enroll(client, brand)
    barcode = member["card"]["barcode"]
    before = _snapshot(app, member["id"])
    for index, currency in enumerate(["EUR", "JPY", "", "US", 840, True]):
        response = scan(client, brand, barcode, "5.00", f"cur-{index}", currency=currency)
        assert _error(response) == (422, "validation_error", "currency"), currency
    assert _snapshot(app, member["id"]) == before
    assert scan(client, brand, barcode, "5.00", "cur-ok", currency="usd").status_code == 201
    assert scan(client, brand, barcode, "5.00", "cur-ok-2", currency="USD").status_code == 201


def test_scan_at_a_location_of_the_brand(app: Flask, client: FlaskClient, brand: BrandKeys) -> None:
    other = make_brand(app, "Other Brand")
    with services_of(app).db.transaction() as session:
        ours = session.scalars(select(Location.id).where(Location.brand_id == brand.brand_id)).one()
        theirs = session.scalars(
            select(Location.id).where(Location.brand_id == other.brand_id)
        ).one()
    member = enroll(client, brand)
    barcode = member["card"]["barcode"]
    assert scan(client, brand, barcode, "5.00", "loc-1", location_id=ours).status_code == 201
    before = _snapshot(app, member["id"])
    for index, location in enumerate([theirs, 999_999, str(ours), True]):
        response = scan(client, brand, barcode, "5.00", f"loc-bad-{index}", location_id=location)
        assert _error(response) == (422, "validation_error", "location_id"), location
    assert _snapshot(app, member["id"]) == before


def test_malformed_json_is_a_bad_request(app: Flask, client: FlaskClient, brand: BrandKeys) -> None:
    member = enroll(client, brand)
    barcode = member["card"]["barcode"]
    before = _snapshot(app, member["id"])
    for data in (
        f'{{"barcode": "{barcode}", "amount": "5.00"',
        "",
        "{'barcode': 'x'}",
        f'{{"barcode": "{barcode}", "amount": NaN}}',
        f'{{"barcode": "{barcode}", "amount": Infinity}}',
        b'{"barcode": "\xff\xfe"}',
        "[]",
        f'[{{"barcode": "{barcode}", "amount": "5.00"}}]',
        '"just a string"',
        "42",
        "null",
    ):
        response = _raw_scan(client, brand, data)
        assert _error(response)[:2] == (400, "malformed_json"), data
    assert _snapshot(app, member["id"]) == before


def test_wrong_content_type_is_unsupported(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    member = enroll(client, brand)
    data = json.dumps({"barcode": member["card"]["barcode"], "amount": "5.00"})
    before = _snapshot(app, member["id"])
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/jsonx"):
        response = _raw_scan(client, brand, data, **{"Content-Type": content_type})
        assert _error(response)[:2] == (415, "unsupported_media_type"), content_type
    headers = {**brand.cashier, "Idempotency-Key": "no-type"}
    response = client.post("/api/v1/scans", data=data, headers=headers)
    assert _error(response)[:2] == (415, "unsupported_media_type")
    assert _snapshot(app, member["id"]) == before


def test_json_content_type_with_charset_is_accepted(client: FlaskClient, brand: BrandKeys) -> None:
    barcode = enroll(client, brand)["card"]["barcode"]
    data = json.dumps({"barcode": barcode, "amount": "5.00"})
    response = _raw_scan(client, brand, data, **{"Content-Type": "application/json; charset=utf-8"})
    assert response.status_code == 201


def test_body_over_64_kib_is_too_large_with_a_json_envelope(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    member = enroll(client, brand)
    before = _snapshot(app, member["id"])
    body = {"barcode": member["card"]["barcode"], "amount": "5.00", "note": "x" * 64 * 1024}
    response = _raw_scan(client, brand, json.dumps(body))
    status, code, _ = _error(response)
    assert status == 413
    assert code == code.lower() and " " not in code and code
    assert _snapshot(app, member["id"]) == before


def test_body_just_under_64_kib_is_accepted(client: FlaskClient, brand: BrandKeys) -> None:
    barcode = enroll(client, brand)["card"]["barcode"]
    body = {"barcode": barcode, "amount": "5.00", "note": ""}
    padding = 64 * 1024 - len(json.dumps(body))
    body["note"] = "x" * padding
    data = json.dumps(body)
    assert len(data) == 64 * 1024
    assert _raw_scan(client, brand, data).status_code == 201


def test_tier_upgrades_at_once_when_the_12_month_spend_crosses_gold(
    client: FlaskClient, brand: BrandKeys
) -> None:
    member = enroll(client, brand)
    barcode = member["card"]["barcode"]
    below = scan(client, brand, barcode, "300.00", "s1").get_json()
    assert (below["tier"], below["points_earned"]) == ("Silver", 300)
    crossing = scan(client, brand, barcode, "200.00", "s2").get_json()
    # The crossing scan still earns at the old rate; the new tier shows in the same answer.
    assert (crossing["tier"], crossing["points_earned"]) == ("Gold", 200)
    assert _member(client, brand, member["id"])["tier"] == "Gold"
    next_scan = scan(client, brand, barcode, "100.00", "s3").get_json()
    assert (next_scan["tier"], next_scan["points_earned"]) == ("Gold", 125)
    assert next_scan["balance"] == 50 + 300 + 200 + 125


def test_spend_just_below_gold_keeps_silver(client: FlaskClient, brand: BrandKeys) -> None:
    barcode = enroll(client, brand)["card"]["barcode"]
    assert scan(client, brand, barcode, "499.99", "s1").get_json()["tier"] == "Silver"
    assert scan(client, brand, barcode, "0.01", "s2").get_json()["tier"] == "Gold"


def test_vip_multiplier_applies_after_crossing_vip(client: FlaskClient, brand: BrandKeys) -> None:
    barcode = enroll(client, brand)["card"]["barcode"]
    assert scan(client, brand, barcode, "2000.00", "s1").get_json()["tier"] == "VIP"
    assert scan(client, brand, barcode, "10.00", "s2").get_json()["points_earned"] == 15


def test_referral_pays_both_bonuses_once_on_the_first_purchase(
    client: FlaskClient, brand: BrandKeys
) -> None:
    referrer = enroll(client, brand, name="Referrer")
    referred = enroll(client, brand, name="Referred", referral_code=referrer["referral_code"])
    assert (referrer["points"], referred["points"]) == (50, 50)

    first = scan(client, brand, referred["card"]["barcode"], "10.00", "s1").get_json()
    assert first["points_earned"] == 10
    assert first["balance"] == 50 + 10 + 50
    assert _member(client, brand, referrer["id"])["points"] == 50 + 100

    second = scan(client, brand, referred["card"]["barcode"], "10.00", "s2").get_json()
    assert second["balance"] == 50 + 10 + 50 + 10
    assert _member(client, brand, referrer["id"])["points"] == 50 + 100

    referrer_bonuses = [e for e in _ledger(client, brand, referrer["id"]) if e["kind"] == "bonus"]
    assert sorted((e["reason"], e["points"]) for e in referrer_bonuses) == [
        ("referral", 100),
        ("welcome", 50),
    ]
    referred_bonuses = [e for e in _ledger(client, brand, referred["id"]) if e["kind"] == "bonus"]
    assert sorted((e["reason"], e["points"]) for e in referred_bonuses) == [
        ("referral", 50),
        ("welcome", 50),
    ]


def test_referrer_own_purchases_pay_no_referral_bonus(
    client: FlaskClient, brand: BrandKeys
) -> None:
    referrer = enroll(client, brand, name="Referrer")
    enroll(client, brand, name="Referred", referral_code=referrer["referral_code"])
    body = scan(client, brand, referrer["card"]["barcode"], "10.00", "s1").get_json()
    assert body["balance"] == 60


def test_reversal_takes_the_points_back(app: Flask, client: FlaskClient, brand: BrandKeys) -> None:
    member = enroll(client, brand)
    scanned = scan(client, brand, member["card"]["barcode"], "40.00", "s1").get_json()
    assert scanned["balance"] == 90

    response = _reverse(client, brand.admin, scanned["scan_id"])
    assert response.status_code == 201
    body = response.get_json()
    assert body["points_reversed"] == 40
    assert body["balance"] == 50
    assert body["member_id"] == member["id"]
    assert _member(client, brand, member["id"])["points"] == 50
    entries = _ledger(client, brand, member["id"])
    assert (entries[0]["kind"], entries[0]["points"], entries[0]["amount"]) == (
        "reversal",
        -40,
        "-40.00",
    )
    assert _snapshot(app, member["id"]).spend_minor == 0


def test_second_reversal_of_a_scan_is_a_conflict(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    member = enroll(client, brand)
    scan_id = scan(client, brand, member["card"]["barcode"], "40.00", "s1").get_json()["scan_id"]
    assert _reverse(client, brand.admin, scan_id).status_code == 201
    before = _snapshot(app, member["id"])
    assert _error(_reverse(client, brand.admin, scan_id))[:2] == (409, "already_reversed")
    assert _snapshot(app, member["id"]) == before


def test_cashier_may_not_reverse_a_scan_older_than_the_refund_window(
    app: Flask, client: FlaskClient, brand: BrandKeys, clock: FrozenClock
) -> None:
    member = enroll(client, brand)
    scan_id = scan(client, brand, member["card"]["barcode"], "40.00", "s1").get_json()["scan_id"]
    clock.advance(days=30, seconds=1)  # the default window is 30 days
    before = _snapshot(app, member["id"])
    assert _error(_reverse(client, brand.cashier, scan_id))[:2] == (403, "forbidden")
    assert _snapshot(app, member["id"]) == before


def test_reversal_of_an_unknown_or_foreign_scan_is_not_found(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    other = make_brand(app, "Other Brand")
    member = enroll(client, brand)
    scan_id = scan(client, brand, member["card"]["barcode"], "40.00", "s1").get_json()["scan_id"]
    welcome_id = _ledger(client, brand, member["id"])[-1]["id"]
    before = _snapshot(app, member["id"])
    assert _error(_reverse(client, other.admin, scan_id))[:2] == (404, "not_found")
    assert _error(_reverse(client, brand.admin, 999_999))[:2] == (404, "not_found")
    assert _error(_reverse(client, brand.admin, welcome_id))[:2] == (404, "not_found")
    assert _snapshot(app, member["id"]) == before


def test_reversal_never_takes_the_balance_below_zero(client: FlaskClient, brand: BrandKeys) -> None:
    member = enroll(client, brand)
    barcode = member["card"]["barcode"]
    scan_id = scan(client, brand, barcode, "40.00", "s1").get_json()["scan_id"]
    headers = {**brand.cashier, "Idempotency-Key": "r1"}
    spent = client.post("/api/v1/redemptions", json={"barcode": barcode, "points": 80},
                        headers=headers)  # fmt: skip
    assert spent.get_json()["balance"] == 10
    body = _reverse(client, brand.admin, scan_id).get_json()
    assert (body["points_reversed"], body["balance"]) == (10, 0)
