"""Finding a lost card again by e-mail or phone, proven with a second fact: the birthday.

walletd sends no e-mail or SMS, so it cannot prove that someone owns an address. A card is shown
again only when the e-mail or phone *and* the birthday given at enrollment both match; members who
gave no birthday ask staff, who find them in the dashboard and hand over the card link.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from walletd.errors import ValidationError
from walletd.loyalty.members import find_phone, get_card_of, normalise_email
from walletd.models import Card, Member

MAX_CONTACT_LENGTH = 320


@dataclass(frozen=True)
class Contact:
    """What a member typed to be found, in the form it is stored: lower-case e-mail or E.164."""

    kind: str  # "email" or "phone"
    value: str


def parse_contact(text: str, region: str = "TW") -> Contact:
    """The e-mail or phone of a recovery form; anything else is a `contact` field error."""
    value = text.strip()
    if not value or len(value) > MAX_CONTACT_LENGTH or any(ord(ch) < 32 for ch in value):
        raise ValidationError("enter the e-mail or phone you joined with", field="contact")
    if "@" in value:
        return Contact("email", normalise_email(value))
    phone = find_phone(value, region)
    if phone is None:
        raise ValidationError("enter the e-mail or phone you joined with", field="contact")
    return Contact("phone", phone)


def recover_card(
    session: Session, program_id: int, contact: str | Contact, birthday: date, *, region: str = "TW"
) -> Card | None:
    """The card of the program's member with this e-mail or phone and birthday, or None."""
    wanted = contact if isinstance(contact, Contact) else parse_contact(contact, region)
    column = Member.email if wanted.kind == "email" else Member.phone
    # An indexed equality on the identifier, then the birthday: members sharing a birthday
    # (any number of them) never hide each other.
    member = session.scalars(
        select(Member)
        .where(Member.program_id == program_id, column == wanted.value, Member.birthday == birthday)
        .order_by(Member.id.desc())
        .limit(1)
    ).first()
    return get_card_of(session, member) if member is not None else None
