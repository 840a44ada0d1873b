"""The PassKit web service as Wallet calls it: the transcripts of the reference's section 10."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.http import http_date, parse_date

from tests.factories import BrandKeys, FrozenClock, make_brand, services_of
from tests.integration.apple.conftest import (
    IssuedPass,
    WalletDevice,
    count,
    issue_pass,
    library_id,
    local,
    pass_json_of,
    purchase,
    push_token,
    settle,
)
from walletd.models import Card, Device, DeviceLog, Registration
from walletd.passes.apple import ApplePasses
from walletd.passes.pkpass import PKPASS_MIME, verify_pkpass

IDENTITY_KEYS = ("serialNumber", "passTypeIdentifier", "authenticationToken", "webServiceURL")


def _bad_authorizations(issued: IssuedPass) -> dict[str, dict[str, str]]:
    """Headers that must not authenticate: wrong token, wrong scheme, no space, none."""
    return {
        "wrong token": {"Authorization": "ApplePass " + "x" * 43},
        "Bearer scheme": {"Authorization": f"Bearer {issued.auth_token}"},
        "no space": {"Authorization": f"ApplePass{issued.auth_token}"},
        "lower-case scheme": {"Authorization": f"applepass {issued.auth_token}"},
        "missing": {},
    }


def _stored_token(app: Flask, library: str) -> str | None:
    with services_of(app).db.transaction() as session:
        return session.scalar(
            select(Registration.push_token)
            .join(Device, Device.id == Registration.device_id)
            .where(Device.library_id == library)
        )


def _card(app: Flask, serial: str) -> Card:
    with services_of(app).db.transaction() as session:
        card = session.scalar(select(Card).where(Card.serial_number == serial))
        assert card is not None
        return card


def _passes(app: Flask) -> ApplePasses:
    passes = services_of(app).adapters["apple_passes"]
    assert isinstance(passes, ApplePasses)
    return passes


def _registered(app: Flask, phone: WalletDevice, issued: IssuedPass) -> str:
    """Register and make the first list call; returns the lastUpdated tag it hands out."""
    assert phone.register(issued).status_code == 201
    settle(app)
    listed = phone.updates(issued)
    assert listed.status_code == 200
    tag: str = listed.get_json()["lastUpdated"]
    return tag


# --- register -------------------------------------------------------------------------------


def test_registering_answers_201_then_200_and_keeps_the_newest_push_token(
    app: Flask, phone: WalletDevice, issued: IssuedPass
) -> None:
    assert phone.register(issued).status_code == 201
    assert (count(app, Device), count(app, Registration)) == (1, 1)
    assert _stored_token(app, phone.library_id) == phone.push_token
    assert phone.register(issued).status_code == 200
    assert (count(app, Device), count(app, Registration)) == (1, 1)
    assert phone.register(issued, token=push_token(0xDEF)).status_code == 200
    assert _stored_token(app, phone.library_id) == push_token(0xDEF)
    assert (count(app, Device), count(app, Registration)) == (1, 1)


def test_registration_without_the_pass_token_is_401_and_stores_nothing(
    app: Flask, phone: WalletDevice, issued: IssuedPass
) -> None:
    for case, headers in _bad_authorizations(issued).items():
        assert phone.register(issued, headers=headers).status_code == 401, case
    assert count(app, Device) == 0
    assert count(app, Registration) == 0


def test_unknown_serial_and_foreign_pass_type_look_exactly_like_a_wrong_token(
    app: Flask, phone: WalletDevice, issued: IssuedPass
) -> None:
    wrong_token = phone.register(issued, headers={"Authorization": "ApplePass " + "x" * 43})
    unknown = replace(issued, serial="NOSUCHSERIAL0000000000000")
    unknown_serial = phone.register(unknown)
    foreign_type = phone.register(issued, pass_type_id="pass.com.someone.else")
    for response in (wrong_token, unknown_serial, foreign_type):
        assert response.status_code == 401
    # A 401 that differed for unknown serials would let anyone probe which serials exist.
    assert unknown_serial.data == wrong_token.data == foreign_type.data
    assert count(app, Registration) == 0


def test_a_malformed_registration_body_is_refused_and_stores_nothing(
    app: Flask, phone: WalletDevice, issued: IssuedPass
) -> None:
    bodies = [b"{}", b"not json", b'{"pushToken": 5}', b"", b'["abc"]', b'{"pushToken": ""}']
    for body in bodies:
        assert phone.register(issued, body=body).status_code in (400, 422), body
    assert count(app, Device) == 0
    assert count(app, Registration) == 0


# --- list updatable passes ------------------------------------------------------------------


def test_listing_needs_no_authorization_and_the_tag_it_hands_out_means_nothing_new(
    app: Flask, phone: WalletDevice, issued: IssuedPass
) -> None:
    assert phone.register(issued).status_code == 201
    settle(app)
    response = phone.updates(issued)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["serialNumbers"] == [issued.serial]
    assert isinstance(body["lastUpdated"], str) and body["lastUpdated"]
    again = phone.updates(issued, body["lastUpdated"])
    assert again.status_code == 204
    assert again.data == b""


def test_after_a_purchase_the_pass_is_listed_with_a_newer_tag(
    app: Flask, client: FlaskClient, brand: BrandKeys, phone: WalletDevice, issued: IssuedPass
) -> None:
    tag = _registered(app, phone, issued)
    purchase(client, brand, issued)
    settle(app)
    response = phone.updates(issued, tag)
    assert response.status_code == 200
    body = response.get_json()
    assert body["serialNumbers"] == [issued.serial]
    assert isinstance(body["lastUpdated"], str)
    # The tag must move on, or Wallet logs "lastUpdated tag remained the same" and asks again.
    assert int(body["lastUpdated"]) > int(tag)
    assert phone.updates(issued, body["lastUpdated"]).status_code == 204


def test_two_passes_changed_at_different_times_are_both_listed_for_an_older_tag(
    client: FlaskClient, brand: BrandKeys, clock: FrozenClock, phone: WalletDevice
) -> None:
    first = issue_pass(client, brand, "Ada Lovelace")
    second = issue_pass(client, brand, "Grace Hopper")
    assert phone.register(first).status_code == 201
    assert phone.register(second).status_code == 201
    tag = phone.updates(first).get_json()["lastUpdated"]
    purchase(client, brand, first)
    clock.advance(minutes=5)
    purchase(client, brand, second)
    response = phone.updates(first, tag)
    assert response.status_code == 200
    assert sorted(response.get_json()["serialNumbers"]) == sorted([first.serial, second.serial])


def test_an_unknown_device_or_another_pass_type_is_told_nothing_changed(
    client: FlaskClient, phone: WalletDevice, issued: IssuedPass
) -> None:
    stranger = WalletDevice(client, library_id(0xBAD), push_token(0xBAD))
    assert stranger.updates(issued).status_code == 204
    assert stranger.updates(issued, "12345").status_code == 204
    assert phone.register(issued).status_code == 201
    assert phone.updates(issued, pass_type_id="pass.com.someone.else").status_code == 204


def test_an_unreadable_tag_lists_every_registered_serial(
    phone: WalletDevice, issued: IssuedPass
) -> None:
    assert phone.register(issued).status_code == 201
    for since in ["garbage", "-1", "1.5", "2026-03-10T12:00:00Z", "9" * 40, ""]:
        response = phone.updates(issued, since)
        assert response.status_code == 200, since
        assert response.get_json()["serialNumbers"] == [issued.serial], since


# --- get the latest pass --------------------------------------------------------------------


def test_the_latest_pass_is_a_valid_pkpass_of_the_same_identity_modified_when_the_card_was(
    app: Flask, client: FlaskClient, brand: BrandKeys, phone: WalletDevice, issued: IssuedPass
) -> None:
    purchase(client, brand, issued)
    response = phone.latest(issued)
    assert response.status_code == 200
    assert response.mimetype == PKPASS_MIME
    assert verify_pkpass(response.data) == []
    changed = _card(app, issued.serial).updated_at.replace(microsecond=0)
    last_modified = response.headers["Last-Modified"]
    assert last_modified == http_date(changed)
    assert last_modified.endswith(" GMT")  # IMF-fixdate
    assert parse_date(last_modified) == changed
    document = pass_json_of(response.data)
    for key in IDENTITY_KEYS:
        assert document[key] == issued.pass_json[key], key
    assert document["webServiceURL"] == "http://walletd.test/passes/"


def test_if_modified_since_answers_304_only_for_the_last_modified_itself(
    phone: WalletDevice, issued: IssuedPass
) -> None:
    last_modified = phone.latest(issued).headers["Last-Modified"]
    unchanged = phone.latest(issued, if_modified_since=last_modified)
    assert unchanged.status_code == 304
    assert unchanged.data == b""
    modified = parse_date(last_modified)
    assert modified is not None
    earlier = phone.latest(issued, if_modified_since=http_date(modified - timedelta(seconds=1)))
    assert earlier.status_code == 200
    assert verify_pkpass(earlier.data) == []
    for garbage in ["garbage", "", "Tue, 99 Foo 2026 25:61:61 GMT", "0"]:
        assert phone.latest(issued, if_modified_since=garbage).status_code == 200, garbage


def test_two_changes_in_the_same_second_still_move_last_modified(
    client: FlaskClient, brand: BrandKeys, phone: WalletDevice, issued: IssuedPass
) -> None:
    # The clock stands still: both purchases happen within the same second.
    purchase(client, brand, issued)
    first = phone.latest(issued)
    purchase(client, brand, issued)
    second = phone.latest(issued, if_modified_since=first.headers["Last-Modified"])
    assert second.status_code == 200, "a stale 304 would hide the second purchase"
    first_time = parse_date(first.headers["Last-Modified"])
    second_time = parse_date(second.headers["Last-Modified"])
    assert first_time is not None and second_time is not None
    assert second_time > first_time
    points = pass_json_of(second.data)["storeCard"]["primaryFields"][0]["value"]
    assert points == pass_json_of(first.data)["storeCard"]["primaryFields"][0]["value"] + 10


def test_the_latest_pass_needs_the_pass_token(phone: WalletDevice, issued: IssuedPass) -> None:
    for case, headers in _bad_authorizations(issued).items():
        assert phone.latest(issued, headers=headers).status_code == 401, case


def test_an_unchanged_pass_is_signed_once_however_often_it_is_fetched(
    app: Flask, client: FlaskClient, brand: BrandKeys, phone: WalletDevice, issued: IssuedPass
) -> None:
    purchase(client, brand, issued)
    cache = _passes(app).cache
    misses, hits = cache.misses, cache.hits
    first = phone.latest(issued)
    second = phone.latest(issued)
    # Signed once; the second fetch is this process's memory, or on Postgres the stored bytes
    # read by walletd/fastpath/apple.py (no memory lookup there).
    assert cache.misses - misses == 1
    assert cache.hits - hits == (0 if services_of(app).db.is_postgres else 1)
    assert first.data == second.data
    purchase(client, brand, issued)
    assert phone.latest(issued).data != first.data
    assert cache.misses - misses == 2


# --- unregister -----------------------------------------------------------------------------


def test_unregistering_the_last_pass_removes_registration_and_device_and_may_repeat(
    app: Flask, phone: WalletDevice, issued: IssuedPass
) -> None:
    assert phone.register(issued).status_code == 201
    assert phone.unregister(issued).status_code == 200
    assert count(app, Registration) == 0
    assert count(app, Device) == 0
    assert phone.unregister(issued).status_code == 200


def test_unregistering_one_of_two_passes_keeps_the_device(
    app: Flask, client: FlaskClient, brand: BrandKeys, phone: WalletDevice, issued: IssuedPass
) -> None:
    other = issue_pass(client, brand, "Grace Hopper")
    assert phone.register(issued).status_code == 201
    assert phone.register(other).status_code == 201
    assert phone.unregister(issued).status_code == 200
    assert count(app, Device) == 1
    assert phone.updates(other).get_json()["serialNumbers"] == [other.serial]


def test_unregistering_with_a_bad_token_is_401_and_keeps_the_registration(
    app: Flask, phone: WalletDevice, issued: IssuedPass
) -> None:
    assert phone.register(issued).status_code == 201
    response = phone.unregister(issued, headers={"Authorization": "ApplePass " + "x" * 43})
    assert response.status_code == 401
    assert count(app, Registration) == 1
    assert count(app, Device) == 1


# --- log ------------------------------------------------------------------------------------


def test_device_log_lines_are_stored_and_non_strings_dropped(
    app: Flask, client: FlaskClient
) -> None:
    response = client.post("/passes/v1/log", json={"logs": ["a", "b"]})
    assert response.status_code == 200
    with services_of(app).db.transaction() as session:
        assert sorted(session.scalars(select(DeviceLog.message)).all()) == ["a", "b"]
    mixed = client.post("/passes/v1/log", json={"logs": ["kept", 5, {"x": 1}, None]})
    assert mixed.status_code == 200
    assert count(app, DeviceLog) == 3


def test_a_junk_log_body_is_refused_politely(app: Flask, client: FlaskClient) -> None:
    bodies = [b"junk", b"", b"[]", b"null", b'{"logs": "a"}', b'{"logs": null}', b'{"no": 1}']
    for body in bodies:
        response = client.post("/passes/v1/log", data=body, content_type="application/json")
        assert response.status_code in (200, 400), body
    assert count(app, DeviceLog) == 0


# --- the signed download link ---------------------------------------------------------------


def test_the_download_link_serves_the_pass_as_an_attachment(
    client: FlaskClient, brand: BrandKeys
) -> None:
    member = client.post("/api/v1/members", json={"name": "Ada"}, headers=brand.admin).get_json()
    response = client.get(local(member["card"]["apple_pass_url"]))
    assert response.status_code == 200
    assert response.mimetype == PKPASS_MIME
    serial = member["card"]["serial_number"]
    disposition = response.headers["Content-Disposition"]
    assert disposition == f'attachment; filename="{serial}.pkpass"'
    assert verify_pkpass(response.data) == []
    assert pass_json_of(response.data)["serialNumber"] == serial


def test_a_tampered_download_link_is_404(client: FlaskClient, brand: BrandKeys) -> None:
    member = client.post("/api/v1/members", json={"name": "Ada"}, headers=brand.admin).get_json()
    url = local(member["card"]["apple_pass_url"])
    flipped = url[:-1] + ("0" if url[-1] != "0" else "1")
    assert client.get(flipped).status_code == 404
    assert client.get(url.split("?")[0]).status_code == 404
    other_serial = url.replace(member["card"]["serial_number"], "NOSUCHSERIAL00000000000000")
    assert client.get(other_serial).status_code == 404


# --- member messages ------------------------------------------------------------------------


def _message(client: FlaskClient, brand: BrandKeys, member_id: int, body: object) -> int:
    path = f"/api/v1/members/{member_id}/message"
    return client.post(path, json=body, headers=brand.admin).status_code


def test_a_member_message_appears_on_the_back_of_the_next_pass(
    app: Flask, client: FlaskClient, brand: BrandKeys, phone: WalletDevice, issued: IssuedPass
) -> None:
    tag = _registered(app, phone, issued)
    response = client.post(
        f"/api/v1/members/{issued.member_id}/message",
        json={"message": "Double points this weekend"},
        headers=brand.admin,
    )
    assert response.status_code == 202
    assert response.get_json()["status"] == "queued"
    assert phone.updates(issued, tag).get_json()["serialNumbers"] == [issued.serial]
    back = pass_json_of(phone.latest(issued).data)["storeCard"]["backFields"]
    field = next(f for f in back if f["key"] == "message")
    assert field["value"] == "Double points this weekend"
    assert "%@" in field["changeMessage"]


def test_an_unusable_member_message_is_422(
    client: FlaskClient, brand: BrandKeys, issued: IssuedPass
) -> None:
    bodies: list[object] = [
        {"message": ""},
        {"message": "   "},
        {"message": "x" * 501},
        {"message": 5},
        {},
    ]
    for body in bodies:
        assert _message(client, brand, issued.member_id, body) == 422, body


def test_only_an_admin_of_the_members_brand_may_message_them(
    app: Flask, client: FlaskClient, brand: BrandKeys, issued: IssuedPass
) -> None:
    path = f"/api/v1/members/{issued.member_id}/message"
    cashier = client.post(path, json={"message": "hi"}, headers=brand.cashier)
    assert cashier.status_code == 403
    rival = make_brand(app, "Rival Roasters")
    assert _message(client, rival, issued.member_id, {"message": "hi"}) == 404
