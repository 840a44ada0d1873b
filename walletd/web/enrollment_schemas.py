"""Request and response models of Apple rewards enrollment (settings and the personalize call)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, StrictBool

from walletd.enrollment.settings import MAX_DESCRIPTION, MAX_NFC_MESSAGE_BYTES, MAX_TERMS
from walletd.web.schemas import Reply, Request, Text

FieldName = Literal["name", "email", "phone", "postal_code"]


class NfcIn(Request):
    """The pass's `nfc` dictionary (needs Apple's NFC entitlement and an enhanced certificate)."""

    model_config = ConfigDict(extra="forbid")

    message: Text(MAX_NFC_MESSAGE_BYTES, 1) = Field(  # type: ignore[valid-type]
        description=f"sent to the terminal; at most {MAX_NFC_MESSAGE_BYTES} bytes in UTF-8"
    )
    encryption_public_key: Text(1000, 1) = Field(  # type: ignore[valid-type]
        description="base64 of an ECDH P-256 public key in X.509 SubjectPublicKeyInfo DER form"
    )
    requires_authentication: StrictBool = Field(
        default=False, description="the device asks for Face ID / passcode before sending"
    )


class AppleEnrollmentIn(Request):
    """The whole setting (it replaces the previous one); enabling it needs `nfc`."""

    model_config = ConfigDict(extra="forbid")

    enabled: StrictBool
    required_fields: Annotated[list[FieldName], Field(min_length=1, max_length=4)] = Field(
        description="what the sign-up sheet asks, at least one"
    )
    description: Text(MAX_DESCRIPTION) = Field(  # type: ignore[valid-type]
        default="", description="the program, as the sheet introduces it"
    )
    terms: Text(MAX_TERMS) | None = Field(  # type: ignore[valid-type]
        default=None, description="terms and conditions the holder accepts by signing up"
    )
    nfc: NfcIn | None = Field(default=None, description="required when enabled")


class NfcOut(Reply):
    """The NFC dictionary as stored."""

    message: str
    encryption_public_key: str
    requires_authentication: bool


class AppleEnrollmentOut(Reply):
    """Apple rewards enrollment: GET /join/{program_id}/enrollment.pkpass when enabled."""

    enabled: bool
    required_fields: list[str]
    description: str
    terms: str | None
    nfc: NfcOut | None


class PersonalizationInfo(Request):
    """What the holder entered on Wallet's sign-up sheet (only the requested keys are sent)."""

    fullName: str | None = None  # noqa: N815 - Apple's names
    givenName: str | None = None  # noqa: N815
    familyName: str | None = None  # noqa: N815
    emailAddress: str | None = None  # noqa: N815
    phoneNumber: str | None = None  # noqa: N815
    postalCode: str | None = None  # noqa: N815
    ISOCountryCode: str | None = None  # noqa: N815


class PersonalizationBody(Request):
    """Apple's PersonalizationDictionary."""

    personalizationToken: str  # noqa: N815
    requiredPersonalizationInfo: PersonalizationInfo  # noqa: N815
