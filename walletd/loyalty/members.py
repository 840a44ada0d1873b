"""Enrolling members and looking them up."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import date

import phonenumbers
from sqlalchemy import select
from sqlalchemy.orm import Session

from walletd.campaigns.templates import check_language
from walletd.errors import MemberExistsError, NotFoundError, ValidationError
from walletd.loyalty import ledger
from walletd.loyalty.barcodes import make_barcode, new_auth_token, new_serial
from walletd.loyalty.brands import get_program
from walletd.loyalty.context import Context
from walletd.models import Card, Member, Tier
from walletd.push.outbox import card_push_rows, enqueue
from walletd.webhooks import events as webhook_events

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
# Longer than any phone number written with spaces, a prefix and an extension.
MAX_PHONE_INPUT = 64
_REFERRAL_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


@dataclass(frozen=True)
class Enrollment:
    """A validated enrollment request."""

    name: str
    email: str | None = None
    phone: str | None = None
    birthday: date | None = None
    marketing_consent: bool = False
    referral_code: str | None = None
    program_id: int | None = None
    # The language the member's messages are written in; None: the program's default.
    language: str | None = None


def find_phone(text: str, region: str) -> str | None:
    """The E.164 form (`+886912345678`) of a phone number as typed, or None when it is none.

    A number without its country code is read in `region`; any spelling of one number (spaces,
    dashes, brackets, a trunk 0, full-width digits, `tel:`) gives the same E.164 text, so
    lookups are an equality on the stored column. An extension is not part of E.164 and is
    dropped.
    """
    if len(text) > MAX_PHONE_INPUT:
        return None
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_phone(text: str, region: str) -> str:
    """The E.164 form of a phone number; a text that is no valid number is a field error."""
    phone = find_phone(text.strip(), region)
    if phone is None:
        raise ValidationError("phone is not a valid number", field="phone")
    return phone


def normalise_email(text: str) -> str:
    """E-mail addresses are stored and compared in lower case without surrounding blanks."""
    return text.strip().lower()


def _has_control_characters(text: str) -> bool:
    # NUL and other control characters are never part of a name, and Postgres refuses NUL.
    return any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in text)


def validate_enrollment(
    enrollment: Enrollment, today: date, *, phone_region: str = "TW"
) -> Enrollment:
    """Check every field; the first problem is raised with the field it concerns."""
    name = enrollment.name.strip()
    if not name or len(name) > 200 or _has_control_characters(name):
        raise ValidationError("name must be 1 to 200 characters", field="name")
    email = normalise_email(enrollment.email) if enrollment.email else None
    if email is not None and (
        len(email) > 320 or not _EMAIL.match(email) or _has_control_characters(email)
    ):
        raise ValidationError("email is not a valid address", field="email")
    phone = normalise_phone(enrollment.phone, phone_region) if enrollment.phone else None
    if enrollment.birthday is not None and not (date(1900, 1, 1) <= enrollment.birthday <= today):
        raise ValidationError("birthday must be a past date", field="birthday")
    code = enrollment.referral_code.strip().upper() if enrollment.referral_code else None
    if code is not None and (len(code) > 16 or _has_control_characters(code)):
        raise ValidationError("referral code is not known", field="referral_code")
    return Enrollment(
        name=name,
        email=email,
        phone=phone,
        birthday=enrollment.birthday,
        marketing_consent=enrollment.marketing_consent,
        referral_code=code,
        program_id=enrollment.program_id,
        language=check_language(enrollment.language),
    )


def ensure_contact_is_new(
    session: Session,
    program_id: int,
    *,
    email: str | None,
    phone: str | None,
    exclude_member_id: int | None = None,
) -> None:
    """Refuse an e-mail or phone (normalised) that another member of the program already has.

    A check in the caller's transaction, not a unique index: databases from before it may hold
    duplicates, which an index would refuse to build on. Two enrollments racing in the same
    instant can still both pass; what the index would add is not worth failing a migration.
    """
    checks = (("email", "e-mail", Member.email, email), ("phone", "phone", Member.phone, phone))
    for field, label, column, value in checks:
        if value is None:
            continue
        query = select(Member.id).where(Member.program_id == program_id, column == value)
        if exclude_member_id is not None:
            query = query.where(Member.id != exclude_member_id)
        existing = session.scalar(query.order_by(Member.id).limit(1))
        if existing is not None:
            raise MemberExistsError(
                f"a member of the program already has this {label}",
                field=field,
                existing_member_id=existing,
            )


def _new_referral_code() -> str:
    return "".join(secrets.choice(_REFERRAL_ALPHABET) for _ in range(8))


def enroll_member(
    session: Session,
    brand_id: int,
    enrollment: Enrollment,
    ctx: Context,
    *,
    card_identity: tuple[str, str] | None = None,  # [enrollment]
) -> tuple[Member, Card]:
    """Create a member with a card, the base tier and the welcome bonus.

    `card_identity` (serial, authentication token) gives the card those of the personalizable
    pass it replaces in Wallet (walletd/enrollment); otherwise they are new.
    """
    data = validate_enrollment(enrollment, ctx.now.date(), phone_region=ctx.phone_region)
    program = get_program(session, brand_id, data.program_id)
    ensure_contact_is_new(session, program.id, email=data.email, phone=data.phone)
    referrer_id: int | None = None
    if data.referral_code:
        referrer = session.scalar(
            select(Member).where(
                Member.program_id == program.id, Member.referral_code == data.referral_code
            )
        )
        if referrer is None:
            raise ValidationError("referral code is not known", field="referral_code")
        referrer_id = referrer.id
    base_tier = session.scalars(
        select(Tier).where(Tier.program_id == program.id).order_by(Tier.threshold).limit(1)
    ).first()
    member = Member(
        brand_id=brand_id,
        program_id=program.id,
        name=data.name,
        email=data.email,
        phone=data.phone,
        birthday=data.birthday,
        marketing_consent=data.marketing_consent,
        referral_code=_new_referral_code(),
        referred_by_id=referrer_id,
        language=data.language,
        tier_id=base_tier.id if base_tier and base_tier.threshold <= 0 else None,
        points=0,
        created_at=ctx.now,
    )
    session.add(member)
    session.flush()
    serial, auth_token = card_identity or (new_serial(), new_auth_token())  # [enrollment]
    card = Card(
        brand_id=brand_id,
        member_id=member.id,
        serial_number=serial,
        auth_token=auth_token,
        barcode=make_barcode(serial, ctx.secret_key),
        update_tag=0,
        updated_at=ctx.now.replace(microsecond=0),
        created_at=ctx.now,
    )
    session.add(card)
    session.flush()
    if program.welcome_bonus > 0:
        ledger.grant_bonus(
            session,
            member,
            program.welcome_bonus,
            reason="welcome",
            idempotency_key=f"welcome:{member.id}",
            ctx=ctx,
        )
    if ctx.google_enabled:
        # The save link names the card's Google object: create it before the holder taps it.
        serials = {card.id: card.serial_number}
        enqueue(
            session, card_push_rows(session, [card.id], google=True, serials=serials), now=ctx.now
        )
    webhook_events.member_enrolled(session, member, tier_name(session, member), now=ctx.now)
    return member, card


def get_member(session: Session, brand_id: int, member_id: int) -> Member:
    """A brand's member; another brand's member, or an erased one, is not found."""
    member = session.scalar(
        select(Member).where(
            Member.id == member_id, Member.brand_id == brand_id, Member.erased_at.is_(None)
        )
    )
    if member is None:
        raise NotFoundError("member not found")
    return member


def get_card_of(session: Session, member: Member) -> Card:
    """The member's current loyalty card (never one of their coupon passes)."""
    card = session.scalars(
        select(Card)
        .where(Card.member_id == member.id, Card.kind == "loyalty")
        .order_by(Card.id.desc())
        .limit(1)
    ).first()
    if card is None:
        raise NotFoundError("card not found")
    return card


def tier_name(session: Session, member: Member) -> str | None:
    """The name of the member's tier, if any."""
    if member.tier_id is None:
        return None
    tier = session.get(Tier, member.tier_id)
    return tier.name if tier else None
