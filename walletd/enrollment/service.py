"""Rewards enrollment use cases: hand out a personalizable pass, serve it and its device
registrations until it is personalized, and turn the sign-up sheet's answers into a member."""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from walletd.enrollment.passes import EnrollmentPassView
from walletd.enrollment.settings import find_settings
from walletd.errors import AuthenticationError, ConflictError, NotFoundError, ValidationError
from walletd.loyalty.barcodes import make_barcode, new_auth_token, new_serial
from walletd.loyalty.context import Context
from walletd.loyalty.members import Enrollment, enroll_member, validate_enrollment
from walletd.loyalty.programs import find_program, program_brand_name
from walletd.models import Card, EnrollmentPass, EnrollmentRegistration, Member, Program
from walletd.push import registrations
from walletd.push.outbox import card_push_rows, enqueue

# Enrollment serials are card serials (24 base32 characters) behind "EN": they stay valid in a
# card's barcode once personalized, and a path tells at a glance whether one can be pending.
SERIAL_PREFIX = "EN"
SERIAL_LENGTH = len(SERIAL_PREFIX) + 24
MAX_PERSONALIZATION_TOKEN = 4096
MAX_PENDING_DEVICES = 10
# What a card says when the sheet did not ask for a name.
UNNAMED = "Member"
_DUMMY_TOKEN = "x" * 43
_PUSH_TOKEN = re.compile(r"[0-9A-Fa-f]{1,200}")
_IDENTIFIER = re.compile(r"[\x21-\x7e]{1,128}")
_POSTAL_CODE = re.compile(r"[0-9A-Za-z \-]{1,32}")
# walletd's names of the sheet's fields, and the keys of Apple's requiredPersonalizationInfo.
_APPLE_KEYS = {
    "name": "fullName",
    "email": "emailAddress",
    "phone": "phoneNumber",
    "postal_code": "postalCode",
}


def new_enrollment_serial() -> str:
    """A fresh serial for a personalizable pass (and later its member's card)."""
    return SERIAL_PREFIX + new_serial()


def is_enrollment_serial(serial: str) -> bool:
    """Whether a serial has the form of an enrollment pass's (no database read)."""
    return len(serial) == SERIAL_LENGTH and serial.startswith(SERIAL_PREFIX)


def _program_view(
    session: Session, program: Program, entry: EnrollmentPass, sheet: Mapping[str, Any]
) -> EnrollmentPassView:
    return EnrollmentPassView(
        serial_number=entry.serial_number,
        authentication_token=entry.auth_token,
        organization_name=program_brand_name(session, program),
        program_name=program.name,
        template=program.template,
        background_color=program.background_color,
        foreground_color=program.foreground_color,
        label_color=program.label_color,
        required_fields=tuple(sheet["fields"]),
        description=str(sheet["description"]),
        terms=sheet.get("terms"),
        nfc=dict(sheet["nfc"]),
        created_at=entry.created_at,
    )


def issue_enrollment_pass(session: Session, program_id: int, now: datetime) -> EnrollmentPassView:
    """A new personalizable pass of a program whose enrollment is on; else not found."""
    program = find_program(session, program_id)
    settings = find_settings(session, program_id) if program is not None else None
    if program is None or settings is None or not settings["enabled"] or not settings["nfc"]:
        raise NotFoundError("this program offers no enrollment pass")
    # What the sheet shows is fixed at download: the consent recorded later refers to it.
    sheet = {
        "fields": list(settings["required_fields"]),
        "description": settings["description"],
        "terms": settings["terms"],
        "nfc": settings["nfc"],
    }
    entry = EnrollmentPass(
        brand_id=program.brand_id,
        program_id=program.id,
        serial_number=new_enrollment_serial(),
        auth_token=new_auth_token(),
        created_at=now.replace(microsecond=0),
        consent=sheet,
    )
    session.add(entry)
    session.flush()
    return _program_view(session, program, entry, sheet)


def _authenticated(session: Session, serial: str, token: str | None, *, lock: bool) -> Any:
    query = select(EnrollmentPass).where(EnrollmentPass.serial_number == serial)
    entry = session.scalar(query.with_for_update() if lock else query)
    expected = entry.auth_token if entry is not None else _DUMMY_TOKEN
    given = token.encode("utf-8", "replace") if token else b""
    if not given or not hmac.compare_digest(expected.encode(), given) or entry is None:
        raise AuthenticationError("unauthorized")
    return entry


def find_pending_pass(session: Session, serial: str, token: str | None) -> EnrollmentPass | None:
    """The not yet personalized enrollment pass of `serial`, authenticated; None when the serial
    is no pending enrollment pass (then it is a card, or unknown, for the usual web service)."""
    if not is_enrollment_serial(serial):
        return None
    entry = session.scalar(select(EnrollmentPass).where(EnrollmentPass.serial_number == serial))
    if entry is None or entry.personalized_at is not None:
        return None
    checked: EnrollmentPass = _authenticated(session, serial, token, lock=False)
    return checked


def pending_pass_view(session: Session, entry: EnrollmentPass) -> EnrollmentPassView:
    """The personalizable pass as it was handed out (what Wallet fetches before sign-up)."""
    program = session.get_one(Program, entry.program_id)
    return _program_view(session, program, entry, entry.consent)


def register_pending_device(
    session: Session, entry: EnrollmentPass, *, library_id: str, push_token: object, now: datetime
) -> bool:
    """Register a device for a pending pass; True when new (moved to the card on sign-up)."""
    token = push_token.strip().lower() if isinstance(push_token, str) else ""
    if _PUSH_TOKEN.fullmatch(token) is None:
        raise ValidationError("pushToken must be a hexadecimal device token", field="pushToken")
    if _IDENTIFIER.fullmatch(library_id) is None:
        raise ValidationError(
            "deviceLibraryIdentifier is not valid", field="deviceLibraryIdentifier"
        )
    row = session.scalar(
        select(EnrollmentRegistration).where(
            EnrollmentRegistration.pass_id == entry.id,
            EnrollmentRegistration.library_id == library_id,
        )
    )
    if row is not None:
        row.push_token = token
        row.updated_at = now
        return False
    held = session.scalar(
        select(func.count())
        .select_from(EnrollmentRegistration)
        .where(EnrollmentRegistration.pass_id == entry.id)
    )
    if int(held or 0) >= MAX_PENDING_DEVICES:
        # One pass on one person's devices; more is someone replaying the pass's token.
        raise ValidationError("too many devices for this pass", field="deviceLibraryIdentifier")
    session.add(
        EnrollmentRegistration(
            pass_id=entry.id,
            library_id=library_id,
            push_token=token,
            created_at=now,
            updated_at=now,
        )
    )
    session.flush()
    return True


def unregister_pending_device(session: Session, entry: EnrollmentPass, library_id: str) -> None:
    """Forget a device's registration for a pending pass (nothing when it had none)."""
    session.execute(
        delete(EnrollmentRegistration).where(
            EnrollmentRegistration.pass_id == entry.id,
            EnrollmentRegistration.library_id == library_id,
        )
    )


@dataclass(frozen=True)
class Personalized:
    """The outcome of a personalize request."""

    member_id: int | None
    serial: str
    created_member: bool  # a new member (False: matched an existing one, or a replay)
    replay: bool  # the serial was personalized before; nothing changed


@dataclass(frozen=True)
class SheetAnswers:
    """What the sign-up sheet sent, in walletd's terms."""

    name: str | None
    email: str | None
    phone: str | None
    postal_code: str | None


def _text(info: Mapping[str, Any], key: str) -> str | None:
    value = info.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 320:
        raise ValidationError(f"{key} must be text", field=f"requiredPersonalizationInfo.{key}")
    return value.strip() or None


def read_answers(info: Mapping[str, Any], required: tuple[str, ...]) -> SheetAnswers:
    """Apple's requiredPersonalizationInfo; every field the sheet asked must be there."""
    full = _text(info, "fullName")
    given, family = _text(info, "givenName"), _text(info, "familyName")
    name = full or " ".join(part for part in (given, family) if part) or None
    answers = SheetAnswers(
        name=name,
        email=_text(info, "emailAddress"),
        phone=_text(info, "phoneNumber"),
        postal_code=_text(info, "postalCode"),
    )
    for wanted in required:
        if getattr(answers, wanted) is None:
            raise ValidationError(
                f"{_APPLE_KEYS[wanted]} is required by this program's sign-up sheet",
                field=f"requiredPersonalizationInfo.{_APPLE_KEYS[wanted]}",
            )
    if answers.postal_code is not None and not _POSTAL_CODE.fullmatch(answers.postal_code):
        raise ValidationError(
            "postalCode is not a postal code", field="requiredPersonalizationInfo.postalCode"
        )
    return answers


def _matching_member(
    session: Session, program_id: int, email: str | None, phone: str | None
) -> Member | None:
    """The live member of the program with this e-mail or phone; two different ones conflict."""
    checks = [column == value for column, value in ((Member.email, email), (Member.phone, phone))
              if value is not None]  # fmt: skip
    if not checks:
        return None
    found = list(
        session.scalars(
            select(Member)
            .where(Member.program_id == program_id, Member.erased_at.is_(None), or_(*checks))
            .order_by(Member.id)
            .limit(3)
        )
    )
    if len({member.id for member in found}) > 1:
        raise ConflictError("the e-mail and the phone belong to two different members")
    if not found:
        return None
    member = found[0]
    # Every contact the sheet gave must agree with the member's own: knowing a member's e-mail
    # alone must not be enough to get their card when their phone is on file and differs.
    for given, held in ((email, member.email), (phone, member.phone)):
        if given is not None and held is not None and given != held:
            raise ConflictError("the e-mail and the phone do not match the same member")
    return member


def personalize(
    session: Session,
    *,
    serial: str,
    token: str | None,
    pass_type_id: str,
    body: object,
    ctx: Context,
    max_devices: int,
) -> Personalized:
    """Apple's personalize request: check it, create or match the member and give them the
    pass's serial as their card; a serial personalized before changes nothing (a replay)."""
    if not is_enrollment_serial(serial):
        raise AuthenticationError("unauthorized")
    entry: EnrollmentPass = _authenticated(session, serial, token, lock=True)
    if not isinstance(body, Mapping):
        raise ValidationError("the body must be a JSON object", field="personalizationToken")
    personalization_token = body.get("personalizationToken")
    if (
        not isinstance(personalization_token, str)
        or not personalization_token
        or len(personalization_token) > MAX_PERSONALIZATION_TOKEN
    ):
        raise ValidationError(
            "personalizationToken must be a non-empty string", field="personalizationToken"
        )
    if entry.personalized_at is not None:
        return Personalized(entry.member_id, serial, created_member=False, replay=True)
    info = body.get("requiredPersonalizationInfo")
    if not isinstance(info, Mapping):
        raise ValidationError(
            "requiredPersonalizationInfo must be an object", field="requiredPersonalizationInfo"
        )
    sheet = dict(entry.consent)
    answers = read_answers(info, tuple(sheet["fields"]))
    try:
        checked = validate_enrollment(
            Enrollment(name=answers.name or UNNAMED, email=answers.email, phone=answers.phone),
            ctx.now.date(),
            phone_region=ctx.phone_region,
        )
    except ValidationError as exc:
        # Named as Wallet sent it, so a device log points at the sheet's field.
        field = _APPLE_KEYS.get(exc.field or "", "fullName")
        raise ValidationError(exc.message, field=f"requiredPersonalizationInfo.{field}") from None
    program = session.get_one(Program, entry.program_id)
    member = _matching_member(session, program.id, checked.email, checked.phone)
    identity = (entry.serial_number, entry.auth_token)
    if member is None:
        enrollment = Enrollment(
            name=checked.name, email=checked.email, phone=checked.phone, program_id=program.id
        )
        member, card = enroll_member(
            session, program.brand_id, enrollment, ctx, card_identity=identity
        )
        created = True
    else:
        # The holder proved nothing but knowing the e-mail or phone: the member's data stays as
        # it is, and the new card is one more card of theirs (as a replacement card would be).
        card = Card(
            brand_id=member.brand_id,
            member_id=member.id,
            serial_number=entry.serial_number,
            auth_token=entry.auth_token,
            barcode=make_barcode(entry.serial_number, ctx.secret_key),
            update_tag=0,
            updated_at=ctx.now.replace(microsecond=0),
            created_at=ctx.now,
        )
        session.add(card)
        session.flush()
        if ctx.google_enabled:
            rows = card_push_rows(
                session, [card.id], google=True, serials={card.id: card.serial_number}
            )
            enqueue(session, rows, now=ctx.now)
        created = False
    _move_registrations(session, entry, card, pass_type_id, ctx.now, max_devices)
    entry.personalized_at = ctx.now
    entry.card_id = card.id
    entry.member_id = member.id
    entry.postal_code = answers.postal_code
    # The sheet shown, the fields shared and when: the holder's consent to the program's terms.
    # Wallet's sheet asks nothing about promotional messages, so marketing consent stays off.
    entry.consent = {
        **sheet,
        "accepted_at": ctx.now.isoformat(),
        "shared": [name for name in sheet["fields"] if getattr(answers, name) is not None],
        "matched_existing_member": not created,
    }
    return Personalized(member.id, serial, created_member=created, replay=False)


def _move_registrations(
    session: Session,
    entry: EnrollmentPass,
    card: Card,
    pass_type_id: str,
    now: datetime,
    max_devices: int,
) -> None:
    """Devices registered for the pending pass now follow the member's card."""
    pending = list(
        session.scalars(
            select(EnrollmentRegistration)
            .where(EnrollmentRegistration.pass_id == entry.id)
            .order_by(EnrollmentRegistration.id)
        )
    )
    for row in pending:
        registrations.register_device(
            session,
            library_id=row.library_id,
            pass_type_id=pass_type_id,
            card=card,
            push_token=row.push_token,
            now=now,
            max_devices=max_devices,
        )
        session.delete(row)
    session.flush()


def forget_enrollment_details(session: Session, member_id: int) -> None:
    """An erased member's postal code (the only personal data kept here) is forgotten."""
    for entry in session.scalars(
        select(EnrollmentPass).where(EnrollmentPass.member_id == member_id)
    ):
        entry.postal_code = None


def sign_ups_of(session: Session, member_id: int) -> dict[str, Any]:
    """The member's sign-ups from Wallet for their data export ({} when they have none)."""
    entries = session.scalars(
        select(EnrollmentPass)
        .where(EnrollmentPass.member_id == member_id)
        .order_by(EnrollmentPass.id)
    )
    listed = [
        {
            "serial_number": entry.serial_number,
            "personalized_at": entry.personalized_at,
            "postal_code": entry.postal_code,
            "fields_shared": (entry.consent or {}).get("shared"),
            "description": (entry.consent or {}).get("description"),
            "terms": (entry.consent or {}).get("terms"),
            "matched_existing_member": (entry.consent or {}).get("matched_existing_member"),
        }
        for entry in entries
    ]
    return {"apple_wallet_sign_ups": listed} if listed else {}
