"""What the dashboard shows about a brand's members: counts, rates, daily scans, search, exports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from walletd.loyalty.money import format_minor
from walletd.models import LedgerEntry, Member, Tier

ACTIVE_DAYS = 30
EXPORT_CHUNK = 1000


@dataclass(frozen=True)
class Overview:
    """The dashboard's headline numbers and daily series."""

    members: int
    active_members: int  # visited in the last ACTIVE_DAYS days
    buyers: int  # visited at least once
    repeat_buyers: int  # visited at least twice
    scans_per_day: list[tuple[date, int]]
    joins_per_day: list[tuple[date, int]]

    @property
    def repeat_rate(self) -> float:
        """Share of buying members who came back at least once."""
        return self.repeat_buyers / self.buyers if self.buyers else 0.0


def _daily(rows: list[tuple[object, int]], start: date, days: int) -> list[tuple[date, int]]:
    counts: dict[date, int] = {}
    for day, count in rows:
        key = day if isinstance(day, date) else date.fromisoformat(str(day)[:10])
        counts[key] = counts.get(key, 0) + int(count)
    return [
        (start + timedelta(days=i), counts.get(start + timedelta(days=i), 0)) for i in range(days)
    ]


def overview(session: Session, brand_id: int, now: datetime, *, days: int = 30) -> Overview:
    """Members, active members, repeat rate, and scans and enrollments per day (UTC days)."""
    start = (now - timedelta(days=days - 1)).date()
    since = datetime.combine(start, datetime.min.time(), tzinfo=now.tzinfo)
    members, active, buyers, repeat = session.execute(
        select(
            func.count(Member.id),
            func.count(Member.id).filter(Member.last_visit_at >= now - timedelta(days=ACTIVE_DAYS)),
            func.count(Member.id).filter(Member.visits >= 1),
            func.count(Member.id).filter(Member.visits >= 2),
        ).where(Member.brand_id == brand_id)
    ).one()
    scan_day = func.date(LedgerEntry.created_at)
    scans = session.execute(
        select(scan_day, func.count(LedgerEntry.id))
        .where(
            LedgerEntry.brand_id == brand_id,
            LedgerEntry.kind == "earn",
            LedgerEntry.created_at >= since,
        )
        .group_by(scan_day)
    ).all()
    join_day = func.date(Member.created_at)
    joins = session.execute(
        select(join_day, func.count(Member.id))
        .where(Member.brand_id == brand_id, Member.created_at >= since)
        .group_by(join_day)
    ).all()
    return Overview(
        members=int(members),
        active_members=int(active),
        buyers=int(buyers),
        repeat_buyers=int(repeat),
        scans_per_day=_daily([(r[0], r[1]) for r in scans], start, days),
        joins_per_day=_daily([(r[0], r[1]) for r in joins], start, days),
    )


def search_members(session: Session, brand_id: int, query: str, *, limit: int = 50) -> list[Member]:
    """Members whose name, e-mail, phone or referral code contains the query; newest first."""
    statement = select(Member).where(Member.brand_id == brand_id, Member.erased_at.is_(None))
    text = query.strip()
    if text:
        pattern = f"%{text.lower().replace('%', '').replace('_', '')}%"
        conditions: list[ColumnElement[bool]] = [
            func.lower(Member.name).like(pattern),
            func.lower(Member.email).like(pattern),
            Member.phone.like(pattern),
            func.lower(Member.referral_code).like(pattern),
        ]
        # ASCII digits within 64 bits: str.isdigit() also takes "²", which int() refuses.
        if text.isascii() and text.isdigit() and len(text) <= 18:
            conditions.append(Member.id == int(text))
        statement = statement.where(or_(*conditions))
    return list(session.scalars(statement.order_by(Member.id.desc()).limit(limit)).all())


MEMBER_COLUMNS = [
    "id", "name", "email", "phone", "birthday", "marketing_consent", "points", "tier",
    "visits", "lifetime_spend", "referral_code", "created_at", "last_visit_at", "language",
]  # fmt: skip
LEDGER_COLUMNS = [
    "id", "member_id", "kind", "points", "amount", "currency", "reason", "balance_after",
    "created_at",
]  # fmt: skip


def member_rows(
    session: Session, brand_id: int, currency: str, *, after_id: int = 0, limit: int = EXPORT_CHUNK
) -> list[list[str]]:
    """One chunk of the members export, by ascending id after `after_id`."""
    rows = session.execute(
        select(Member, Tier.name)
        .outerjoin(Tier, Tier.id == Member.tier_id)
        .where(Member.brand_id == brand_id, Member.id > after_id)
        .order_by(Member.id)
        .limit(limit)
    ).all()
    return [
        [
            str(m.id),
            m.name,
            m.email or "",
            m.phone or "",
            m.birthday.isoformat() if m.birthday else "",
            "yes" if m.marketing_consent else "no",
            str(m.points),
            tier or "",
            str(m.visits),
            format_minor(m.lifetime_spend_minor, currency),
            m.referral_code,
            m.created_at.isoformat(),
            m.last_visit_at.isoformat() if m.last_visit_at else "",
            m.language or "",
        ]  # fmt: skip
        for m, tier in rows
    ]


def ledger_rows(
    session: Session, brand_id: int, *, after_id: int = 0, limit: int = EXPORT_CHUNK
) -> list[list[str]]:
    """One chunk of the ledger export, by ascending entry id after `after_id`."""
    entries = session.scalars(
        select(LedgerEntry)
        .where(LedgerEntry.brand_id == brand_id, LedgerEntry.id > after_id)
        .order_by(LedgerEntry.id)
        .limit(limit)
    ).all()
    return [
        [
            str(e.id),
            str(e.member_id),
            e.kind,
            str(e.points),
            format_minor(e.amount_minor, e.currency or "USD") if e.amount_minor is not None else "",
            e.currency or "",
            e.reason or "",
            "" if e.balance_after is None else str(e.balance_after),
            e.created_at.isoformat(),
        ]  # fmt: skip
        for e in entries
    ]
