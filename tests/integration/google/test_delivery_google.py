"""Delivery health of Google objects: updated after each change, saved and deleted by callbacks."""

from __future__ import annotations

import json
from typing import Any

from flask.testing import FlaskClient

from tests.factories import BrandKeys, FrozenClock, enroll, scan
from tests.fakes.google_wallet import GoogleWalletFake
from tests.integration.google.conftest import class_id_of, object_id_of
from walletd.push.dispatcher import Dispatcher


def _google(client: FlaskClient, brand: BrandKeys) -> dict[str, Any]:
    response = client.get("/api/v1/reports/delivery", headers=brand.admin)
    assert response.status_code == 200, response.get_data(as_text=True)
    [program] = [p for p in response.get_json()["programs"] if p["id"] == brand.program_id]
    return dict(program["google"])


def _callback(
    client: FlaskClient,
    fake: GoogleWalletFake,
    brand: BrandKeys,
    serial: str,
    event_type: str,
    clock: FrozenClock,
) -> None:
    body = fake.callbacks.sign(
        object_id=object_id_of(fake, serial),
        class_id=class_id_of(fake, brand.program_id),
        event_type=event_type,
        now=clock.now,
    )
    response = client.post(
        "/google/callbacks", data=json.dumps(body), content_type="application/json"
    )
    assert response.get_json() == {"status": "recorded"}


def test_saved_objects_count_as_up_to_date_when_written_after_the_change(
    client: FlaskClient,
    brand: BrandKeys,
    fake: GoogleWalletFake,
    dispatcher: Dispatcher,
    clock: FrozenClock,
) -> None:
    fast = enroll(client, brand, name="Ada")["card"]
    slow = enroll(client, brand, name="Grace")["card"]
    dispatcher.drain()
    for card in (fast, slow):
        _callback(client, fake, brand, card["serial_number"], "save", clock)
    clock.advance(minutes=1)
    scan(client, brand, fast["barcode"], "10", "fast")
    clock.advance(seconds=20)
    dispatcher.drain()  # Google has the fast card's change 20 s after it
    scan(client, brand, slow["barcode"], "10", "slow")
    clock.advance(minutes=20)

    google = _google(client, brand)
    assert google == {
        "saved": 2,
        "up_to_date": 1,
        "within_1m": 1,
        "within_10m": 1,
        "within_1h": 1,
        "share": {"within_1m": 0.5, "within_10m": 0.5, "within_1h": 0.5},
        "saves": 2,
        "deletions": 0,
        "update_failures": 0,
    }
    dispatcher.drain()  # the slow card's change reaches Google 20 minutes late
    google = _google(client, brand)
    assert (google["up_to_date"], google["within_10m"], google["within_1h"]) == (2, 1, 2)


def test_a_deleted_card_is_no_longer_saved_and_its_deletion_is_counted(
    client: FlaskClient,
    brand: BrandKeys,
    fake: GoogleWalletFake,
    dispatcher: Dispatcher,
    clock: FrozenClock,
) -> None:
    card = enroll(client, brand)["card"]
    dispatcher.drain()
    _callback(client, fake, brand, card["serial_number"], "save", clock)
    clock.advance(hours=1)
    _callback(client, fake, brand, card["serial_number"], "del", clock)
    google = _google(client, brand)
    assert (google["saved"], google["saves"], google["deletions"]) == (0, 1, 1)


def test_an_object_update_google_refuses_is_counted_as_a_failure(
    client: FlaskClient,
    brand: BrandKeys,
    fake: GoogleWalletFake,
    dispatcher: Dispatcher,
    clock: FrozenClock,
) -> None:
    card = enroll(client, brand)["card"]
    dispatcher.drain()
    _callback(client, fake, brand, card["serial_number"], "save", clock)
    clock.advance(minutes=1)
    scan(client, brand, card["barcode"], "10", "k")
    fake.fail_next(400, reason="invalid", message="Invalid loyaltyPoints")
    dispatcher.drain()
    google = _google(client, brand)
    assert (google["update_failures"], google["up_to_date"], google["saved"]) == (1, 0, 1)
