"""Card change bookkeeping: update tags, change times, and the outbox rows that announce them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from walletd.loyalty.context import Context
from walletd.messages.store import withdraw_untrue_reminders
from walletd.models import Card
from walletd.push.outbox import Later, enqueue_card_pushes


def next_update_tag(session: Session) -> int:
    """A tag for a change made in this transaction.

    On Postgres it is the transaction id: a poll answers with the oldest transaction still running
    (`current_poll_tag`), so a change whose transaction overlaps the poll is reported next time.
    SQLite runs one writer at a time, so a counter is enough.
    """
    if session.get_bind().dialect.name == "postgresql":
        return int(session.execute(text("SELECT pg_current_xact_id()::text::bigint")).scalar_one())
    current = session.execute(select(func.max(Card.update_tag))).scalar_one()
    return int(current or 0) + 1


def current_poll_tag(session: Session) -> int:
    """The tag to hand a polling device: every change with a smaller tag is committed."""
    if session.get_bind().dialect.name == "postgresql":
        return int(
            session.execute(
                text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
            ).scalar_one()
        )
    current = session.execute(select(func.max(Card.update_tag))).scalar_one()
    return int(current or 0) + 1


# A scan's card tag, computed inside its UPDATE (one object: statements built from it cache).
_XACT_TAG = text("pg_current_xact_id()::text::bigint")


def touch_cards(
    session: Session,
    cards: list[Card],
    ctx: Context,
    *,
    campaign_id: int | None = None,
    fold: bool = False,
) -> Later | None:
    """Mark cards changed now and queue the pushes that tell wallets to fetch them.

    With `fold`, the caller writes the changes with flush_folded, which sends every card's
    UPDATE as a statement of its own: each computes its tag inside (no round trip to read it),
    and the APNs rows' INSERT is returned for the caller to send with them, not sent here.
    """
    if not cards:
        return None
    postgres = session.get_bind().dialect.name == "postgresql"
    # One card (a scan), or folded writes: compute the tag inside each UPDATE, saving a round
    # trip. Many cards (a campaign chunk): read it once, so the UPDATEs share plain values and
    # go out as one batch.
    single = postgres and (len(cards) == 1 or fold)
    tag: Any = _XACT_TAG if single else next_update_tag(session)
    now = ctx.now.replace(microsecond=0)
    for card in cards:
        card.update_tag = tag
        card.change_campaign_id = campaign_id  # [delivery] the campaign of this version, if any
        # Last-Modified has one-second resolution: keep every change in a later second so an
        # If-Modified-Since from the previous version never hides this one.
        floor = card.updated_at.replace(microsecond=0) + timedelta(seconds=1)
        card.updated_at = max(now, floor)
    # Every balance change comes through here: a reminder it made untrue ("13 points to go" at
    # 237 points) leaves the card in the same transaction and the same push.
    withdraw_untrue_reminders(session, cards, ctx.now, google=ctx.google_enabled)
    return enqueue_card_pushes(
        session,
        [c.id for c in cards],
        google=ctx.google_enabled,
        serials={c.id: c.serial_number for c in cards},
        now=ctx.now,
        campaign_id=campaign_id,
        defer_apns=fold,
    )


def cards_of_member(session: Session, member_id: int) -> list[Card]:
    """A member's loyalty cards (one today; the model allows a replacement card).

    Coupon passes (kind "coupon") are not among them: a balance change does not touch them.
    """
    return list(
        session.scalars(
            select(Card).where(Card.member_id == member_id, Card.kind == "loyalty")
        ).all()
    )
