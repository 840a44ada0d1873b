"""After-sale feedback: a member rates a visit (1 to 5 stars and a comment) from a signed link.

One answer per visit (the scan's ledger entry). Every answer emits the `feedback.received`
webhook with its rating and `low` (true at 2 stars or fewer), so a brand's other system can call
an unhappy customer back; the reports group answers by location and over time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from walletd.admin.locations import check_location_id
from walletd.campaigns.reports import period
from walletd.campaigns.templates import check_text
from walletd.errors import N_, ConflictError, NotFoundError, ValidationError
from walletd.loyalty.cards import touch_cards
from walletd.loyalty.context import Context
from walletd.models import Brand, Card, Feedback, LedgerEntry, Location, Member, Program
from walletd.passes.view import CardView
from walletd.web.links import feedback_url
from walletd.webhooks import emit_event

RATINGS = (1, 2, 3, 4, 5)
# Two stars or fewer: `low` on the webhook, so someone calls the customer back.
LOW_RATING = 2
MAX_COMMENT = 1000
# A link is good for 30 days; the back of the card offers a visit for as long.
LINK_DAYS = 30
# The report lists at most this many comments, newest first.
LATEST_COMMENTS = 20
# Up to this many days a report's series goes by day; longer periods go by week.
DAILY_UP_TO = 31
_CENT = Decimal("0.01")


@dataclass(frozen=True)
class Visit:
    """What the feedback page shows about the visit to rate."""

    scan_id: int
    brand_id: int
    program_id: int
    member_id: int
    brand_name: str
    program_name: str
    default_language: str | None
    visited_at: datetime
    location_name: str | None
    rating: int | None  # the answer already given, if any
    timezone: str = "UTC"  # the program's: the page names the visit's day as the shop saw it


def link_expiry(moment: datetime) -> int:
    """The expiry (Unix seconds) of a link made at `moment`: LINK_DAYS later."""
    return int((moment + timedelta(days=LINK_DAYS)).timestamp())


def visit_url(ctx: Context, scan_id: int, expires: int) -> str:
    """The signed, absolute address of the page rating one visit."""
    return feedback_url(ctx.base_url, ctx.secret_key, scan_id, expires)


def _erased(member: Member) -> bool:
    # An erased member's visits have no page to answer on (walletd.privacy).
    return member.erased_at is not None


def find_visit(session: Session, scan_id: int) -> Visit | None:
    """The visit behind a scan id (an earn entry of a member not erased), or None."""
    scan = session.get(LedgerEntry, scan_id)
    if scan is None or scan.kind != "earn":
        return None
    member = session.get_one(Member, scan.member_id)
    if _erased(member):
        return None
    program = session.get_one(Program, member.program_id)
    brand = session.get_one(Brand, member.brand_id)
    location = session.get(Location, scan.location_id) if scan.location_id else None
    rating = session.scalar(select(Feedback.rating).where(Feedback.scan_id == scan.id))
    return Visit(
        scan_id=scan.id,
        brand_id=member.brand_id,
        program_id=program.id,
        member_id=member.id,
        brand_name=brand.name,
        program_name=program.name,
        default_language=program.default_language,
        visited_at=scan.created_at,
        location_name=location.name if location else None,
        rating=rating,
        timezone=program.timezone,
    )


def latest_visits(session: Session, member_ids: list[int]) -> dict[int, int]:
    """Each member's latest scan id (their last visit), for the members that have one."""
    if not member_ids:
        return {}
    rows = session.execute(
        select(LedgerEntry.member_id, func.max(LedgerEntry.id))
        .where(LedgerEntry.member_id.in_(member_ids), LedgerEntry.kind == "earn")
        .group_by(LedgerEntry.member_id)
    ).all()
    return {int(member_id): int(scan_id) for member_id, scan_id in rows}


def unrated_visits(
    session: Session, member_ids: Sequence[int], now: datetime
) -> dict[int, tuple[int, datetime]]:
    """Each member's latest visit of the last LINK_DAYS days (scan id, when) while it is not
    rated yet, for the members that have one: one query for all of them."""
    if not member_ids:
        return {}
    latest = (
        select(LedgerEntry.member_id, func.max(LedgerEntry.id).label("scan_id"))
        .where(
            LedgerEntry.member_id.in_(sorted(set(member_ids))),
            LedgerEntry.kind == "earn",
            LedgerEntry.created_at > now - timedelta(days=LINK_DAYS),
        )
        .group_by(LedgerEntry.member_id)
        .subquery()
    )
    rows = session.execute(
        select(latest.c.member_id, LedgerEntry.id, LedgerEntry.created_at)
        .join(LedgerEntry, LedgerEntry.id == latest.c.scan_id)
        .outerjoin(Feedback, Feedback.scan_id == LedgerEntry.id)
        .where(Feedback.id.is_(None))
    ).all()
    return {int(member_id): (int(scan_id), at) for member_id, scan_id, at in rows}


def check_rating(value: object) -> int:
    """A rating of 1 to 5 stars, as a number or its digit."""
    if isinstance(value, str) and value.strip() in {"1", "2", "3", "4", "5"}:
        return int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool) and value in RATINGS:
        return value
    raise ValidationError("choose 1 to 5 stars", field="rating")


def check_comment(value: object) -> str | None:
    """An optional comment: trimmed, at most MAX_COMMENT characters, line breaks allowed."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError("the comment must be text", field="comment")
    # Browsers send a typed line break as CRLF: one character, as the form's maxlength counts.
    text = value.replace("\r\n", "\n").strip()
    if not text:
        return None
    return check_text(
        text,
        field="comment",
        max_length=MAX_COMMENT,
        multiline=True,
        refusal=N_("the comment must be at most 1000 characters"),
    )


def submit_feedback(
    session: Session, scan_id: int, rating: object, comment: object, language: str, ctx: Context
) -> Feedback:
    """Record the member's answer for one visit; ConflictError when it was already rated."""
    rating_value = check_rating(rating)
    comment_text = check_comment(comment)
    scan = session.get(LedgerEntry, scan_id)
    if scan is None or scan.kind != "earn":
        raise NotFoundError("visit not found")
    member = session.get_one(Member, scan.member_id)
    if _erased(member):
        raise NotFoundError("visit not found")
    if session.scalar(select(Feedback.id).where(Feedback.scan_id == scan.id)) is not None:
        raise ConflictError("this visit has already been rated")
    feedback = Feedback(
        brand_id=member.brand_id,
        program_id=member.program_id,
        member_id=member.id,
        scan_id=scan.id,
        location_id=scan.location_id,
        rating=rating_value,
        comment=comment_text,
        language=language[:16],
        created_at=ctx.now,
    )
    session.add(feedback)
    # A concurrent twin fails here on the unique scan id; the caller's retry then sees this row.
    session.flush()
    emit_event(
        session,
        member.brand_id,
        "feedback.received",
        {
            "member_id": member.id,
            "external_id": member.external_id,
            "program_id": member.program_id,
            "feedback_id": feedback.id,
            "scan_id": scan.id,
            "location_id": scan.location_id,
            "rating": rating_value,
            "low": rating_value <= LOW_RATING,
            "comment": comment_text,
            "language": feedback.language,
            "created_at": ctx.now,
        },
        now=ctx.now,
    )
    # The back of the pass offers the latest unrated visit: the card changes with the answer.
    cards = list(
        session.scalars(select(Card).where(Card.member_id == member.id, Card.kind == "loyalty"))
    )
    touch_cards(session, cards, ctx)
    return feedback


def member_feedback(session: Session, member_id: int) -> list[dict[str, Any]]:
    """Every answer a member gave, oldest first (for an export of the member's data)."""
    rows = session.scalars(
        select(Feedback).where(Feedback.member_id == member_id).order_by(Feedback.id)
    ).all()
    return [
        {
            "id": f.id,
            "scan_id": f.scan_id,
            "location_id": f.location_id,
            "rating": f.rating,
            "comment": f.comment,
            "language": f.language,
            "created_at": f.created_at,
        }
        for f in rows
    ]


def erase_member_feedback(session: Session, member_id: int) -> int:
    """Drop the comments of an erased member (ratings stay, anonymous); how many were cleared."""
    rows = session.scalars(
        select(Feedback).where(Feedback.member_id == member_id, Feedback.comment.is_not(None))
    ).all()
    for row in rows:
        row.comment = None
    return len(rows)


# --- reports ------------------------------------------------------------------------------------


def average(total: int, count: int) -> str | None:
    """The mean rating as a decimal string with two places, or None without answers."""
    if not count:
        return None
    return str((Decimal(total) / count).quantize(_CENT, rounding=ROUND_HALF_UP))


def _day(value: object) -> date:
    # SQLite's date() answers text, Postgres a date.
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _series(
    rows: list[tuple[date, int, int]], start: date, end: date
) -> tuple[str, list[dict[str, Any]]]:
    """Answers per day (short periods) or per week from Monday (longer ones), zeros included."""
    unit = "day" if (end - start).days < DAILY_UP_TO else "week"
    step = 1 if unit == "day" else 7
    first = start if unit == "day" else start - timedelta(days=start.weekday())
    buckets: dict[date, list[int]] = {}
    day = first
    while day <= end:
        buckets[day] = [0, 0]
        day += timedelta(days=step)
    for when, rating, count in rows:
        key = when if unit == "day" else when - timedelta(days=when.weekday())
        bucket = buckets.setdefault(key, [0, 0])
        bucket[0] += count
        bucket[1] += rating * count
    return unit, [
        {"start": key, "count": n, "average": average(total, n)}
        for key, (n, total) in sorted(buckets.items())
    ]


def feedback_report(
    session: Session, brand_id: int, start: date, end: date, *, location_id: int | None = None
) -> dict[str, Any]:
    """Answers in a period (UTC days): count, average, distribution, by location, over time and
    the latest comments; with `location_id`, only the visits at that location."""
    since, until = period(start, end)
    if location_id is not None:
        location_id = check_location_id(session, brand_id, location_id, "location_id")
    conditions = [
        Feedback.brand_id == brand_id,
        Feedback.created_at >= since,
        Feedback.created_at < until,
    ]
    if location_id is not None:
        conditions.append(Feedback.location_id == location_id)
    grouped = session.execute(
        select(Feedback.location_id, Feedback.rating, func.count())
        .where(*conditions)
        .group_by(Feedback.location_id, Feedback.rating)
    ).all()
    distribution = {str(r): 0 for r in RATINGS}
    places: dict[int | None, list[int]] = {}
    for place, rating, count in grouped:
        distribution[str(rating)] = distribution.get(str(rating), 0) + int(count)
        totals = places.setdefault(place, [0, 0])
        totals[0] += int(count)
        totals[1] += int(rating) * int(count)
    count = sum(n for n, _ in places.values())
    names: dict[int, str] = {
        int(i): str(n)
        for i, n in session.execute(
            select(Location.id, Location.name).where(
                Location.brand_id == brand_id,
                Location.id.in_([p for p in places if p is not None]),
            )
        ).all()
    }
    by_location = [
        {
            "location_id": place,
            "name": names.get(place) if place is not None else None,
            "count": n,
            "average": average(total, n),
        }
        # Named locations first by id; visits without a location last.
        for place, (n, total) in sorted(places.items(), key=lambda i: (i[0] is None, i[0] or 0))
    ]
    day = func.date(Feedback.created_at)
    daily = session.execute(
        select(day, Feedback.rating, func.count()).where(*conditions).group_by(day, Feedback.rating)
    ).all()
    unit, series = _series([(_day(d), int(rating), int(n)) for d, rating, n in daily], start, end)
    # An erased member's words are theirs: their ratings still count, their comments are not shown.
    comments = session.scalars(
        select(Feedback)
        .join(Member, Member.id == Feedback.member_id)
        .where(*conditions, Feedback.comment.is_not(None), Member.erased_at.is_(None))
        .order_by(Feedback.created_at.desc(), Feedback.id.desc())
        .limit(LATEST_COMMENTS)
    ).all()
    return {
        "count": count,
        "average": average(sum(total for _, total in places.values()), count),
        "distribution": distribution,
        "by_location": by_location,
        "over_time": {"unit": unit, "points": series},
        "latest_comments": [
            {
                "id": f.id,
                "scan_id": f.scan_id,
                "member_id": f.member_id,
                "location_id": f.location_id,
                "rating": f.rating,
                "comment": f.comment,
                "language": f.language,
                "created_at": f.created_at.astimezone(UTC),
            }
            for f in comments
        ],
    }


def with_feedback_links(
    session: Session, views: Mapping[int, CardView], cards: Sequence[Card], ctx: Context
) -> dict[int, CardView]:
    """The cards' views (by card id) with, on each loyalty card, a link rating the member's
    latest visit while it is unrated (within LINK_DAYS); the link expires LINK_DAYS after the
    visit, so the pass stays the same."""
    rating = [c for c in cards if c.kind == "loyalty" and not views[c.id].voided]
    visits = unrated_visits(session, [c.member_id for c in rating], ctx.now)
    linked = dict(views)
    for card in rating:
        visit = visits.get(card.member_id)
        if visit is not None:
            scan_id, at = visit
            url = visit_url(ctx, scan_id, link_expiry(at))
            linked[card.id] = replace(views[card.id], feedback_url=url)
    return linked
