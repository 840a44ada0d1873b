"""Joining a program, the card page and finding a lost card, through the Flask test client."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from tests.factories import BrandKeys
from tests.integration.pages.conftest import csrf_of


def _join(client: FlaskClient, brand: BrandKeys, **fields: str) -> tuple[int, str]:
    token = csrf_of(client, f"/join/{brand.program_id}")
    response = client.post(f"/join/{brand.program_id}", data={"csrf_token": token, **fields})
    return response.status_code, response.headers.get("Location") or response.get_data(as_text=True)


def test_joining_creates_the_member_and_shows_the_card(
    client: FlaskClient, brand: BrandKeys
) -> None:
    status, location = _join(
        client, brand, name="Ada Lovelace", email="ADA@example.com", birthday="1990-01-02",
        marketing_consent="yes",
    )  # fmt: skip
    assert status == 303 and location.startswith("/card/")
    page = client.get(location, headers={"User-Agent": "Mozilla/5.0 (iPhone)"})
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Welcome, Ada Lovelace!" in html
    assert 'data-wallet-button="apple"' in html and 'data-wallet-button="google"' in html
    assert "badge badge-apple prominent" in html
    assert "/pass.pkpass?sig=" in html and "/qr.png?sig=" in html
    assert f"/join/{brand.program_id}?ref=" in html
    member = client.get("/api/v1/members/1", headers=brand.admin).get_json()
    assert member["email"] == "ada@example.com" and member["marketing_consent"] is True


def test_android_gets_google_wallet_first(client: FlaskClient, brand: BrandKeys) -> None:
    _, location = _join(client, brand, name="Grace", phone="+886 912 345 678")
    html = client.get(location, headers={"User-Agent": "Mozilla/5.0 (Linux; Android 14)"}).get_data(
        as_text=True
    )
    assert html.index('data-wallet-button="google"') < html.index('data-wallet-button="apple"')
    assert "google-card" in html and "apple-card" not in html


def test_errors_are_shown_next_to_their_fields_and_values_kept(
    client: FlaskClient, brand: BrandKeys
) -> None:
    status, html = _join(client, brand, name="Ada", email="not-an-address")
    assert status == 422
    assert 'id="f-email-error"' in html and "email is not a valid address" in html
    assert 'aria-invalid="true"' in html and 'value="Ada"' in html
    status, html = _join(client, brand, name="Ada")
    assert status == 422 and "enter an e-mail or a phone number" in html
    status, html = _join(client, brand, name="Ada", email="a@b.io", referral_code="NOPE1234")
    assert status == 422 and 'id="f-referral_code-error"' in html


def test_a_referral_link_fills_the_code(client: FlaskClient, brand: BrandKeys) -> None:
    html = client.get(f"/join/{brand.program_id}?ref=ABCD2345").get_data(as_text=True)
    assert 'value="ABCD2345"' in html


def test_unknown_programs_and_bad_card_links_are_not_found(
    client: FlaskClient, brand: BrandKeys
) -> None:
    assert client.get("/join/999").status_code == 404
    _, location = _join(client, brand, name="Ada", email="a@b.io")
    forged = location.split("?")[0] + "?sig=" + "0" * 32
    response = client.get(forged)
    assert response.status_code == 404 and "Page not found" in response.get_data(as_text=True)


def test_a_lost_card_is_found_only_with_the_right_birthday(
    client: FlaskClient, brand: BrandKeys
) -> None:
    _, location = _join(client, brand, name="Ada", email="ada@example.com", birthday="1990-01-02")
    token = csrf_of(client, f"/join/{brand.program_id}/recover")
    path = f"/join/{brand.program_id}/recover"
    wrong = client.post(
        path, data={"csrf_token": token, "contact": "ada@example.com", "birthday": "1990-01-03"}
    )
    assert wrong.status_code == 200
    assert "We found no card with these details." in wrong.get_data(as_text=True)
    right = client.post(
        path, data={"csrf_token": token, "contact": " ADA@example.com ", "birthday": "1990-01-02"}
    )
    assert right.status_code == 303 and right.headers["Location"] == location


def test_a_lost_card_is_found_by_phone_in_any_format(client: FlaskClient, brand: BrandKeys) -> None:
    _, location = _join(client, brand, name="Lin", phone="+886 912-345-678", birthday="1988-08-08")
    token = csrf_of(client, f"/join/{brand.program_id}/recover")
    found = client.post(
        f"/join/{brand.program_id}/recover",
        data={"csrf_token": token, "contact": "+886912345678", "birthday": "1988-08-08"},
    )
    assert found.headers["Location"] == location


def test_recovery_guesses_are_throttled(client: FlaskClient, brand: BrandKeys) -> None:
    token = csrf_of(client, f"/join/{brand.program_id}/recover")
    statuses = [
        client.post(
            f"/join/{brand.program_id}/recover",
            data={"csrf_token": token, "contact": "x@y.io", "birthday": f"1990-01-{d:02d}"},
        ).status_code
        for d in range(1, 8)
    ]
    assert statuses[:5] == [200] * 5 and statuses[5:] == [429, 429]


def test_recovery_of_another_programs_member_finds_nothing(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    from tests.factories import make_brand

    other = make_brand(app, "Other")
    _join(client, other, name="Ada", email="ada@example.com", birthday="1990-01-02")
    token = csrf_of(client, f"/join/{brand.program_id}/recover")
    response = client.post(
        f"/join/{brand.program_id}/recover",
        data={"csrf_token": token, "contact": "ada@example.com", "birthday": "1990-01-02"},
    )
    assert response.status_code == 200


def test_the_language_follows_the_browser_and_the_switch(
    client: FlaskClient, brand: BrandKeys
) -> None:
    path = f"/join/{brand.program_id}"
    chinese = client.get(path, headers={"Accept-Language": "zh-TW,zh;q=0.9,en;q=0.8"})
    html = chinese.get_data(as_text=True)
    assert 'lang="zh-Hant-TW"' in html and "領取會員卡" in html
    assert "Get my card" in client.get(path, headers={"Accept-Language": "en-GB"}).get_data(
        as_text=True
    )
    token = csrf_of(client, path)
    switched = client.post("/lang", data={"csrf_token": token, "lang": "zh-Hant", "next": path})
    assert switched.status_code == 303 and switched.headers["Location"] == path
    html = client.get(path, headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "領取會員卡" in html


def test_template_images_are_served_for_previews(client: FlaskClient) -> None:
    response = client.get("/pass-images/default/logo@2x.png")
    assert response.status_code == 200 and response.mimetype == "image/png"
    assert client.get("/pass-images/default/pass.json").status_code == 404
    assert client.get("/pass-images/..%2Fsecret/logo.png").status_code == 404
