"""Apple rewards enrollment end to end, with a device that speaks the personalization protocol:
download the personalizable pass, register, sign up, fetch the personalized card."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.factories import BrandKeys, enroll, make_brand, services_of
from tests.integration.apple.conftest import dev_cert_template, dev_certs, library_id, push_token
from tests.integration.enrollment_device import (
    EnrollingPhone,
    EnrollmentPass,
    enrollment_setting,
    set_enrollment,
    unzip,
)
from walletd import create_app
from walletd.config import Settings
from walletd.models import Card, Member, Registration
from walletd.models import EnrollmentPass as EnrollmentPassRow
from walletd.models.enrollment import EnrollmentRegistration
from walletd.passes.certs import DevCertPaths
from walletd.passes.pkpass import verify_pkpass
from walletd.passes.signing import inspect_signature

__all__ = ["dev_cert_template", "dev_certs"]

ADA = {"fullName": "Ada Lovelace", "emailAddress": "ada@example.com"}


@pytest.fixture
def settings(settings: Settings, dev_certs: DevCertPaths) -> Settings:
    """The suite's settings with the development signing certificates in place."""
    return settings


@pytest.fixture
def phone(client: FlaskClient) -> EnrollingPhone:
    """An iPhone with its own library id and push token."""
    return EnrollingPhone(client, library_id(7), push_token(7))


@pytest.fixture
def held(client: FlaskClient, brand: BrandKeys, phone: EnrollingPhone) -> EnrollmentPass:
    """A personalizable pass of a program with enrollment on, downloaded."""
    response = set_enrollment(client, brand, enrollment_setting())
    assert response.status_code == 200, response.get_json()
    return phone.download(brand.program_id)


def _rows(app: Flask, serial: str) -> tuple[EnrollmentPassRow, Card | None]:
    with services_of(app).db.transaction() as session:
        entry = session.scalar(
            select(EnrollmentPassRow).where(EnrollmentPassRow.serial_number == serial)
        )
        assert entry is not None
        card = session.scalar(select(Card).where(Card.serial_number == serial))
        session.expunge_all()
        return entry, card


def _members(app: Flask) -> list[Member]:
    with services_of(app).db.transaction() as session:
        members = list(session.scalars(select(Member).order_by(Member.id)))
        session.expunge_all()
        return members


# --- the personalizable pass ----------------------------------------------------------------


def test_the_enrollment_pass_carries_personalization_nfc_and_a_web_service(
    held: EnrollmentPass,
) -> None:
    assert verify_pkpass(held.package) == []
    assert held.personalization == {
        "requiredPersonalizationFields": [
            "PKPassPersonalizationFieldName",
            "PKPassPersonalizationFieldEmailAddress",
        ],
        "description": "Join Acme Rewards: a coffee on us after ten.",
        "termsAndConditions": "Points expire after a year.",
    }
    for name in (
        "personalizationLogo.png",
        "personalizationLogo@2x.png",
        "personalizationLogo@3x.png",
    ):
        assert held.files[name].startswith(b"\x89PNG")
        assert len(held.files[name]) < 20_000
    document = held.pass_json
    assert document["nfc"]["message"] == "acme-rewards"
    assert document["nfc"]["encryptionPublicKey"]
    assert "requiresAuthentication" not in document["nfc"]
    assert document["webServiceURL"] == "http://walletd.test/passes/"
    assert len(held.auth_token) >= 16
    assert "barcodes" not in document


def test_every_download_is_a_new_serial(
    client: FlaskClient, brand: BrandKeys, phone: EnrollingPhone, held: EnrollmentPass
) -> None:
    again = phone.download(brand.program_id)
    assert again.serial != held.serial
    assert again.auth_token != held.auth_token


def test_the_download_is_not_found_when_enrollment_is_off_or_the_program_unknown(
    client: FlaskClient, brand: BrandKeys
) -> None:
    assert client.get(f"/join/{brand.program_id}/enrollment.pkpass").status_code == 404
    off = enrollment_setting(enabled=False)
    assert set_enrollment(client, brand, off).status_code == 200
    assert client.get(f"/join/{brand.program_id}/enrollment.pkpass").status_code == 404
    assert client.get("/join/999999/enrollment.pkpass").status_code == 404


# --- end to end -----------------------------------------------------------------------------


def test_download_register_sign_up_and_fetch_the_personalized_card(
    app: Flask, client: FlaskClient, brand: BrandKeys, phone: EnrollingPhone, held: EnrollmentPass
) -> None:
    set_welcome = client.patch(
        f"/api/v1/programs/{brand.program_id}", json={"welcome_bonus": 50}, headers=brand.admin
    )
    assert set_welcome.status_code == 200
    # Before sign-up, Wallet registers and may fetch the pass: the pending pass answers.
    assert phone.register(held).status_code == 201
    assert phone.register(held).status_code == 200
    pending = phone.latest(held)
    assert pending.status_code == 200
    assert "personalization.json" in unzip(pending.data)

    _, answer = phone.sign_up(held, ADA)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.mimetype == "application/octet-stream"

    card = phone.latest(held)
    assert card.status_code == 200
    files = unzip(card.data)
    assert "personalization.json" not in files
    assert verify_pkpass(card.data) == []
    document = __import__("json").loads(files["pass.json"])
    assert document["serialNumber"] == held.serial
    assert document["passTypeIdentifier"] == held.pass_type_id
    assert document["authenticationToken"] == held.auth_token
    fields = {
        field["key"]: field["value"]
        for section in document["storeCard"].values()
        for field in section
    }
    assert fields["member"] == "Ada Lovelace"
    assert fields["points"] == 50

    [member] = _members(app)
    assert (member.name, member.email, member.points) == ("Ada Lovelace", "ada@example.com", 50)
    assert member.marketing_consent is False  # Wallet's sheet does not ask for it
    entry, found = _rows(app, held.serial)
    assert found is not None and found.member_id == member.id
    assert entry.personalized_at is not None and entry.member_id == member.id
    assert entry.consent["shared"] == ["name", "email"]
    assert entry.consent["terms"] == "Points expire after a year."
    # The device registered for the pending pass now follows the card.
    with services_of(app).db.transaction() as session:
        moved = session.scalars(select(Registration).where(Registration.card_id == found.id))
        assert [r.push_token for r in moved] == [phone.push_token]
        assert session.scalars(select(EnrollmentRegistration)).first() is None


def test_the_signed_token_verifies_with_openssl_against_the_pass_certificate(
    tmp_path: Path, dev_certs: DevCertPaths, phone: EnrollingPhone, held: EnrollmentPass
) -> None:
    sent, answer = phone.sign_up(held, ADA)
    assert answer.status_code == 200
    (tmp_path / "token").write_bytes(sent.encode())
    (tmp_path / "signature.der").write_bytes(answer.data)
    chain = tmp_path / "chain.pem"
    chain.write_bytes(dev_certs.ca_path.read_bytes() + dev_certs.wwdr_path.read_bytes())
    signer = tmp_path / "signer.pem"
    verified = subprocess.run(
        ["openssl", "cms", "-verify", "-binary", "-inform", "DER",
         "-in", str(tmp_path / "signature.der"), "-content", str(tmp_path / "token"),
         "-CAfile", str(chain), "-purpose", "any", "-signer", str(signer), "-out", "/dev/null"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stderr
    pem = subprocess.run(
        ["openssl", "x509", "-in", str(dev_certs.cert_path), "-outform", "PEM"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    assert signer.read_bytes().strip() == pem.strip()
    # A different token does not verify: the signature is of exactly what Wallet sent.
    (tmp_path / "token").write_bytes(b"another token")
    refused = subprocess.run(
        ["openssl", "cms", "-verify", "-binary", "-inform", "DER",
         "-in", str(tmp_path / "signature.der"), "-content", str(tmp_path / "token"),
         "-CAfile", str(chain), "-purpose", "any", "-out", "/dev/null"],
        capture_output=True, check=False,
    )  # fmt: skip
    assert refused.returncode != 0
    info = inspect_signature(answer.data, sent.encode())
    assert info.problems == () and info.detached


# --- refusals -------------------------------------------------------------------------------


def test_a_wrong_token_is_401_and_creates_no_member(
    app: Flask, phone: EnrollingPhone, held: EnrollmentPass
) -> None:
    _, answer = phone.sign_up(held, ADA, token="x" * 43)
    assert answer.status_code == 401
    assert _members(app) == []
    assert phone.register(held, token="y" * 43).status_code == 401
    assert phone.latest(held, token="z" * 43).status_code == 401


def test_missing_required_fields_are_400_with_the_field(
    app: Flask, phone: EnrollingPhone, held: EnrollmentPass
) -> None:
    _, answer = phone.sign_up(held, {"fullName": "Ada Lovelace"})
    assert answer.status_code == 400
    assert answer.get_json()["error"]["field"] == "requiredPersonalizationInfo.emailAddress"
    _, garbage = phone.sign_up(held, {}, body=b"not json")
    assert garbage.status_code == 400
    _, no_token = phone.sign_up(held, {}, body=b'{"requiredPersonalizationInfo": {}}')
    assert no_token.status_code == 400
    assert _members(app) == []
    entry, card = _rows(app, held.serial)
    assert entry.personalized_at is None and card is None


def test_a_replayed_request_signs_again_without_a_second_member(
    app: Flask, phone: EnrollingPhone, held: EnrollmentPass
) -> None:
    sent, first = phone.sign_up(held, ADA)
    _, again = phone.sign_up(held, ADA, personalization_token=sent)
    assert first.status_code == again.status_code == 200
    assert inspect_signature(again.data, sent.encode()).problems == ()
    assert len(_members(app)) == 1


def test_an_already_personalized_serial_keeps_its_member(
    app: Flask, phone: EnrollingPhone, held: EnrollmentPass
) -> None:
    assert phone.sign_up(held, ADA)[1].status_code == 200
    other = {"fullName": "Mallory", "emailAddress": "mallory@example.com"}
    _, answer = phone.sign_up(held, other)
    assert answer.status_code == 200
    [member] = _members(app)
    assert member.email == "ada@example.com"


def test_signing_up_with_a_known_email_matches_the_member_without_a_second_bonus(
    app: Flask, client: FlaskClient, brand: BrandKeys, phone: EnrollingPhone, held: EnrollmentPass
) -> None:
    known = enroll(client, brand, name="Ada L.", email="ada@example.com")
    _, answer = phone.sign_up(held, ADA)
    assert answer.status_code == 200
    [member] = _members(app)
    assert member.id == known["id"] and member.name == "Ada L."
    entry, card = _rows(app, held.serial)
    assert card is not None and card.member_id == known["id"]
    assert entry.consent["matched_existing_member"] is True


def test_another_brands_enrollment_serial_is_not_accepted_with_this_pass(
    app: Flask, client: FlaskClient, phone: EnrollingPhone, held: EnrollmentPass
) -> None:
    other = make_brand(app, name="Other")
    assert set_enrollment(client, other, enrollment_setting()).status_code == 200
    theirs = phone.download(other.program_id)
    # Our pass's token does not open their serial.
    _, answer = phone.sign_up(theirs, ADA, token=held.auth_token)
    assert answer.status_code == 401


def test_unregistering_a_pending_pass_forgets_the_device(
    app: Flask, phone: EnrollingPhone, held: EnrollmentPass
) -> None:
    assert phone.register(held).status_code == 201
    assert phone.unregister(held).status_code == 200
    with services_of(app).db.transaction() as session:
        assert session.scalars(select(EnrollmentRegistration)).first() is None


def test_the_postal_code_is_exported_and_forgotten_when_the_member_is_erased(
    app: Flask, client: FlaskClient, brand: BrandKeys, phone: EnrollingPhone
) -> None:
    setting = enrollment_setting(required_fields=["name", "phone", "postal_code"])
    assert set_enrollment(client, brand, setting).status_code == 200
    held = phone.download(brand.program_id)
    info = {"givenName": "Ada", "familyName": "Lovelace", "phoneNumber": "0912 345 678",
            "postalCode": "106"}  # fmt: skip
    assert phone.sign_up(held, info)[1].status_code == 200
    [member] = _members(app)
    assert (member.name, member.phone) == ("Ada Lovelace", "+886912345678")
    assert _rows(app, held.serial)[0].postal_code == "106"
    export = client.get(f"/api/v1/members/{member.id}/export", headers=brand.admin)
    assert export.status_code == 200
    [sign_up] = export.get_json()["member"]["apple_wallet_sign_ups"]
    assert sign_up["postal_code"] == "106"
    assert sign_up["fields_shared"] == ["name", "phone", "postal_code"]
    erased = client.delete(f"/api/v1/members/{member.id}", headers=brand.admin)
    assert erased.status_code in (200, 204), erased.get_data(as_text=True)
    assert _rows(app, held.serial)[0].postal_code is None


def test_the_pending_pass_answers_304_when_unchanged(
    phone: EnrollingPhone, held: EnrollmentPass
) -> None:
    first = phone.latest(held)
    assert first.status_code == 200
    again = phone.client.get(
        phone.url(held, f"passes/{held.pass_type_id}/{held.serial}"),
        headers={**phone.auth(held), "If-Modified-Since": first.headers["Last-Modified"]},
    )
    assert again.status_code == 304


def test_an_invalid_phone_is_400_naming_apples_field(
    app: Flask, client: FlaskClient, brand: BrandKeys, phone: EnrollingPhone
) -> None:
    setting = enrollment_setting(required_fields=["phone"])
    assert set_enrollment(client, brand, setting).status_code == 200
    held = phone.download(brand.program_id)
    _, answer = phone.sign_up(held, {"phoneNumber": "12"})
    assert answer.status_code == 400
    assert answer.get_json()["error"]["field"] == "requiredPersonalizationInfo.phoneNumber"
    assert _members(app) == []


def test_an_email_and_a_phone_of_two_different_members_conflict(
    app: Flask, client: FlaskClient, brand: BrandKeys, phone: EnrollingPhone
) -> None:
    enroll(client, brand, name="Ada", email="ada@example.com")
    enroll(client, brand, name="Bob", phone="0912345678")
    setting = enrollment_setting(required_fields=["email", "phone"])
    assert set_enrollment(client, brand, setting).status_code == 200
    held = phone.download(brand.program_id)
    info = {"emailAddress": "ada@example.com", "phoneNumber": "0912345678"}
    _, answer = phone.sign_up(held, info)
    assert answer.status_code == 409
    assert _rows(app, held.serial)[1] is None


def test_enrollment_pass_downloads_are_rate_limited_like_the_join_form(
    settings: Settings, dev_certs: DevCertPaths, clock: Any
) -> None:
    limited = settings.with_changes(ratelimit_join="2 per hour")
    app = create_app(limited, clock=clock)
    try:
        client = app.test_client()
        brand = make_brand(app)
        assert set_enrollment(client, brand, enrollment_setting()).status_code == 200
        path = f"/join/{brand.program_id}/enrollment.pkpass"
        assert [client.get(path).status_code for _ in range(3)] == [200, 200, 429]
    finally:
        services_of(app).close()


def test_a_known_email_with_another_phone_than_the_members_is_refused(
    app: Flask, client: FlaskClient, brand: BrandKeys, phone: EnrollingPhone
) -> None:
    enroll(client, brand, name="Ada", email="ada@example.com", phone="0912345678")
    setting = enrollment_setting(required_fields=["name", "email", "phone"])
    assert set_enrollment(client, brand, setting).status_code == 200
    held = phone.download(brand.program_id)
    info = {"fullName": "Mallory", "emailAddress": "ada@example.com", "phoneNumber": "0922333444"}
    _, answer = phone.sign_up(held, info)
    assert answer.status_code == 409
    assert len(_members(app)) == 1 and _rows(app, held.serial)[1] is None
    # Both agreeing with the member's: matched.
    _, matched = phone.sign_up(held, {**info, "phoneNumber": "+886 912 345 678"})
    assert matched.status_code == 200
    assert len(_members(app)) == 1 and _rows(app, held.serial)[1] is not None
