"""Finding a lost card again by e-mail or phone, proven with a second fact: the birthday.

walletd sends no e-mail or SMS, so it cannot prove that someone owns an address. A card is shown
again only when the e-mail or phone *and* the birthday given at enrollment both match; members who
gave no birthday ask staff, who find them in the dashboard and hand over the card link.
"""

from __future__ import annotations

import re
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from walletd.errors import ValidationError
from walletd.loyalty.members import get_card_of
from walletd.models import Card, Member

_DIGITS = re.compile(r"\D")


def _phone_digits(text: str) -> str:
    return _DIGITS.sub("", text)


def recover_card(session: Session, program_id: int, contact: str, birthday: date) -> Card | None:
    """The card of the program's member with this e-mail or phone and birthday, or None."""
    text = contact.strip()
    if not text or len(text) > 320:
        raise ValidationError("enter the e-mail or phone you joined with", field="contact")
    candidates = session.scalars(
        select(Member)
        .where(Member.program_id == program_id, Member.birthday == birthday)
        .order_by(Member.id.desc())
        .limit(200)
    ).all()
    if "@" in text:
        wanted = text.lower()
        matches = [m for m in candidates if m.email == wanted]
    else:
        digits = _phone_digits(text)
        if len(digits) < 6:
            raise ValidationError("enter the e-mail or phone you joined with", field="contact")
        matches = [m for m in candidates if m.phone and _phone_digits(m.phone) == digits]
    if not matches:
        return None
    return get_card_of(session, matches[0])
