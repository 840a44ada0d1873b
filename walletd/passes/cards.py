"""Turning a card row into the neutral CardView both wallets render."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from walletd.models import Brand, Card, Member, Program, Tier
from walletd.passes.view import CardView


def card_view(session: Session, card: Card) -> CardView:
    """The neutral view of one card, from its member, program, tier and brand."""
    member, program, brand = session.execute(
        select(Member, Program, Brand)
        .join(Program, Program.id == Member.program_id)
        .join(Brand, Brand.id == Member.brand_id)
        .where(Member.id == card.member_id)
    ).one()
    tier = session.get(Tier, member.tier_id) if member.tier_id is not None else None
    return CardView(
        serial_number=card.serial_number,
        authentication_token=card.auth_token,
        barcode_message=card.barcode,
        barcode_alt_text=card.serial_number[-8:],
        organization_name=brand.name,
        program_name=program.name,
        member_name=member.name,
        points=member.points,
        tier=tier.name if tier else None,
        background_color=program.background_color,
        foreground_color=program.foreground_color,
        label_color=program.label_color,
        template=program.template,
        updated_at=card.updated_at,
        message=card.message,
        message_id=card.message_id,
        member_since=member.created_at.date().isoformat(),
        program_id=program.id,
        brand_id=brand.id,
    )


def find_card_by_serial(session: Session, serial: str) -> Card | None:
    """A card by its serial number, or None."""
    return session.scalar(select(Card).where(Card.serial_number == serial))
