"""Who may get a marketing message now: consent, weekly caps, quiet hours, holdout groups."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from walletd.models import Card, MessageLog, Program, Registration


def program_zone(program: Program) -> ZoneInfo:
    """The program's time zone (UTC when the name is unknown)."""
    try:
        return ZoneInfo(program.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def in_quiet_hours(program: Program, now: datetime) -> bool:
    """True when local time in the program's zone is inside its quiet hours."""
    start, end = program.quiet_hours_start, program.quiet_hours_end
    if start == end:
        return False
    hour = now.astimezone(program_zone(program)).hour
    return start <= hour < end if start < end else hour >= start or hour < end


def quiet_hours_end(program: Program, now: datetime) -> datetime:
    """The first moment after `now` outside the quiet hours."""
    local = now.astimezone(program_zone(program))
    candidate = local.replace(hour=program.quiet_hours_end, minute=0, second=0, microsecond=0)
    if candidate <= local:
        candidate += timedelta(days=1)
    return candidate.astimezone(now.tzinfo)


def in_holdout(salt: str, member_id: int, percent: int) -> bool:
    """A stable random split: the same member is always on the same side for one campaign."""
    if percent <= 0:
        return False
    digest = hashlib.sha256(f"{salt}:{member_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100 < percent


def recent_marketing_counts(
    session: Session, member_ids: Iterable[int], now: datetime
) -> dict[int, int]:
    """Marketing messages each member got in the last 7 days (held-out ones do not count)."""
    rows = session.execute(
        select(MessageLog.member_id, func.count())
        .where(
            MessageLog.member_id.in_(list(member_ids)),
            MessageLog.marketing,
            MessageLog.holdout.is_(False),
            MessageLog.sent_at > now - timedelta(days=7),
        )
        .group_by(MessageLog.member_id)
    ).all()
    return {int(member_id): int(count) for member_id, count in rows}


def members_with_installed_card(session: Session, member_ids: Iterable[int]) -> set[int]:
    """Members whose card is in Apple Wallet (a registered device) or saved to Google Wallet."""
    ids = list(member_ids)
    apple = session.scalars(
        select(Card.member_id)
        .join(Registration, Registration.card_id == Card.id)
        .where(Card.member_id.in_(ids), Card.kind == "loyalty")
    ).all()
    google = session.scalars(
        select(Card.member_id).where(
            Card.member_id.in_(ids),
            Card.kind == "loyalty",
            Card.google_saved_at.is_not(None),
            or_(Card.google_deleted_at.is_(None), Card.google_deleted_at < Card.google_saved_at),
        )
    ).all()
    return set(apple) | set(google)
