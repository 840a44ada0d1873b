"""Reports from the ledger, in SQL: who returns, what they spend, and what each message did."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import Interval, and_, func, literal, or_, select
from sqlalchemy.orm import Session

from walletd.admin.locations import check_location_id
from walletd.errors import N_, ValidationError
from walletd.loyalty.money import format_minor
from walletd.models import (
    Automation,
    Campaign,
    Card,
    Coupon,
    LedgerEntry,
    Member,
    MessageLog,
    Program,
    Registration,
)
from walletd.models.ledger import is_visit, net_amount


def _ratio(part: int | float | Decimal, whole: int | float | Decimal) -> float | None:
    if not whole:
        return None
    return float((Decimal(str(part)) / Decimal(str(whole))).quantize(Decimal("0.0001")))


def _currency(session: Session, brand_id: int) -> str:
    currency = session.scalar(
        select(Program.currency).where(Program.brand_id == brand_id).order_by(Program.id).limit(1)
    )
    return currency or "USD"


# Reports cover days walletd can have data for: from the Unix epoch to the end of the 2900s.
# A bound well inside the calendar keeps "the day after `to`" and every interval from
# overflowing, and ten years per report keeps one request's scans bounded.
EARLIEST = date(1970, 1, 1)
LATEST = date(2999, 12, 31)
MAX_REPORT_DAYS = 3660


def period(start: date, end: date) -> tuple[datetime, datetime]:
    """[start 00:00 UTC, the day after end 00:00 UTC); refuses odd, reversed or long spans."""
    for name, day in (("from", start), ("to", end)):
        if not EARLIEST <= day <= LATEST:
            raise ValidationError(
                N_("{field} must be a day from {earliest} to {latest}"),
                field=name,
                params={
                    "field": name,
                    "earliest": EARLIEST.isoformat(),
                    "latest": LATEST.isoformat(),
                },
            )
    if end < start:
        raise ValidationError("to must not be before from", field="to")
    if (end - start).days > MAX_REPORT_DAYS:
        raise ValidationError("a report covers at most ten years", field="to")
    return (
        datetime.combine(start, time(), tzinfo=UTC),
        datetime.combine(end + timedelta(days=1), time(), tzinfo=UTC),
    )


def summary(
    session: Session, brand_id: int, start: date, end: date, *, location_id: int | None = None
) -> dict[str, Any]:
    """Members, activity, repeat rate, returning share, AOV new vs returning, installed cards.

    With `location_id`, transactions, revenue, AOV and active members count only the scans at
    that location; whether a purchase is a member's first (new vs returning) and the member and
    card counts stay brand-wide.
    """
    since, until = period(start, end)
    currency = _currency(session, brand_id)
    if location_id is not None:
        location_id = check_location_id(session, brand_id, location_id, "location_id")
    # Purchases: refunded in full they are no visit; revenue counts what was not refunded.
    earns = and_(LedgerEntry.brand_id == brand_id, LedgerEntry.kind == "earn", is_visit())
    members = session.scalar(
        select(func.count())
        .select_from(Member)
        .where(Member.brand_id == brand_id, Member.created_at < until)
    )
    new_members = session.scalar(
        select(func.count())
        .select_from(Member)
        .where(Member.brand_id == brand_id, Member.created_at >= since, Member.created_at < until)
    )
    first = (
        select(LedgerEntry.member_id, func.min(LedgerEntry.id).label("first_id"))
        .where(earns)
        .group_by(LedgerEntry.member_id)
        .subquery()
    )
    in_period = and_(earns, LedgerEntry.created_at >= since, LedgerEntry.created_at < until)
    if location_id is not None:
        in_period = and_(in_period, LedgerEntry.location_id == location_id)
    is_first = LedgerEntry.id == first.c.first_id
    rows = session.execute(
        select(
            is_first.label("first"),
            func.count(),
            func.coalesce(func.sum(net_amount()), 0),
        )
        .join(first, first.c.member_id == LedgerEntry.member_id)
        .where(in_period)
        .group_by(is_first)
    ).all()
    counts = {bool(r[0]): (int(r[1]), int(r[2])) for r in rows}
    new_count, new_amount = counts.get(True, (0, 0))
    returning_count, returning_amount = counts.get(False, (0, 0))
    transactions = new_count + returning_count
    active = select(LedgerEntry.member_id).where(in_period).distinct().subquery()
    active_members = session.scalar(select(func.count()).select_from(active)) or 0
    lifetime = (
        select(LedgerEntry.member_id, func.count().label("n"))
        .where(earns, LedgerEntry.created_at < until)
        .group_by(LedgerEntry.member_id)
        .subquery()
    )
    repeaters = (
        session.scalar(
            select(func.count())
            .select_from(active)
            .join(lifetime, lifetime.c.member_id == active.c.member_id)
            .where(lifetime.c.n >= 2)
        )
        or 0
    )

    def aov(amount: int, count: int) -> str | None:
        if not count:
            return None
        avg = (Decimal(amount) / count).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        return format_minor(int(avg), currency)

    apple = session.scalar(
        select(func.count(func.distinct(Registration.card_id)))
        .join(Card, Card.id == Registration.card_id)
        .where(Card.brand_id == brand_id, Card.kind == "loyalty")
    )
    google = session.scalar(
        select(func.count())
        .select_from(Card)
        .where(
            Card.brand_id == brand_id,
            Card.kind == "loyalty",
            Card.google_saved_at.is_not(None),
            or_(Card.google_deleted_at.is_(None), Card.google_deleted_at < Card.google_saved_at),
        )
    )
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "currency": currency,
        "members": int(members or 0),
        "new_members": int(new_members or 0),
        "active_members": int(active_members),
        "repeat_customer_rate": _ratio(repeaters, active_members),
        "transactions": transactions,
        "returning_share_of_transactions": _ratio(returning_count, transactions),
        "revenue": format_minor(new_amount + returning_amount, currency),
        "revenue_from_returning": format_minor(returning_amount, currency),
        "aov_new": aov(new_amount, new_count),
        "aov_returning": aov(returning_amount, returning_count),
        "cards_installed": {"apple": int(apple or 0), "google": int(google or 0)},
        "messages": message_report(session, brand_id, since, until),
    }


def _plus_days(session: Session, column: Any, days: int) -> Any:
    """`column + days` in SQL; SQLite has no interval type, so it uses its datetime()."""
    if session.get_bind().dialect.name == "sqlite":
        return func.datetime(column, f"+{int(days)} days")
    # An explicit Interval: a bare timedelta would be bound as the column's UTCDateTime type.
    return column + literal(timedelta(days=days), Interval())


def lift(
    session: Session, source: str, source_id: int, window_days: int, currency: str
) -> dict[str, Any]:
    """Visits and spend per member in the window after the message, recipients vs holdout."""
    base = and_(MessageLog.source == source, MessageLog.source_id == source_id)
    sizes = {
        bool(h): int(n)
        for h, n in session.execute(
            select(MessageLog.holdout, func.count(func.distinct(MessageLog.member_id)))
            .where(base)
            .group_by(MessageLog.holdout)
        ).all()
    }
    outcomes = session.execute(
        select(
            MessageLog.holdout,
            func.count(LedgerEntry.id),
            func.coalesce(func.sum(net_amount()), 0),
            func.count(func.distinct(LedgerEntry.member_id)),
        )
        .join(
            LedgerEntry,
            and_(
                LedgerEntry.member_id == MessageLog.member_id,
                LedgerEntry.kind == "earn",
                is_visit(),  # a purchase refunded in full is no outcome of the message
                LedgerEntry.created_at > MessageLog.sent_at,
                LedgerEntry.created_at <= _plus_days(session, MessageLog.sent_at, window_days),
            ),
        )
        .where(base)
        .group_by(MessageLog.holdout)
    ).all()
    by_group = {bool(r[0]): (int(r[1]), int(r[2]), int(r[3])) for r in outcomes}
    # Coupons (of any offer) the group's members redeemed in the window: what the message
    # brought back at the till, beside the visits.
    redeemed = {
        bool(h): int(n)
        for h, n in session.execute(
            select(MessageLog.holdout, func.count(Coupon.id))
            .join(
                Coupon,
                and_(
                    Coupon.member_id == MessageLog.member_id,
                    Coupon.status == "redeemed",
                    Coupon.redeemed_at > MessageLog.sent_at,
                    Coupon.redeemed_at <= _plus_days(session, MessageLog.sent_at, window_days),
                ),
            )
            .where(base)
            .group_by(MessageLog.holdout)
        ).all()
    }

    def group(holdout: bool) -> dict[str, Any]:
        size = sizes.get(holdout, 0)
        visits, spend, returned = by_group.get(holdout, (0, 0, 0))
        return {
            "members": size,
            "returned": returned,
            "return_rate": _ratio(returned, size),
            "visits_per_member": _ratio(visits, size),
            "coupon_redemptions": redeemed.get(holdout, 0),
            "redemptions_per_member": _ratio(redeemed.get(holdout, 0), size),
            "spend_per_member": format_minor(int(Decimal(spend) / size), currency)
            if size
            else None,
            "_visits": visits,
            "_spend": spend,
        }

    treated, control = group(False), group(True)
    result: dict[str, Any] = {"window_days": window_days, "recipients": treated, "holdout": control}
    if treated["members"] and control["members"]:
        t_visits = Decimal(treated["_visits"]) / treated["members"]
        c_visits = Decimal(control["_visits"]) / control["members"]
        t_spend = Decimal(treated["_spend"]) / treated["members"]
        c_spend = Decimal(control["_spend"]) / control["members"]
        result["visit_lift"] = _ratio(t_visits - c_visits, c_visits)
        result["spend_lift"] = _ratio(t_spend - c_spend, c_spend)
        result["extra_visits"] = float((t_visits - c_visits) * treated["members"])
    for g in (treated, control):
        g.pop("_visits")
        g.pop("_spend")
    result["by_channel"] = _lift_by_channel(session, base, window_days)
    return result


def _lift_by_channel(session: Session, base: Any, window_days: int) -> dict[str, Any]:
    """[email-campaigns] Members reached (and held out) per channel and how many came back."""
    channel = func.coalesce(MessageLog.channel, "wallet")
    sizes = session.execute(
        select(channel, MessageLog.holdout, func.count(func.distinct(MessageLog.member_id)))
        .where(base)
        .group_by(channel, MessageLog.holdout)
    ).all()
    returned = {
        (str(c), bool(h)): int(n)
        for c, h, n in session.execute(
            select(channel, MessageLog.holdout, func.count(func.distinct(LedgerEntry.member_id)))
            .join(
                LedgerEntry,
                and_(
                    LedgerEntry.member_id == MessageLog.member_id,
                    LedgerEntry.kind == "earn",
                    is_visit(),
                    LedgerEntry.created_at > MessageLog.sent_at,
                    LedgerEntry.created_at <= _plus_days(session, MessageLog.sent_at, window_days),
                ),
            )
            .where(base)
            .group_by(channel, MessageLog.holdout)
        ).all()
    }
    out: dict[str, dict[str, int]] = {}
    for c, h, n in sizes:
        entry = out.setdefault(
            str(c), {"members": 0, "returned": 0, "holdout_members": 0, "holdout_returned": 0}
        )
        prefix = "holdout_" if h else ""
        entry[f"{prefix}members"] = int(n)
        entry[f"{prefix}returned"] = returned.get((str(c), bool(h)), 0)
    return out


def campaign_report(session: Session, campaign: Campaign) -> dict[str, Any]:
    """A campaign's lift over its holdout group."""
    return {
        "id": campaign.id,
        "name": campaign.name,
        "status": campaign.status,
        "lift": lift(session, "campaign", campaign.id, campaign.lift_window_days,
                     _currency(session, campaign.brand_id)),
    }  # fmt: skip


def message_report(
    session: Session, brand_id: int, since: datetime, until: datetime
) -> dict[str, Any]:
    """Messages sent per campaign and per automation in a period, each with its lift."""
    currency = _currency(session, brand_id)
    campaigns = session.scalars(
        select(Campaign).where(
            Campaign.brand_id == brand_id,
            Campaign.started_at >= since,
            Campaign.started_at < until,
        )
    ).all()
    automations = session.scalars(
        select(Automation)
        .join(Program, Program.id == Automation.program_id)
        .where(Program.brand_id == brand_id)
    ).all()
    sent = {
        (str(source), int(source_id)): int(n)
        for source, source_id, n in session.execute(
            select(MessageLog.source, MessageLog.source_id, func.count())
            .join(Member, Member.id == MessageLog.member_id)
            .where(
                Member.brand_id == brand_id,
                MessageLog.holdout.is_(False),
                MessageLog.sent_at >= since,
                MessageLog.sent_at < until,
            )
            .group_by(MessageLog.source, MessageLog.source_id)
        ).all()
        if source_id is not None
    }
    return {
        "campaigns": [
            {"id": c.id, "name": c.name, "sent": sent.get(("campaign", c.id), 0),
             "lift": lift(session, "campaign", c.id, c.lift_window_days, currency)}
            for c in campaigns
        ],
        "automations": [
            {"id": a.id, "kind": a.kind, "enabled": a.enabled,
             "sent": sent.get(("automation", a.id), 0),
             "lift": lift(session, "automation", a.id, 14, currency)}
            for a in automations
            if sent.get(("automation", a.id), 0) or a.enabled
        ],
    }  # fmt: skip
