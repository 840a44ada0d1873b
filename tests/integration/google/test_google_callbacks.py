"""Signed save/delete callbacks from Google: verified, de-duplicated, recorded per card."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from tests.factories import BrandKeys, FrozenClock, enroll, services_of
from tests.fakes.google_wallet import GoogleWalletFake
from tests.integration.google.conftest import card_of, class_id_of, object_id_of
from walletd import create_app
from walletd.config import Settings
from walletd.models import GoogleCallbackNonce
from walletd.push.google_sync import count_google_installed


def _post(client: FlaskClient, body: Any) -> TestResponse:
    data = body if isinstance(body, bytes) else json.dumps(body)
    return client.post("/google/callbacks", data=data, content_type="application/json")


def _nonces(app: Flask) -> int:
    with services_of(app).db.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(GoogleCallbackNonce)) or 0)


def _installed(app: Flask, brand: BrandKeys) -> int:
    with services_of(app).db.transaction() as session:
        return count_google_installed(session, brand.brand_id)


@pytest.fixture
def card(client: FlaskClient, brand: BrandKeys) -> dict[str, Any]:
    """An enrolled member's card."""
    return dict(enroll(client, brand)["card"])


@pytest.fixture
def sign(
    fake: GoogleWalletFake, brand: BrandKeys, card: dict[str, Any], clock: FrozenClock
) -> Callable[..., dict[str, Any]]:
    """Signs a callback about the card as Google would, at the app's current time."""

    def signer(event_type: str = "save", **changes: Any) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "object_id": object_id_of(fake, card["serial_number"]),
            "class_id": class_id_of(fake, brand.program_id),
            "event_type": event_type,
            "now": clock.now,
        }
        return fake.callbacks.sign(**{**fields, **changes})

    return signer


def test_saves_and_deletes_are_recorded_and_counted(
    app: Flask,
    client: FlaskClient,
    brand: BrandKeys,
    card: dict[str, Any],
    sign: Callable[..., dict[str, Any]],
    clock: FrozenClock,
) -> None:
    assert _installed(app, brand) == 0
    response = _post(client, sign("save"))
    assert response.status_code == 200
    assert response.get_json() == {"status": "recorded"}
    assert card_of(app, card["serial_number"]).google_saved_at == clock.now
    assert _installed(app, brand) == 1

    clock.advance(hours=1)
    assert _post(client, sign("del")).get_json() == {"status": "recorded"}
    stored = card_of(app, card["serial_number"])
    assert stored.google_deleted_at == clock.now
    assert _installed(app, brand) == 0

    clock.advance(hours=1)
    _post(client, sign("save"))
    assert _installed(app, brand) == 1
    assert _nonces(app) == 3


def test_a_repeated_nonce_answers_200_and_changes_nothing(
    app: Flask,
    client: FlaskClient,
    card: dict[str, Any],
    sign: Callable[..., dict[str, Any]],
    clock: FrozenClock,
) -> None:
    body = sign("save", message_ttl=timedelta(hours=2))
    assert _post(client, body).get_json() == {"status": "recorded"}
    saved_at = card_of(app, card["serial_number"]).google_saved_at
    clock.advance(minutes=30)
    again = _post(client, body)
    assert again.status_code == 200
    assert again.get_json() == {"status": "duplicate"}
    assert card_of(app, card["serial_number"]).google_saved_at == saved_at
    assert _nonces(app) == 1


@pytest.fixture(
    params=[
        "tampered message",
        "expired message",
        "other issuer",
        "object of another issuer",
        "unknown root key",
        "expired intermediate key",
        "wrong protocol",
    ]
)
def unverifiable(
    request: pytest.FixtureRequest, sign: Callable[..., dict[str, Any]], clock: FrozenClock
) -> dict[str, Any]:
    """A callback body that must not be believed."""
    case = request.param
    if case == "tampered message":
        body = sign("save")
        body["signedMessage"] = body["signedMessage"].replace('"save"', '"del"')
        return body
    if case == "expired message":
        return sign("save", now=clock.now - timedelta(minutes=10))
    if case == "other issuer":
        return sign("save", recipient_id="1234567890123456789")
    if case == "object of another issuer":
        return sign("save", object_id="1234567890123456789.card-x")
    if case == "unknown root key":
        return sign("save", root_key=ec.generate_private_key(ec.SECP256R1()))
    if case == "expired intermediate key":
        return sign("save", key_ttl=timedelta(seconds=-1))
    return sign("save", protocol_version="ECv1")


def test_unverifiable_callbacks_are_refused_and_nothing_is_recorded(
    app: Flask, client: FlaskClient, card: dict[str, Any], unverifiable: dict[str, Any]
) -> None:
    response = _post(client, unverifiable)
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "invalid_signature"
    assert _nonces(app) == 0
    stored = card_of(app, card["serial_number"])
    assert (stored.google_saved_at, stored.google_deleted_at) == (None, None)


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b""])
def test_a_body_that_is_not_a_json_object_is_a_bad_request(
    app: Flask, client: FlaskClient, body: bytes
) -> None:
    response = _post(client, body)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "malformed_json"
    assert _nonces(app) == 0


def test_a_callback_for_an_unknown_object_is_acknowledged(
    app: Flask, client: FlaskClient, fake: GoogleWalletFake, sign: Callable[..., dict[str, Any]]
) -> None:
    response = _post(client, sign("save", object_id=f"{fake.issuer_id}.card-nobody"))
    assert response.status_code == 200
    assert response.get_json() == {"status": "unknown_object"}
    assert _nonces(app) == 1


@pytest.fixture
def app_without_keys(
    settings: Settings, fake: GoogleWalletFake, clock: FrozenClock
) -> Iterator[Flask]:
    """An app whose root-key URL answers 404."""
    app = create_app(
        settings.with_changes(google_root_keys_url=fake.base_url + "/missing"), clock=clock
    )
    yield app
    services_of(app).close()


def test_callbacks_answer_503_while_googles_keys_are_unavailable(
    app_without_keys: Flask, fake: GoogleWalletFake, clock: FrozenClock
) -> None:
    body = fake.callbacks.sign(
        object_id=f"{fake.issuer_id}.card-x", class_id=f"{fake.issuer_id}.program-1", now=clock.now
    )
    response = _post(app_without_keys.test_client(), body)
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "keys_unavailable"
    assert _nonces(app_without_keys) == 0


def test_root_keys_are_fetched_once_per_process(
    client: FlaskClient, fake: GoogleWalletFake, sign: Callable[..., dict[str, Any]]
) -> None:
    for _ in range(3):
        assert _post(client, sign("save")).status_code == 200
    assert [r.path for r in fake.requests if r.path.endswith("/keys")] == ["/gp/m/issuer/keys"]


@pytest.fixture
def app_without_google(settings: Settings, clock: FrozenClock) -> Iterator[Flask]:
    """An app with Google Wallet not configured."""
    app = create_app(settings.with_changes(google_issuer_id=""), clock=clock)
    yield app
    services_of(app).close()


def test_callbacks_are_not_found_without_google(app_without_google: Flask) -> None:
    response = _post(app_without_google.test_client(), {"protocolVersion": "ECv2SigningOnly"})
    assert response.status_code == 404
