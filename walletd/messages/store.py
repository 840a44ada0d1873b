"""Keeping card messages: storing, withdrawing and mirroring the newest onto the cards.

Nothing here touches cards (walletd.loyalty.cards calls `withdraw_untrue_reminders` from
`touch_cards`, so this module must not import it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from walletd.db import transaction_memo
from walletd.models import Card, CardMessage, LedgerEntry, Member
from walletd.push.outbox import GOOGLE_OBJECT, enqueue

# A card shows this many messages, newest first; an older one leaves it as "replaced".
KEPT = 3
# What a message sent again with its id takes from the new send.
_REPLACED = (
    "text",
    "source",
    "campaign_id",
    "automation_kind",
    "event_automation_id",
    "reward_points",
    "expiring_until",
    "created_at",
    "expires_at",
    "withdrawn_at",
    "withdrawn_reason",
)


@dataclass(frozen=True)
class MessageSource:
    """Where a message comes from, and when an automatic reminder stops being true."""

    source: str = "manual"  # manual | campaign | automation | event
    campaign_id: int | None = None
    automation_kind: str | None = None
    event_automation_id: int | None = None
    # reward_near: withdrawn once the member's balance reaches this.
    reward_points: int | None = None
    # points_expiring: withdrawn once no points expiring by then are left (spent or expired).
    expiring_until: datetime | None = None


def live_messages(session: Session, member_ids: Iterable[int]) -> dict[int, list[CardMessage]]:
    """Each member's messages still on the card, newest first."""
    ids = sorted(set(member_ids))
    found: dict[int, list[CardMessage]] = {member_id: [] for member_id in ids}
    if not ids:
        return found
    rows = session.scalars(
        select(CardMessage)
        .where(CardMessage.member_id.in_(ids), CardMessage.withdrawn_at.is_(None))
        .order_by(CardMessage.member_id, CardMessage.created_at.desc(), CardMessage.id.desc())
        .execution_options(populate_existing=True)
    ).all()
    for row in rows:
        found[row.member_id].append(row)
    return found


def store_messages(
    session: Session,
    cards: Sequence[Card],
    member_texts: Mapping[int, str],
    message_id: str,
    now: datetime,
    source: MessageSource,
    expires_at: datetime | None = None,
) -> None:
    """Add one message per member (replacing one with the same id) and show the newest on `cards`.

    A member with more than KEPT messages loses the oldest ones ("replaced").
    """
    brands = {card.member_id: card.brand_id for card in cards}
    values: list[dict[str, Any]] = [
        {
            "brand_id": brands[member_id],
            "member_id": member_id,
            "message_id": message_id,
            "text": text,
            "source": source.source,
            "campaign_id": source.campaign_id,
            "automation_kind": source.automation_kind,
            "event_automation_id": source.event_automation_id,
            "reward_points": source.reward_points,
            "expiring_until": source.expiring_until,
            "created_at": now,
            "expires_at": expires_at,
            "withdrawn_at": None,
            "withdrawn_reason": None,
        }
        for member_id, text in member_texts.items()
        if member_id in brands
    ]
    if not values:
        return
    dialect = session.get_bind().dialect.name
    insert: Any = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(CardMessage)
    # A retried send with the same id (a worker killed after commit cannot happen, but an API
    # client may reuse an id) replaces the message rather than showing it twice.
    stmt = stmt.on_conflict_do_update(
        index_elements=["member_id", "message_id"],
        set_={name: stmt.excluded[name] for name in _REPLACED},
    )
    session.execute(stmt, values)
    live = live_messages(session, [v["member_id"] for v in values])
    retired = [m for messages in live.values() for m in messages[KEPT:]]
    withdraw(session, retired, "replaced", now)
    show_newest(cards, {member_id: messages[:KEPT] for member_id, messages in live.items()})


def withdraw(session: Session, messages: Sequence[CardMessage], reason: str, now: datetime) -> None:
    """Take messages off the card for `reason`, keeping them as history."""
    ids = [m.id for m in messages]
    for start in range(0, len(ids), 500):
        session.execute(
            update(CardMessage)
            .where(CardMessage.id.in_(ids[start : start + 500]))
            .values(withdrawn_at=now, withdrawn_reason=reason)
        )
    for message in messages:
        # Keep loaded objects truthful for the rest of the transaction.
        message.withdrawn_at, message.withdrawn_reason = now, reason


def show_newest(cards: Iterable[Card], live: Mapping[int, Sequence[CardMessage]]) -> None:
    """Mirror each member's newest live message onto `Card.message`, which other code reads."""
    for card in cards:
        messages = live.get(card.member_id)
        if messages is None:
            continue
        newest = messages[0] if messages else None
        card.message = newest.text if newest else None
        card.message_id = newest.message_id if newest else None


def loyalty_cards(session: Session, member_ids: Iterable[int]) -> list[Card]:
    """The loyalty cards of the members, in id order."""
    ids = sorted(set(member_ids))
    if not ids:
        return []
    return list(
        session.scalars(
            select(Card).where(Card.member_id.in_(ids), Card.kind == "loyalty").order_by(Card.id)
        ).all()
    )


def queue_google_messages(session: Session, cards: Sequence[Card], now: datetime) -> None:
    """Queue the PATCH that makes each card's Google object hold exactly its live messages."""
    enqueue(
        session,
        [
            {
                "kind": GOOGLE_OBJECT,
                # Its own key: a pending balance sync must not swallow the removal.
                "dedupe_key": f"{GOOGLE_OBJECT}:{card.serial_number}:messages",
                "payload": {"card_id": card.id, "messages": True},
            }
            for card in cards
            if card.kind == "loyalty"
        ],
        now=now,
    )


# A live automatic reminder: one that can stop being true (reward_near, points_expiring).
_LIVE_REMINDER = (
    CardMessage.withdrawn_at.is_(None),
    or_(CardMessage.reward_points.is_not(None), CardMessage.expiring_until.is_not(None)),
)
_NO_REMINDERS_INFO = "walletd.messages.no_reminders"


def live_reminders_exist(member_id: Any) -> Any:
    """An SQL EXISTS for a member's live automatic reminders, to put beside a query a request
    makes anyway (the scan's locked read), so that most balance changes skip untrue_reminders'
    query: most members hold no reminder."""
    mine = CardMessage.member_id == member_id
    return select(CardMessage.id).where(mine, *_LIVE_REMINDER).exists()


def _known_without_reminders(session: Session) -> set[int]:
    """Members read in the session's current transaction as holding no live reminder."""
    return transaction_memo(session, _NO_REMINDERS_INFO, set)


def note_no_reminders(session: Session, member_id: int) -> None:
    """Record, for this transaction, that the member holds no live reminder (read with the
    member's row lock by the caller). Only the worker's automations create reminders, in their
    own transactions."""
    _known_without_reminders(session).add(member_id)


def untrue_reminders(
    session: Session, member_ids: Iterable[int], now: datetime
) -> list[CardMessage]:
    """Live automatic reminders that are no longer true for these members.

    reward_near: the balance reached the reward. points_expiring: no points that expire by the
    reminder's horizon are left (they expired or were spent).
    """
    ids = sorted(set(member_ids) - _known_without_reminders(session))
    if not ids:
        return []
    reminders = list(
        session.scalars(
            select(CardMessage).where(CardMessage.member_id.in_(ids), *_LIVE_REMINDER)
        ).all()
    )
    if not reminders:
        return []
    about = {m.member_id for m in reminders}
    points = dict(
        (int(r[0]), int(r[1]))
        for r in session.execute(select(Member.id, Member.points).where(Member.id.in_(about)))
    )
    expiring_ids = {m.member_id for m in reminders if m.expiring_until is not None}
    soonest: dict[int, datetime] = {}
    if expiring_ids:
        soonest = {
            int(r[0]): r[1]
            for r in session.execute(
                select(LedgerEntry.member_id, func.min(LedgerEntry.expires_at))
                .where(
                    LedgerEntry.member_id.in_(expiring_ids),
                    LedgerEntry.remaining > 0,
                    LedgerEntry.expires_at > now,
                )
                .group_by(LedgerEntry.member_id)
            )
            if r[1] is not None
        }
    stale = []
    for message in reminders:
        if message.reward_points is not None:
            if points.get(message.member_id, 0) >= message.reward_points:
                stale.append(message)
        elif message.expiring_until is not None:
            next_expiry = soonest.get(message.member_id)
            if next_expiry is None or next_expiry > message.expiring_until:
                stale.append(message)
    return stale


def withdraw_untrue_reminders(
    session: Session, cards: Sequence[Card], now: datetime, *, google: bool
) -> int:
    """Withdraw the touched cards' reminders that stopped being true; how many were withdrawn.

    Called by touch_cards, so every balance change (scan, redemption, reversal, adjustment,
    bonus, nightly expiry of points) re-checks them in its own transaction.
    """
    stale = untrue_reminders(session, {c.member_id for c in cards if c.kind == "loyalty"}, now)
    if not stale:
        return 0
    withdraw(session, stale, "no_longer_true", now)
    members = {m.member_id for m in stale}
    live = live_messages(session, members)
    affected = loyalty_cards(session, members)
    show_newest(affected, {member_id: messages[:KEPT] for member_id, messages in live.items()})
    if google:
        queue_google_messages(session, affected, now)
    return len(stale)
