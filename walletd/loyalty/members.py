"""Enrolling members and looking them up."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from walletd.errors import NotFoundError, ValidationError
from walletd.loyalty import ledger
from walletd.loyalty.barcodes import make_barcode, new_auth_token, new_serial
from walletd.loyalty.brands import get_program
from walletd.loyalty.context import Context
from walletd.models import Card, Member, Tier
from walletd.push.outbox import card_push_rows, enqueue

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
_PHONE = re.compile(r"^\+?[0-9][0-9 ()-]{5,30}$")
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


def validate_enrollment(enrollment: Enrollment, today: date) -> Enrollment:
    """Check every field; the first problem is raised with the field it concerns."""
    name = enrollment.name.strip()
    if not name or len(name) > 200:
        raise ValidationError("name must be 1 to 200 characters", field="name")
    email = enrollment.email.strip().lower() if enrollment.email else None
    if email is not None and (len(email) > 320 or not _EMAIL.match(email)):
        raise ValidationError("email is not a valid address", field="email")
    phone = enrollment.phone.strip() if enrollment.phone else None
    if phone is not None and not _PHONE.match(phone):
        raise ValidationError("phone is not a valid number", field="phone")
    if enrollment.birthday is not None and not (date(1900, 1, 1) <= enrollment.birthday <= today):
        raise ValidationError("birthday must be a past date", field="birthday")
    code = enrollment.referral_code.strip().upper() if enrollment.referral_code else None
    return Enrollment(
        name=name,
        email=email,
        phone=phone,
        birthday=enrollment.birthday,
        marketing_consent=enrollment.marketing_consent,
        referral_code=code,
        program_id=enrollment.program_id,
    )


def _new_referral_code() -> str:
    return "".join(secrets.choice(_REFERRAL_ALPHABET) for _ in range(8))


def enroll_member(
    session: Session, brand_id: int, enrollment: Enrollment, ctx: Context
) -> tuple[Member, Card]:
    """Create a member with a card, the base tier and the welcome bonus."""
    data = validate_enrollment(enrollment, ctx.now.date())
    program = get_program(session, brand_id, data.program_id)
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
        tier_id=base_tier.id if base_tier and base_tier.threshold <= 0 else None,
        points=0,
        created_at=ctx.now,
    )
    session.add(member)
    session.flush()
    serial = new_serial()
    card = Card(
        brand_id=brand_id,
        member_id=member.id,
        serial_number=serial,
        auth_token=new_auth_token(),
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
    return member, card


def get_member(session: Session, brand_id: int, member_id: int) -> Member:
    """A brand's member; another brand's member is not found."""
    member = session.scalar(
        select(Member).where(Member.id == member_id, Member.brand_id == brand_id)
    )
    if member is None:
        raise NotFoundError("member not found")
    return member


def get_card_of(session: Session, member: Member) -> Card:
    """The member's current card."""
    card = session.scalars(
        select(Card).where(Card.member_id == member.id).order_by(Card.id.desc()).limit(1)
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
