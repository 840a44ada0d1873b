"""The cashier page's JSON endpoints: staff session, CSRF header, replays and redemptions."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from tests.factories import BrandKeys, enroll
from tests.integration.pages.conftest import csrf_of, log_in, make_staff


def _till(app: Flask, brand: BrandKeys) -> tuple[FlaskClient, dict[str, str]]:
    client = app.test_client()
    log_in(client, make_staff(app, brand.brand_id, "till@acme.example", role="cashier"), "cashier")
    return client, {"X-CSRF-Token": csrf_of(client, "/cashier")}


def test_a_scan_answers_name_points_balance_tier_and_reachable_rewards(
    app: Flask, brand: BrandKeys
) -> None:
    member = enroll(app.test_client(), brand, name="Katherine")
    client, headers = _till(app, brand)
    response = client.post(
        "/cashier/api/scan",
        json={"barcode": member["card"]["barcode"], "amount": "120.00"},
        headers={**headers, "Idempotency-Key": "till-1"},
    )
    body = response.get_json()
    assert response.status_code == 201
    assert body["name"] == "Katherine"
    assert (body["points_earned"], body["balance"], body["tier"]) == (120, 170, "Silver")
    assert [r["name"] for r in body["rewards"]] == ["Free coffee"]
    assert body["replayed"] is False

    again = client.post(
        "/cashier/api/scan",
        json={"barcode": member["card"]["barcode"], "amount": "120.00"},
        headers={**headers, "Idempotency-Key": "till-1"},
    )
    assert again.status_code == 200
    assert again.get_json()["balance"] == 170 and again.get_json()["replayed"] is True
    ledger = client.application.test_client().get(
        f"/api/v1/members/{member['id']}/ledger", headers=brand.admin
    )
    assert [e["kind"] for e in ledger.get_json()["entries"]] == ["earn", "bonus"]


def test_a_reward_is_redeemed_once_per_key(app: Flask, brand: BrandKeys) -> None:
    member = enroll(app.test_client(), brand)
    client, headers = _till(app, brand)
    barcode = member["card"]["barcode"]
    client.post(
        "/cashier/api/scan",
        json={"barcode": barcode, "amount": "200"},
        headers={**headers, "Idempotency-Key": "scan-1"},
    )
    reward_id = client.post(
        "/cashier/api/scan",
        json={"barcode": barcode, "amount": "200"},
        headers={**headers, "Idempotency-Key": "scan-1"},
    ).get_json()["rewards"][0]["id"]
    for status in (201, 200):
        response = client.post(
            "/cashier/api/redeem",
            json={"barcode": barcode, "reward_id": reward_id},
            headers={**headers, "Idempotency-Key": "redeem-1"},
        )
        assert response.status_code == status
        assert response.get_json()["balance"] == 100


def test_errors_come_back_as_the_json_envelope_with_the_field(app: Flask, brand: BrandKeys) -> None:
    member = enroll(app.test_client(), brand)
    client, headers = _till(app, brand)
    response = client.post(
        "/cashier/api/scan",
        json={"barcode": member["card"]["barcode"], "amount": "-3"},
        headers={**headers, "Idempotency-Key": "bad-1"},
    )
    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == "amount"
    forged = client.post(
        "/cashier/api/scan",
        json={"barcode": "WD1.AAAA.BBBB", "amount": "3"},
        headers={**headers, "Idempotency-Key": "bad-2"},
    )
    assert forged.status_code == 404 and forged.get_json()["error"]["code"] == "unknown_card"


def test_without_a_session_the_api_answers_401(client: FlaskClient, brand: BrandKeys) -> None:
    token = csrf_of(client, "/cashier/login")
    response = client.post(
        "/cashier/api/scan",
        json={"barcode": "x", "amount": "1"},
        headers={"X-CSRF-Token": token, "Idempotency-Key": "k"},
    )
    assert response.status_code == 401


def test_the_cashier_page_sends_anonymous_visitors_to_the_login(client: FlaskClient) -> None:
    response = client.get("/cashier")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/cashier/login?next=/cashier")
