"""A server whose Apple signing material is missing answers 503 on what needs it, not 500, and
serves passes as soon as the files are in place, without a restart."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.factories import BrandKeys, enroll, services_of
from walletd.config import Settings
from walletd.models import Card
from walletd.passes.certs import write_dev_certs


def _pass_request(app: Flask, serial: str) -> tuple[str, dict[str, str]]:
    with services_of(app).db.sessions() as session:
        token = session.scalars(select(Card.auth_token).where(Card.serial_number == serial)).one()
    return serial, {"Authorization": f"ApplePass {token}"}


def test_pass_routes_answer_503_until_the_certificates_exist_then_serve_the_pass(
    app: Flask,
    client: FlaskClient,
    brand: BrandKeys,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert not settings.apple_cert.exists()  # the `settings` fixture names files nobody wrote
    card = enroll(client, brand)["card"]
    link = urlsplit(card["apple_pass_url"])
    download = f"{link.path}?{link.query}"
    serial, auth = _pass_request(app, card["serial_number"])
    latest = f"/passes/v1/passes/pass.dev.walletd.loyalty/{serial}"

    with caplog.at_level(logging.ERROR):
        for _ in range(3):
            for response in (client.get(download), client.get(latest, headers=auth)):
                assert response.status_code == 503, response.get_data(as_text=True)
                assert response.get_json()["error"]["code"] == "apple_unavailable"
    logged = [r for r in caplog.records if "Apple passes cannot be signed" in r.getMessage()]
    assert len(logged) == 1  # six failing requests, one line: the server's log stays readable

    written = write_dev_certs(settings.apple_cert.parent)
    assert written.cert_path == settings.apple_cert
    fetched = client.get(download)
    assert fetched.status_code == 200
    assert fetched.mimetype == "application/vnd.apple.pkpass"
    latest_response = client.get(latest, headers=auth)
    assert latest_response.status_code == 200
    assert latest_response.data[:2] == b"PK"


def test_every_route_that_signs_or_checks_the_pass_type_documents_the_503(
    client: FlaskClient,
) -> None:
    paths = client.get("/openapi.json").get_json()["paths"]
    for path, method in (
        ("/passes/v1/passes/{pass_type_id}/{serial}", "get"),
        ("/passes/v1/devices/{device_id}/registrations/{pass_type_id}/{serial}", "post"),
        ("/passes/v1/devices/{device_id}/registrations/{pass_type_id}/{serial}", "delete"),
        ("/passes/v1/passes/{pass_type_id}/{serial}/personalize", "post"),
        ("/cards/{serial}/pass.pkpass", "get"),
    ):
        assert "503" in paths[path][method]["responses"], (path, method)
