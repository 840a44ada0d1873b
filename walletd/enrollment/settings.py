"""A program's `apple_enrollment` setting: what the sign-up sheet asks and the pass's NFC."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy.orm import Session

from walletd.errors import ValidationError
from walletd.models import AppleEnrollment, Program

SETTING = "apple_enrollment"
# The API's names for the sheet's fields, and Apple's (PKPassPersonalizationField…).
FIELD_NAMES = {
    "name": "PKPassPersonalizationFieldName",
    "email": "PKPassPersonalizationFieldEmailAddress",
    "phone": "PKPassPersonalizationFieldPhoneNumber",
    "postal_code": "PKPassPersonalizationFieldPostalCode",
}
MAX_NFC_MESSAGE_BYTES = 64  # Apple: the nfc message is at most 64 bytes
MAX_DESCRIPTION = 500
MAX_TERMS = 10_000
DISABLED: dict[str, Any] = {
    "enabled": False,
    "required_fields": ["name", "email"],
    "description": "",
    "terms": None,
    "nfc": None,
}


def _field(name: str) -> str:
    return f"{SETTING}.{name}"


def parse_encryption_public_key(text: object) -> str:
    """The base64 text of an ECDH P-256 public key in X.509 SubjectPublicKeyInfo DER form.

    Apple's `encryptionPublicKey`; anything else (PEM, another curve, RSA, a raw point, junk) is
    refused with the field, since Wallet would reject the whole pass.
    """
    field = _field("nfc.encryption_public_key")
    message = "must be the base64 of a P-256 public key in X.509 SubjectPublicKeyInfo DER form"
    if not isinstance(text, str) or not text.strip() or len(text) > 1000:
        raise ValidationError(message, field=field)
    compact = "".join(text.split())
    try:
        der = base64.b64decode(compact, validate=True)
        key = serialization.load_der_public_key(der)
    except (binascii.Error, ValueError, TypeError, UnsupportedAlgorithm):
        raise ValidationError(message, field=field) from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValidationError(message, field=field)
    # Kept as sent (compressed or uncompressed point), without the spacing a paste may add.
    return base64.b64encode(der).decode("ascii")


def _parse_nfc(value: object) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValidationError("nfc must be an object", field=_field("nfc"))
    message = value.get("message")
    if not isinstance(message, str) or not message.strip():
        raise ValidationError("the NFC message must not be blank", field=_field("nfc.message"))
    if len(message.encode("utf-8")) > MAX_NFC_MESSAGE_BYTES:
        raise ValidationError(
            f"the NFC message must be at most {MAX_NFC_MESSAGE_BYTES} bytes (UTF-8)",
            field=_field("nfc.message"),
        )
    key = parse_encryption_public_key(value.get("encryption_public_key"))
    requires = value.get("requires_authentication", False)
    if not isinstance(requires, bool):
        raise ValidationError(
            "requires_authentication must be true or false",
            field=_field("nfc.requires_authentication"),
        )
    return {"message": message, "encryption_public_key": key, "requires_authentication": requires}


def parse_settings(value: object) -> dict[str, Any]:
    """Validate a whole `apple_enrollment` object; the first problem is raised with its field."""
    if not isinstance(value, Mapping):
        raise ValidationError("apple_enrollment must be an object", field=SETTING)
    enabled = value.get("enabled", False)
    if not isinstance(enabled, bool):
        raise ValidationError("enabled must be true or false", field=_field("enabled"))
    fields = value.get("required_fields", DISABLED["required_fields"])
    if (
        not isinstance(fields, list)
        or not fields
        or any(not isinstance(f, str) or f not in FIELD_NAMES for f in fields)
        or len(set(fields)) != len(fields)
    ):
        raise ValidationError(
            "required_fields must list at least one of name, email, phone, postal_code, each once",
            field=_field("required_fields"),
        )
    description = value.get("description", "")
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        raise ValidationError(
            f"description must be text of at most {MAX_DESCRIPTION} characters",
            field=_field("description"),
        )
    terms = value.get("terms")
    if terms is not None and (not isinstance(terms, str) or len(terms) > MAX_TERMS):
        raise ValidationError(
            f"terms must be text of at most {MAX_TERMS} characters", field=_field("terms")
        )
    nfc = _parse_nfc(value.get("nfc"))
    if enabled and nfc is None:
        # Wallet offers the sign-up sheet only on NFC-enabled passes: a personalizable pass
        # without an nfc dictionary would install as a plain card that never asks anything.
        raise ValidationError(
            "Apple offers rewards enrollment only on NFC passes: set nfc (message and "
            "encryption_public_key) to enable it",
            field=_field("nfc"),
        )
    if enabled and not description.strip():
        raise ValidationError(
            "the sign-up sheet needs a description of the program", field=_field("description")
        )
    ordered = [name for name in FIELD_NAMES if name in fields]
    return {
        "enabled": enabled,
        "required_fields": ordered,
        "description": description,
        "terms": terms or None,
        "nfc": nfc,
    }


def find_settings(session: Session, program_id: int) -> dict[str, Any] | None:
    """The program's enrollment settings, or None when never set."""
    row = session.get(AppleEnrollment, program_id)
    return dict(row.settings) if row is not None else None


def settings_of(session: Session, program_id: int) -> dict[str, Any]:
    """The setting as GET /api/v1/programs/{id} shows it (disabled when never set)."""
    return find_settings(session, program_id) or dict(DISABLED)


def apply_settings(session: Session, program: Program, value: object, now: datetime) -> None:
    """Replace the program's enrollment settings with a validated `value` (the caller audits)."""
    parsed = parse_settings(value)
    row = session.get(AppleEnrollment, program.id)
    if row is None:
        session.add(
            AppleEnrollment(
                program_id=program.id, brand_id=program.brand_id, settings=parsed, updated_at=now
            )
        )
    elif row.settings != parsed:
        row.settings = parsed
        row.updated_at = now
