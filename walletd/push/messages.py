"""Brand messages on a member's cards: the back field on Apple, a message on Google."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from walletd.campaigns.templates import check_message
from walletd.loyalty.cards import touch_cards
from walletd.loyalty.context import Context
from walletd.loyalty.members import get_member
from walletd.messages.store import MessageSource, store_messages
from walletd.models import Card
from walletd.push.outbox import GOOGLE_MESSAGE, enqueue


@dataclass(frozen=True)
class QueuedMessage:
    """A message set on a member's cards and queued for delivery."""

    member_id: int
    message_id: str


def set_messages(
    session: Session,
    member_texts: Mapping[int, str],
    message_id: str,
    ctx: Context,
    *,
    campaign_id: int | None = None,
    google_per_object: bool = True,
    source: MessageSource | None = None,
    expires_at: datetime | None = None,
) -> list[Card]:
    """Put messages on many members' cards in a few statements (campaign and automation fan-out).

    Each becomes a card_messages row next to the member's earlier ones (the card shows the newest
    few); `Card.message` keeps the newest. The caller has checked the brand; texts are validated.
    """
    if not member_texts:
        return []
    cards = list(
        session.scalars(
            # Messages go on loyalty cards only: a coupon pass shows its offer, not campaigns.
            select(Card)
            .where(Card.member_id.in_(list(member_texts)), Card.kind == "loyalty")
            .order_by(Card.id)
        ).all()
    )
    origin = source or MessageSource(
        "campaign" if campaign_id is not None else "manual", campaign_id=campaign_id
    )
    store_messages(session, cards, member_texts, message_id, ctx.now, origin, expires_at)
    touch_cards(session, cards, ctx, campaign_id=campaign_id)
    if ctx.google_enabled and google_per_object:
        enqueue(
            session,
            [
                {
                    "kind": GOOGLE_MESSAGE,
                    "dedupe_key": f"{GOOGLE_MESSAGE}:{card.serial_number}:{message_id}",
                    "payload": {
                        "card_id": card.id,
                        "message_id": message_id,
                        "text": member_texts[card.member_id],
                    },
                    "campaign_id": campaign_id,
                }
                for card in cards
            ],
            now=ctx.now,
        )
    return cards


def send_member_message(
    session: Session,
    brand_id: int,
    member_id: int,
    message: object,
    ctx: Context,
    *,
    campaign_id: int | None = None,
    message_id: str | None = None,
    expires_at: datetime | None = None,
) -> QueuedMessage:
    """Put a message on the member's cards and queue the pushes that show it."""
    text = check_message(message)
    member = get_member(session, brand_id, member_id)
    # The id names this message everywhere (Apple field value change, Google message id), so a
    # retried delivery can never show it twice.
    message_id = message_id or f"m{secrets.token_hex(8)}"
    set_messages(
        session, {member.id: text}, message_id, ctx, campaign_id=campaign_id, expires_at=expires_at
    )
    return QueuedMessage(member_id=member.id, message_id=message_id)
