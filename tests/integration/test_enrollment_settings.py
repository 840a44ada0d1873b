"""The program setting apple_enrollment: validated, shown by GET, audited."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.factories import BrandKeys, make_brand, services_of
from tests.integration.enrollment_device import enrollment_setting, nfc_public_key, set_enrollment
from tests.integration.pages.conftest import admin, dashboard
from walletd.models import AuditEntry

__all__ = ["admin", "dashboard"]


def _field(response: Any) -> str:
    body = response.get_json()["error"]
    return str(body.get("field") or body["errors"][0]["field"])


def test_enrollment_is_off_until_set(client: FlaskClient, brand: BrandKeys) -> None:
    shown = client.get(f"/api/v1/programs/{brand.program_id}", headers=brand.admin).get_json()
    assert shown["apple_enrollment"]["enabled"] is False
    assert shown["apple_enrollment"]["nfc"] is None


def test_a_valid_setting_is_saved_shown_and_audited(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    setting = enrollment_setting(required_fields=["phone", "name"])
    setting["nfc"]["requires_authentication"] = True
    response = set_enrollment(client, brand, setting)
    assert response.status_code == 200, response.get_json()
    shown = client.get(f"/api/v1/programs/{brand.program_id}", headers=brand.admin).get_json()
    saved = shown["apple_enrollment"]
    assert saved["enabled"] is True
    assert saved["required_fields"] == ["name", "phone"]
    assert saved["nfc"]["requires_authentication"] is True
    assert saved["nfc"]["encryption_public_key"] == setting["nfc"]["encryption_public_key"]
    with services_of(app).db.transaction() as session:
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "program.updated")
        ).one()
        assert "apple_enrollment" in entry.changes


def test_enabling_without_nfc_is_refused_with_a_clear_error(
    client: FlaskClient, brand: BrandKeys
) -> None:
    response = set_enrollment(client, brand, enrollment_setting(nfc=None))
    assert response.status_code == 422
    assert _field(response) == "apple_enrollment.nfc"
    assert "NFC" in response.get_json()["error"]["message"]
    # Off, no NFC is needed.
    assert (
        set_enrollment(client, brand, enrollment_setting(enabled=False, nfc=None)).status_code
        == 200
    )


def _der_base64(key: Any) -> str:
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


@pytest.mark.parametrize(
    "key",
    [
        "not base64!",
        base64.b64encode(b"junk").decode(),
        nfc_public_key(ec.SECP384R1()),
        "RSA",
        "PEM",
    ],
    ids=["not-base64", "not-der", "p384", "rsa", "pem"],
)
def test_an_encryption_key_other_than_p256_spki_der_is_422(
    client: FlaskClient, brand: BrandKeys, key: str
) -> None:
    if key == "RSA":
        key = _der_base64(
            rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
        )
    if key == "PEM":
        pem = (
            ec.generate_private_key(ec.SECP256R1())
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        key = base64.b64encode(pem).decode()
    setting = enrollment_setting(nfc={"message": "acme", "encryption_public_key": key})
    response = set_enrollment(client, brand, setting)
    assert response.status_code == 422
    assert _field(response) == "apple_enrollment.nfc.encryption_public_key"


def test_an_nfc_message_over_64_bytes_is_422(client: FlaskClient, brand: BrandKeys) -> None:
    # 22 characters, 66 bytes in UTF-8.
    message = "會員" * 11
    setting = enrollment_setting(
        nfc={"message": message, "encryption_public_key": nfc_public_key()}
    )
    response = set_enrollment(client, brand, setting)
    assert response.status_code == 422
    assert _field(response) == "apple_enrollment.nfc.message"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"required_fields": []}, "apple_enrollment.required_fields"),
        ({"required_fields": ["birthday"]}, "apple_enrollment.required_fields.0"),
        ({"enabled": "yes"}, "apple_enrollment.enabled"),
        ({"surprise": 1}, "apple_enrollment.surprise"),
    ],
)
def test_malformed_settings_are_422_with_the_field(
    client: FlaskClient, brand: BrandKeys, changes: dict[str, Any], field: str
) -> None:
    response = set_enrollment(client, brand, enrollment_setting(**changes))
    assert response.status_code == 422
    assert _field(response) == field


def test_another_brand_cannot_change_the_setting(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    other = make_brand(app, name="Other")
    response = client.patch(
        f"/api/v1/programs/{brand.program_id}",
        json={"apple_enrollment": enrollment_setting()},
        headers=other.admin,
    )
    assert response.status_code == 404


def test_the_dashboard_poster_links_the_enrollment_pass(
    client: FlaskClient, brand: BrandKeys, dashboard: FlaskClient
) -> None:
    off = dashboard.get("/dashboard/enrollment-poster").get_data(as_text=True)
    assert "Sign-up from Apple Wallet is off" in off
    assert set_enrollment(client, brand, enrollment_setting()).status_code == 200
    response = dashboard.get("/dashboard/enrollment-poster")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f"http://walletd.test/join/{brand.program_id}/enrollment.pkpass" in html
    assert 'src="data:image/png;base64,' in html
    assert "is off" not in html
    assert "/dashboard/enrollment-poster" in dashboard.get("/dashboard").get_data(as_text=True)
