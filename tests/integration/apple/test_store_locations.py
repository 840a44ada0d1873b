"""Cards that surface at the store: the brand's locations on the Apple pass (`locations` with a
relevant text, `maxDistance`), the settings that shape them, and pushes when the stores change."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete, func, select

from tests.factories import BrandKeys, make_brand, services_of
from tests.integration.apple.conftest import (
    DEV_PASS_TYPE_ID,
    IssuedPass,
    WalletDevice,
    issue_pass,
    pass_json_of,
)
from walletd.models import Card, OutboxMessage
from walletd.push.outbox import APNS
from walletd.push.registrations import register_device


def _add_store(
    client: FlaskClient, brand: BrandKeys, name: str, latitude: str | None, longitude: str | None
) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name}
    if latitude is not None:
        body |= {"latitude": latitude, "longitude": longitude}
    response = client.post("/api/v1/locations", json=body, headers=brand.admin)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()  # type: ignore[no-any-return]


def _patch_program(client: FlaskClient, brand: BrandKeys, **fields: Any) -> Any:
    return client.patch(f"/api/v1/programs/{brand.program_id}", json=fields, headers=brand.admin)


def _pass_json(client: FlaskClient, issued: IssuedPass) -> dict[str, Any]:
    response = client.get(
        WalletDevice.url(issued, f"passes/{issued.pass_type_id}/{issued.serial}"),
        headers=WalletDevice.auth(issued),
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return pass_json_of(response.data)


def _register(app: Flask, serial: str, token: str) -> None:
    svc = services_of(app)
    with svc.db.transaction() as session:
        card = session.scalars(select(Card).where(Card.serial_number == serial)).one()
        register_device(session, library_id=f"lib-{token[:8]}", pass_type_id=DEV_PASS_TYPE_ID,
                        card=card, push_token=token, now=svc.clock())  # fmt: skip


def _pending_apns(app: Flask) -> int:
    with services_of(app).db.transaction() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.status == "pending", OutboxMessage.kind == APNS)
            )
            or 0
        )


def _clear_outbox(app: Flask) -> None:
    with services_of(app).db.transaction() as session:
        session.execute(delete(OutboxMessage))


def test_a_pass_carries_the_brands_stores_with_their_names_as_lock_screen_text(
    client: FlaskClient, brand: BrandKeys
) -> None:
    _add_store(client, brand, "Main Street", "25.033964", "121.564468")
    _add_store(client, brand, "Warehouse (no coordinates)", None, None)
    _add_store(client, brand, "Station", "25.047675", "121.517055")

    document = issue_pass(client, brand).pass_json

    assert document["locations"] == [
        {"latitude": 25.033964, "longitude": 121.564468, "relevantText": "Main Street"},
        {"latitude": 25.047675, "longitude": 121.517055, "relevantText": "Station"},
    ]
    assert "maxDistance" not in document


def test_a_pass_without_stores_has_no_locations(client: FlaskClient, brand: BrandKeys) -> None:
    document = issue_pass(client, brand).pass_json
    assert "locations" not in document and "maxDistance" not in document


def test_at_most_the_first_ten_stores_ride_on_a_pass(client: FlaskClient, brand: BrandKeys) -> None:
    for n in range(12):
        _add_store(client, brand, f"Shop {n}", f"25.{n:06d}", "121.5")

    locations = issue_pass(client, brand).pass_json["locations"]

    assert [place["relevantText"] for place in locations] == [f"Shop {n}" for n in range(10)]


def test_the_programs_text_and_distance_apply_to_every_store(
    client: FlaskClient, brand: BrandKeys
) -> None:
    _add_store(client, brand, "Main Street", "25.033964", "121.564468")
    response = _patch_program(
        client, brand, location_relevant_text="Show your card for points", location_max_distance=250
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert (body["location_relevant_text"], body["location_max_distance"]) == (
        "Show your card for points",
        250,
    )

    document = issue_pass(client, brand).pass_json

    assert [place["relevantText"] for place in document["locations"]] == [
        "Show your card for points"
    ]
    assert document["maxDistance"] == 250

    cleared = _patch_program(client, brand, location_relevant_text=None, location_max_distance=None)
    assert cleared.status_code == 200
    again = issue_pass(client, brand, name="Grace Hopper").pass_json
    assert again["locations"][0]["relevantText"] == "Main Street"
    assert "maxDistance" not in again


def test_store_settings_out_of_range_are_refused_with_the_field(
    client: FlaskClient, brand: BrandKeys
) -> None:
    for fields, field in (
        ({"location_max_distance": 5}, "location_max_distance"),
        ({"location_max_distance": 10_001}, "location_max_distance"),
        ({"location_max_distance": "100"}, "location_max_distance"),
        ({"location_max_distance": True}, "location_max_distance"),
        ({"location_relevant_text": ""}, "location_relevant_text"),
        ({"location_relevant_text": "x" * 101}, "location_relevant_text"),
    ):
        response = _patch_program(client, brand, **fields)
        assert response.status_code == 422, fields
        assert field in str(response.get_json()["error"]), response.get_json()


def test_adding_moving_and_deleting_a_store_pushes_the_cards(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    issued = issue_pass(client, brand)
    _register(app, issued.serial, "a" * 64)
    _clear_outbox(app)

    store = _add_store(client, brand, "Main Street", "25.033964", "121.564468")
    assert _pending_apns(app) == 1
    assert _pass_json(client, issued)["locations"][0]["relevantText"] == "Main Street"

    _clear_outbox(app)
    moved = client.patch(
        f"/api/v1/locations/{store['id']}", json={"latitude": "25.1"}, headers=brand.admin
    )
    assert moved.status_code == 200
    assert _pending_apns(app) == 1
    assert _pass_json(client, issued)["locations"][0]["latitude"] == 25.1

    _clear_outbox(app)
    renamed = client.patch(
        f"/api/v1/locations/{store['id']}", json={"name": "Old Town"}, headers=brand.admin
    )
    assert renamed.status_code == 200
    assert _pending_apns(app) == 1
    assert _pass_json(client, issued)["locations"][0]["relevantText"] == "Old Town"

    _clear_outbox(app)
    deleted = client.delete(f"/api/v1/locations/{store['id']}", headers=brand.admin)
    assert deleted.status_code == 204
    assert _pending_apns(app) == 1
    assert "locations" not in _pass_json(client, issued)


def test_a_change_the_cards_do_not_show_pushes_nothing(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    issued = issue_pass(client, brand)
    _register(app, issued.serial, "b" * 64)
    till = _add_store(client, brand, "Back office till", None, None)
    store = _add_store(client, brand, "Main Street", "25.0", "121.5")
    _clear_outbox(app)

    client.patch(f"/api/v1/locations/{till['id']}", json={"name": "Till 2"}, headers=brand.admin)
    client.patch(
        f"/api/v1/locations/{store['id']}", json={"address": "1 Main St"}, headers=brand.admin
    )

    assert _pending_apns(app) == 0


def test_another_brands_stores_never_reach_a_card(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    other = make_brand(app, "Other Tea")
    _add_store(client, other, "Their shop", "25.0", "121.5")

    assert "locations" not in issue_pass(client, brand).pass_json
