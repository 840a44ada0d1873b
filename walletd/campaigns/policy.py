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


def quiet_window(program: Program) -> tuple[int, int] | None:
    """The quiet hours as (start, end) minutes after local midnight, or None when there are none."""
    start, end = program.quiet_start_minute, program.quiet_end_minute
    if start is None or end is None or start == end:
        return None
    return start, end


def _minute_of_day(local: datetime) -> int:
    return local.hour * 60 + local.minute


def in_quiet_hours(program: Program, now: datetime) -> bool:
    """True when local time in the program's zone is inside its quiet hours."""
    window = quiet_window(program)
    if window is None:
        return False
    start, end = window
    minute = _minute_of_day(now.astimezone(program_zone(program)))
    return start <= minute < end if start < end else minute >= start or minute < end


def quiet_hours_end(program: Program, now: datetime) -> datetime:
    """The first moment at or after `now` outside the quiet hours (`now` itself when none)."""
    window = quiet_window(program)
    if window is None or not in_quiet_hours(program, now):
        return now
    zone = program_zone(program)
    local = now.astimezone(zone)
    end = window[1]
    # Wall-clock arithmetic in the zone, then back to UTC: a DST change in the night moves the
    # end by the zone's rules, as members experience it.
    candidate = local.replace(hour=end // 60, minute=end % 60, second=0, microsecond=0)
    if candidate <= local:
        candidate = (local + timedelta(days=1)).replace(
            hour=end // 60, minute=end % 60, second=0, microsecond=0
        )
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
