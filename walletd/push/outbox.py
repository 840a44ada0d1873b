"""Writing outbox rows: one pending row per push token or Google object, coalesced."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, TextClause, bindparam, insert, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from walletd.db import UTCDateTime
from walletd.models import OutboxMessage, Registration

APNS = "apns"
GOOGLE_OBJECT = "google_object"
GOOGLE_MESSAGE = "google_message"
GOOGLE_CLASS_MESSAGE = "google_class_message"
# One coupon's offerObject (and its offerClass) plus its link into the member's loyalty object.
GOOGLE_COUPON = "google_coupon"


@dataclass(frozen=True)
class Later:
    """A write the caller sends with its own: a statement and its parameters."""

    statement: TextClause
    params: dict[str, Any]


def enqueue(
    session: Session,
    rows: Iterable[Mapping[str, Any]],
    *,
    now: datetime,
) -> None:
    """Insert pending rows; a row whose dedupe key already has a pending row is dropped."""
    values = [
        {
            "kind": row["kind"],
            "dedupe_key": row["dedupe_key"],
            "payload": row.get("payload", {}),
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": row.get("next_attempt_at", now),
            "campaign_id": row.get("campaign_id"),
            "created_at": now,
        }
        for row in rows
    ]
    if not values:
        return
    dialect = session.get_bind().dialect.name
    # The partial index's predicate as literal SQL: a bound "pending" would be a post-compile
    # parameter, which SQLAlchemy refuses in the executemany that inserts several rows.
    pending = text("status = 'pending'")
    if dialect == "postgresql":
        stmt: Any = pg_insert(OutboxMessage).on_conflict_do_nothing(
            index_elements=["dedupe_key"], index_where=pending
        )
    elif dialect == "sqlite":
        stmt = sqlite_insert(OutboxMessage).on_conflict_do_nothing(
            index_elements=["dedupe_key"], index_where=pending
        )
    else:  # pragma: no cover - only SQLite and Postgres are supported
        stmt = insert(OutboxMessage)
    session.execute(stmt, values)


def card_push_rows(
    session: Session, card_ids: Iterable[int], *, google: bool, serials: Mapping[int, str]
) -> list[dict[str, Any]]:
    """Rows announcing that cards changed: one per distinct push token, one per Google object."""
    ids = list(card_ids)
    if not ids:
        return []
    # Each card has at most max_devices_per_card registrations, so this is bounded per card.
    tokens = session.scalars(
        select(Registration.push_token).where(Registration.card_id.in_(ids)).distinct()
    ).all()
    rows: list[dict[str, Any]] = [
        {"kind": APNS, "dedupe_key": f"{APNS}:{token}", "payload": {"token": token}}
        for token in sorted(tokens)
    ]
    if google:
        rows.extend(
            {
                "kind": GOOGLE_OBJECT,
                "dedupe_key": f"{GOOGLE_OBJECT}:{serials[card_id]}",
                "payload": {"card_id": card_id},
            }
            for card_id in ids
        )
    return rows


# The APNs rows of enqueue_card_pushes. Tokens are hexadecimal (registrations refuse anything
# else), so the JSON text is exact. Plain SQL that both dialects speak, built once: the same
# statement built with SQLAlchemy's INSERT ... FROM SELECT could not be cached and was compiled
# again on every scan (bench/hotpath_profile.py). SQLite needs the WHERE before ON CONFLICT.
_CARD_PUSHES = text(
    f"""
    INSERT INTO outbox
        (kind, dedupe_key, payload, status, attempts, next_attempt_at, campaign_id, created_at)
    SELECT '{APNS}', '{APNS}:' || push_token, '{{"token": "' || push_token || '"}}',
           'pending', 0, :now, :campaign_id, :now
    FROM registrations WHERE card_id IN :ids
    GROUP BY push_token ORDER BY push_token
    ON CONFLICT (dedupe_key) WHERE status = 'pending' DO NOTHING
    """
).bindparams(
    bindparam("ids", expanding=True),
    bindparam("now", type_=UTCDateTime()),
    bindparam("campaign_id", type_=Integer()),
)


def enqueue_card_pushes(
    session: Session,
    card_ids: Iterable[int],
    *,
    google: bool,
    serials: Mapping[int, str],
    now: datetime,
    campaign_id: int | None = None,
    defer_apns: bool = False,
) -> Later | None:
    """Queue what card_push_rows describes, the APNs rows in one INSERT … SELECT.

    With `defer_apns` that INSERT is returned instead of sent, for the caller to send with its
    own writes (walletd.loyalty.folded.flush_folded); the caller must send it.

    The rows are the same as enqueue(card_push_rows(...)) writes, without reading the tokens
    into Python first: a scan (one card) saves a round trip, a campaign chunk (1,000 cards) a
    result set of 1,000 tokens. Tokens go in sorted order, as enqueue's rows do, so concurrent
    transactions take the pending-row index entries in one order.
    """
    ids = sorted(set(card_ids))
    if not ids:
        return None
    apns = Later(_CARD_PUSHES, {"ids": ids, "now": now, "campaign_id": campaign_id})
    if not defer_apns:
        session.execute(apns.statement, apns.params)
    if google:
        rows: list[dict[str, Any]] = [
            {
                "kind": GOOGLE_OBJECT,
                "dedupe_key": f"{GOOGLE_OBJECT}:{serials[card_id]}",
                "payload": {"card_id": card_id},
                "campaign_id": campaign_id,
            }
            for card_id in ids
        ]
        enqueue(session, rows, now=now)
    return apns if defer_apns else None


def google_coupon_row(coupon_id: int) -> dict[str, Any]:
    """The row that brings one coupon's Google offer object and link up to date."""
    return {
        "kind": GOOGLE_COUPON,
        "dedupe_key": f"{GOOGLE_COUPON}:{coupon_id}",
        "payload": {"coupon_id": coupon_id},
    }
