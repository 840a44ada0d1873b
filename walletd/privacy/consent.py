"""Marketing consent: the member's own switch on the card page, and the log of every change.

Campaigns, automations and event automations read `Member.marketing_consent` when they send
(walletd/campaigns/service.py, campaigns/automations.py, events/runs.py), so a change here
applies to the next message without any further bookkeeping.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from walletd.errors import NotFoundError
from walletd.models import Card, Member
from walletd.models.member import ConsentChange
from walletd.passes.view import CardView
from walletd.web.links import link_signature

Source = Literal["card_page", "api", "dashboard", "erasure", "email"]  # email: [email-campaigns]


def record_consent(
    session: Session, member: Member, consent: bool, source: Source, *, now: datetime
) -> bool:
    """Set the member's consent and log the change; False (and no log row) when unchanged."""
    if member.marketing_consent == consent:
        return False
    member.marketing_consent = consent
    session.add(
        ConsentChange(
            brand_id=member.brand_id,
            member_id=member.id,
            consent=consent,
            source=source,
            created_at=now,
        )
    )
    return True


def consent_history(session: Session, member_id: int) -> list[ConsentChange]:
    """The member's consent changes, oldest first."""
    return list(
        session.scalars(
            select(ConsentChange)
            .where(ConsentChange.member_id == member_id)
            .order_by(ConsentChange.id)
        ).all()
    )


def member_of_card(session: Session, serial: str) -> Member:
    """The live member behind a loyalty card's serial; erased members and coupons are not found."""
    member = session.scalar(
        select(Member)
        .join(Card, Card.member_id == Member.id)
        .where(Card.serial_number == serial, Card.kind == "loyalty", Member.erased_at.is_(None))
        .with_for_update(of=Member)
    )
    if member is None:
        raise NotFoundError("card not found")
    return member


def set_consent_from_card(session: Session, serial: str, consent: bool, *, now: datetime) -> bool:
    """The member behind a card turns promotional messages on or off; True when it changed."""
    return record_consent(session, member_of_card(session, serial), consent, "card_page", now=now)


def manage_url(base_url: str, secret_key: str, serial: str) -> str:
    """The signed card page address, at its messages switch (the back of the pass links it)."""
    sig = link_signature("page", serial, secret_key)
    return f"{base_url}/card/{serial}?sig={sig}#messages"


def with_manage_link(view: CardView, card: Card, *, base_url: str, secret_key: str) -> CardView:
    """The loyalty card's view with the "manage messages" link; unchanged for coupons, for a
    closed card, or without a signing key."""
    if card.kind != "loyalty" or view.voided or not secret_key:
        return view
    return replace(view, manage_url=manage_url(base_url, secret_key, card.serial_number))
