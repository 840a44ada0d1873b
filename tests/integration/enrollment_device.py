"""A device simulator for Apple rewards enrollment: downloads a personalizable pass, registers
for it, posts the sign-up sheet's answers and fetches the personalized pass, as Wallet does."""

from __future__ import annotations

import base64
import io
import json
import secrets
import zipfile
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.factories import BrandKeys


def nfc_public_key(curve: ec.EllipticCurve | None = None) -> str:
    """Base64 of a fresh ECDH public key in X.509 SubjectPublicKeyInfo DER form (P-256)."""
    key = ec.generate_private_key(curve or ec.SECP256R1()).public_key()
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode("ascii")


def enrollment_setting(**changes: Any) -> dict[str, Any]:
    """A valid, enabled `apple_enrollment` setting, with some keys changed."""
    setting: dict[str, Any] = {
        "enabled": True,
        "required_fields": ["name", "email"],
        "description": "Join Acme Rewards: a coffee on us after ten.",
        "terms": "Points expire after a year.",
        "nfc": {"message": "acme-rewards", "encryption_public_key": nfc_public_key()},
    }
    setting.update(changes)
    return setting


def set_enrollment(client: FlaskClient, brand: BrandKeys, setting: Any) -> TestResponse:
    """PATCH the program's apple_enrollment setting."""
    return client.patch(
        f"/api/v1/programs/{brand.program_id}",
        json={"apple_enrollment": setting},
        headers=brand.admin,
    )


@dataclass(frozen=True)
class EnrollmentPass:
    """A personalizable pass as Wallet holds it after the download."""

    serial: str
    pass_type_id: str
    auth_token: str
    web_service_url: str
    files: dict[str, bytes]
    package: bytes

    @property
    def pass_json(self) -> dict[str, Any]:
        """The pass's pass.json."""
        document: dict[str, Any] = json.loads(self.files["pass.json"])
        return document

    @property
    def personalization(self) -> dict[str, Any]:
        """The pass's personalization.json."""
        document: dict[str, Any] = json.loads(self.files["personalization.json"])
        return document


def unzip(package: bytes) -> dict[str, bytes]:
    """Every file of a .pkpass by name."""
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


class EnrollingPhone:
    """One iPhone's Wallet going through rewards enrollment."""

    def __init__(self, client: FlaskClient, library_id: str, push_token: str) -> None:
        self.client = client
        self.library_id = library_id
        self.push_token = push_token

    def download(self, program_id: int) -> EnrollmentPass:
        """Tap the enrollment link: GET /join/{program_id}/enrollment.pkpass."""
        response = self.client.get(f"/join/{program_id}/enrollment.pkpass")
        assert response.status_code == 200, response.get_data(as_text=True)
        files = unzip(response.data)
        document = json.loads(files["pass.json"])
        return EnrollmentPass(
            serial=document["serialNumber"],
            pass_type_id=document["passTypeIdentifier"],
            auth_token=document["authenticationToken"],
            web_service_url=document["webServiceURL"],
            files=files,
            package=response.data,
        )

    @staticmethod
    def url(held: EnrollmentPass, path: str) -> str:
        """A path under the pass's webServiceURL (Wallet appends v1/...)."""
        return urlsplit(held.web_service_url).path + "v1/" + path

    @staticmethod
    def auth(held: EnrollmentPass, token: str | None = None) -> dict[str, str]:
        """Wallet's Authorization header for the pass."""
        return {"Authorization": f"ApplePass {token or held.auth_token}"}

    def register(self, held: EnrollmentPass, token: str | None = None) -> TestResponse:
        """Register this device for the pass's updates."""
        return self.client.post(
            self.url(
                held, f"devices/{self.library_id}/registrations/{held.pass_type_id}/{held.serial}"
            ),
            json={"pushToken": self.push_token},
            headers=self.auth(held, token),
        )

    def unregister(self, held: EnrollmentPass) -> TestResponse:
        """Unregister this device from the pass."""
        return self.client.delete(
            self.url(
                held, f"devices/{self.library_id}/registrations/{held.pass_type_id}/{held.serial}"
            ),
            headers=self.auth(held),
        )

    def updates(self, held: EnrollmentPass) -> TestResponse:
        """Ask which serials changed for this device."""
        return self.client.get(
            self.url(held, f"devices/{self.library_id}/registrations/{held.pass_type_id}")
        )

    def sign_up(
        self,
        held: EnrollmentPass,
        info: dict[str, Any],
        *,
        personalization_token: str | None = None,
        token: str | None = None,
        body: bytes | None = None,
    ) -> tuple[str, TestResponse]:
        """Post the sheet's answers; returns the personalization token sent and the answer."""
        sent = personalization_token or secrets.token_hex(16)
        data = body
        if data is None:
            data = json.dumps(
                {"personalizationToken": sent, "requiredPersonalizationInfo": info}
            ).encode()
        response = self.client.post(
            self.url(held, f"passes/{held.pass_type_id}/{held.serial}/personalize"),
            data=data,
            content_type="application/json",
            headers=self.auth(held, token),
        )
        return sent, response

    def latest(self, held: EnrollmentPass, token: str | None = None) -> TestResponse:
        """GET the latest version of the pass."""
        return self.client.get(
            self.url(held, f"passes/{held.pass_type_id}/{held.serial}"),
            headers=self.auth(held, token),
        )
