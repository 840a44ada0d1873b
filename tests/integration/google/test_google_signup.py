"""Sign-up from Google Wallet: the loyalty class offers walletd's join page (discoverableProgram),
carries the brand's stores (merchantLocations), the join page takes what Google shares, and a
member who came from Google gets the save link at once."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from tests.factories import BrandKeys, enroll
from tests.fakes.google_wallet import GoogleWalletFake, iter_issues, validate_body
from tests.integration.google.conftest import calls, class_id_of
from walletd.passes.google import MAX_SAVE_JWT_LENGTH, SAVE_URL_PREFIX
from walletd.push.dispatcher import Dispatcher

SIGNUP = {"enabled": True, "shared_data": ["FIRST_NAME", "LAST_NAME", "EMAIL"], "state": "LIVE"}


def _patch_program(client: FlaskClient, brand: BrandKeys, **fields: Any) -> Any:
    return client.patch(f"/api/v1/programs/{brand.program_id}", json=fields, headers=brand.admin)


def _add_store(client: FlaskClient, brand: BrandKeys, name: str, lat: str, lon: str) -> int:
    response = client.post(
        "/api/v1/locations",
        json={"name": name, "latitude": lat, "longitude": lon},
        headers=brand.admin,
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    return int(response.get_json()["id"])


def _class_writes(fake: GoogleWalletFake, class_id: str) -> list[dict[str, Any]]:
    """Bodies of every accepted insert or patch of one class, oldest first."""
    return [
        r.body
        for r in fake.api_requests()
        if r.status == 200
        and r.method in ("POST", "PATCH", "PUT")
        and (r.path.endswith("/loyaltyClass") or r.path.endswith(f"/loyaltyClass/{class_id}"))
        and isinstance(r.body, dict)
    ]


def _shared(data: dict[str, str]) -> str:
    return base64.b64encode(json.dumps(data).encode("utf-8")).decode("ascii")


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "the form carries no CSRF token"
    return match.group(1)


def test_the_class_offers_the_join_page_with_the_shared_data_the_brand_chose(
    client: FlaskClient, brand: BrandKeys, fake: GoogleWalletFake, dispatcher: Dispatcher
) -> None:
    response = _patch_program(client, brand, google_signup=SIGNUP)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["google_signup"] == SIGNUP

    enroll(client, brand)
    assert dispatcher.drain() >= 1

    cid = class_id_of(fake, brand.program_id)
    stored = fake.classes[cid]
    assert stored["discoverableProgram"] == {
        "merchantSignupInfo": {
            "signupWebsite": {"uri": f"http://walletd.test/join/{brand.program_id}/google"},
            "signupSharedDatas": ["FIRST_NAME", "LAST_NAME", "EMAIL"],
        },
        "merchantSigninInfo": {
            "signinWebsite": {"uri": f"http://walletd.test/join/{brand.program_id}/recover"}
        },
        "state": "LIVE",
    }
    for body in _class_writes(fake, cid):
        assert list(iter_issues(validate_body("LoyaltyClass", body))) == []


def test_changing_the_signup_setting_patches_a_class_google_already_has(
    client: FlaskClient, brand: BrandKeys, fake: GoogleWalletFake, dispatcher: Dispatcher
) -> None:
    enroll(client, brand)
    dispatcher.drain()
    cid = class_id_of(fake, brand.program_id)
    assert "discoverableProgram" not in fake.classes[cid]

    # Sign-up shows on no card: no card is pushed for it, yet the class follows at once.
    assert _patch_program(client, brand, google_signup=SIGNUP).status_code == 200
    assert dispatcher.drain() == 1

    [patch] = [r for r in calls(fake, "PATCH", f"/loyaltyClass/{cid}") if r.status == 200]
    assert patch.body["discoverableProgram"]["state"] == "LIVE"
    assert patch.body["reviewStatus"] == "UNDER_REVIEW"

    off = _patch_program(client, brand, google_signup={"enabled": False})
    assert off.status_code == 200
    dispatcher.drain()
    assert fake.classes[cid]["discoverableProgram"]["state"] == "DISABLED"


def test_googles_legacy_state_names_are_stored_canonically(
    client: FlaskClient, brand: BrandKeys
) -> None:
    response = _patch_program(
        client, brand, google_signup={"enabled": True, "state": "trustedTesters"}
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["google_signup"] == {
        "enabled": True,
        "shared_data": ["FIRST_NAME", "LAST_NAME", "EMAIL", "PHONE"],
        "state": "TRUSTED_TESTERS",
    }


def test_bad_signup_settings_are_refused_with_the_field(
    client: FlaskClient, brand: BrandKeys
) -> None:
    for value in (
        {"enabled": True, "shared_data": ["BIRTHDAY"]},
        {"enabled": True, "shared_data": ["EMAIL", "EMAIL"]},
        {"enabled": True, "shared_data": ["SHARED_DATA_TYPE_UNSPECIFIED"]},
        {"enabled": True, "state": "PUBLISHED"},
        {"enabled": "yes"},
        {"enabled": True, "colour": "red"},
        {"shared_data": ["EMAIL"]},
        "on",
    ):
        response = _patch_program(client, brand, google_signup=value)
        assert response.status_code == 422, value
        assert "google_signup" in json.dumps(response.get_json()), response.get_json()


def test_the_class_carries_the_brands_stores_as_merchant_locations(
    client: FlaskClient, brand: BrandKeys, fake: GoogleWalletFake, dispatcher: Dispatcher
) -> None:
    for n in range(11):
        _add_store(client, brand, f"Shop {n}", f"25.0{n:02d}", "121.5")
    member = enroll(client, brand)
    dispatcher.drain()

    cid = class_id_of(fake, brand.program_id)
    stored = fake.classes[cid]
    assert len(stored["merchantLocations"]) == 10  # Google refuses an eleventh
    assert stored["merchantLocations"][0] == {"latitude": 25.0, "longitude": 121.5}
    assert stored["merchantLocations"][9] == {"latitude": 25.009, "longitude": 121.5}
    # The object keeps its own shape: the class carries the stores for every card.
    oid = f"{fake.issuer_id}.card-{member['card']['serial_number']}"
    assert "merchantLocations" not in fake.objects[oid]
    for body in _class_writes(fake, cid):
        assert list(iter_issues(validate_body("LoyaltyClass", body))) == []


def test_moving_a_store_patches_the_class_and_pushes_the_cards(
    app: Flask,
    client: FlaskClient,
    brand: BrandKeys,
    fake: GoogleWalletFake,
    dispatcher: Dispatcher,
) -> None:
    store = _add_store(client, brand, "Main Street", "25.0", "121.5")
    enroll(client, brand)
    dispatcher.drain()
    cid = class_id_of(fake, brand.program_id)
    before = len(calls(fake, "PATCH", f"/loyaltyClass/{cid}"))

    moved = client.patch(
        f"/api/v1/locations/{store}", json={"latitude": "24.5"}, headers=brand.admin
    )
    assert moved.status_code == 200
    assert dispatcher.drain() >= 1  # the card's google_object row

    assert len(calls(fake, "PATCH", f"/loyaltyClass/{cid}")) == before + 1
    assert fake.classes[cid]["merchantLocations"] == [{"latitude": 24.5, "longitude": 121.5}]

    client.delete(f"/api/v1/locations/{store}", headers=brand.admin)
    dispatcher.drain()
    assert fake.classes[cid].get("merchantLocations", []) == []


def test_google_wallets_post_prefills_the_join_form(client: FlaskClient, brand: BrandKeys) -> None:
    shared = _shared(
        {"firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.com", "zipcode": "100"}
    )
    response = client.post(
        f"/join/{brand.program_id}/google",
        data={"SharedDataType": shared, "utm_source": "wallet"},
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    page = response.get_data(as_text=True)
    assert 'value="Ada Lovelace"' in page
    assert 'value="ada@example.com"' in page
    assert 'name="via" value="google"' in page


def test_what_google_shares_is_not_trusted(client: FlaskClient, brand: BrandKeys) -> None:
    for data in (
        {"SharedDataType": "%%% not base64 %%%"},
        {"SharedDataType": _shared({"email": "not an address", "firstName": "x" * 300})},
        {"SharedDataType": base64.b64encode(b"[1, 2]").decode()},
        {"SharedDataType": "A" * 10_000},
    ):
        response = client.post(f"/join/{brand.program_id}/google", data=data)
        assert response.status_code == 200, data
        page = response.get_data(as_text=True)
        assert "not an address" not in page and "x" * 300 not in page
    assert client.post("/join/999999/google", data={}).status_code == 404


def test_a_member_who_came_from_google_lands_on_the_save_link(
    client: FlaskClient, brand: BrandKeys, fake: GoogleWalletFake
) -> None:
    page = client.post(
        f"/join/{brand.program_id}/google",
        data={"SharedDataType": _shared({"FIRST_NAME": "Ada", "EMAIL": "ada@example.com"})},
    ).get_data(as_text=True)

    response = client.post(
        f"/join/{brand.program_id}",
        data={
            "csrf_token": _csrf(page),
            "name": "Ada",
            "email": "ada@example.com",
            "via": "google",
        },
    )

    assert response.status_code == 303
    link = response.headers["Location"]
    assert link.startswith(SAVE_URL_PREFIX)
    token = link.removeprefix(SAVE_URL_PREFIX)
    assert len(token) < MAX_SAVE_JWT_LENGTH
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    # The object rides in the link, so Google can create it before the worker has.
    [saved] = claims["payload"]["loyaltyObjects"]
    assert saved["classId"] == class_id_of(fake, brand.program_id)
    assert saved["accountName"] == "Ada"
    assert list(iter_issues(validate_body("LoyaltyObject", saved))) == []


def test_a_member_who_joined_on_the_web_still_sees_the_card_page(
    client: FlaskClient, brand: BrandKeys, fake: GoogleWalletFake
) -> None:
    page = client.get(f"/join/{brand.program_id}").get_data(as_text=True)
    response = client.post(
        f"/join/{brand.program_id}",
        data={"csrf_token": _csrf(page), "name": "Ada", "email": "ada@example.com"},
    )
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/card/")
