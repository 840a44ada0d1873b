"""Use cases on card messages: clear a member's messages, remove expired ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from walletd.audit import Actor, record
from walletd.errors import ValidationError
from walletd.loyalty.cards import touch_cards
from walletd.loyalty.context import Context
from walletd.loyalty.members import get_member
from walletd.messages.store import (
    KEPT,
    live_messages,
    loyalty_cards,
    queue_google_messages,
    show_newest,
    withdraw,
)
from walletd.models import CardMessage

# Expired messages handled per transaction by the expiry job.
EXPIRY_CHUNK = 500
# A message may stay at most this long (expires_at) and must leave a little after now.
MAX_LIFETIME = timedelta(days=366)
MIN_LIFETIME = timedelta(minutes=1)


def message_expiry(expires_at: object, expires_in_days: object, now: datetime) -> datetime | None:
    """When a message leaves the card: an ISO 8601 time with an offset, or N whole days from now."""
    if expires_at is not None and expires_in_days is not None:
        raise ValidationError("give expires_at or expires_in_days, not both", field="expires_at")
    if expires_in_days is not None:
        if (
            isinstance(expires_in_days, bool)
            or not isinstance(expires_in_days, int)
            or not 1 <= expires_in_days <= 365
        ):
            raise ValidationError(
                "expires_in_days must be a whole number from 1 to 365", field="expires_in_days"
            )
        return now + timedelta(days=expires_in_days)
    if expires_at is None:
        return None
    refusal = "expires_at must be an ISO 8601 time with an offset"
    if not isinstance(expires_at, str) or len(expires_at) > 64:
        raise ValidationError(refusal, field="expires_at")
    try:
        when = datetime.fromisoformat(expires_at.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValidationError(refusal, field="expires_at") from exc
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValidationError("expires_at needs a UTC offset such as +08:00", field="expires_at")
    if when < now + MIN_LIFETIME:
        raise ValidationError("expires_at must be in the future", field="expires_at")
    if when > now + MAX_LIFETIME:
        raise ValidationError("expires_at is more than a year away", field="expires_at")
    return when.astimezone(UTC)


def clear_member_messages(
    session: Session, brand_id: int, member_id: int, ctx: Context, *, actor: Actor
) -> int:
    """Take every message off the member's cards and push them; how many were on."""
    member = get_member(session, brand_id, member_id)
    live = live_messages(session, [member.id])[member.id]
    cards = loyalty_cards(session, [member.id])
    # Messages from before card_messages live only in Card.message: clearing removes them too.
    legacy = any(card.message for card in cards)
    if not live and not legacy:
        return 0
    withdraw(session, live, "cleared", ctx.now)
    show_newest(cards, {member.id: []})
    touch_cards(session, cards, ctx)
    if ctx.google_enabled:
        queue_google_messages(session, cards, ctx.now)
    record(session, actor, "member.messages_cleared", "member", member.id, now=ctx.now,
           changes={"messages": [len(live), 0]})  # fmt: skip
    return len(live)


def expire_due_messages(session: Session, ctx: Context, *, limit: int = EXPIRY_CHUNK) -> int:
    """Withdraw up to `limit` messages past their expiry and push the cards; how many expired."""
    due = list(
        session.scalars(
            select(CardMessage)
            .where(
                CardMessage.withdrawn_at.is_(None),
                CardMessage.expires_at.is_not(None),
                CardMessage.expires_at <= ctx.now,
            )
            .order_by(CardMessage.expires_at, CardMessage.id)
            .limit(limit)
        ).all()
    )
    if not due:
        return 0
    withdraw(session, due, "expired", ctx.now)
    members = {m.member_id for m in due}
    live = live_messages(session, members)
    cards = loyalty_cards(session, members)
    show_newest(cards, {member_id: messages[:KEPT] for member_id, messages in live.items()})
    touch_cards(session, cards, ctx)
    if ctx.google_enabled:
        queue_google_messages(session, cards, ctx.now)
    return len(due)
