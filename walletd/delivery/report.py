"""The delivery report, in SQL: did each change of a card reach the phones, and how fast.

A card's version is its update tag; its change time is `cards.updated_at`. An Apple device has
a version when its registration's `synced_tag` is above the card's tag (the list call handed it
every change below that tag); how long it took is `synced_at - updated_at`. A Google object has
it when `google_synced_at` is at or after the change. Each card counts with its current
version, the one it got last in the period; a campaign's cards are those whose current version
that campaign made (`cards.change_campaign_id`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, literal, or_, select
from sqlalchemy.orm import Session

from walletd.campaigns.reports import period
from walletd.campaigns.service import get_campaign
from walletd.loyalty.brands import get_program
from walletd.models import ApnsRefusal, Campaign, Card, Member, OutboxMessage, Program, Registration
from walletd.push.google_sync import google_installed
from walletd.push.outbox import GOOGLE_OBJECT

# The windows the report measures: up to date within 1 minute, 10 minutes and 1 hour.
WINDOWS = (("within_1m", 60), ("within_10m", 600), ("within_1h", 3600))
# How long a device has not fetched (since the last version it was handed): the buckets.
STOPPED_BUCKETS = (
    ("under_1_day", timedelta(days=1)),
    ("days_1_to_7", timedelta(days=7)),
    ("days_7_to_30", timedelta(days=30)),
)
DEFAULT_DAYS = 30
DEFAULT_STALE_MINUTES = 60


@dataclass(frozen=True)
class DeliveryFilter:
    """What the report covers: one brand, a period of change times, maybe one program/campaign."""

    brand_id: int
    since: datetime
    until: datetime
    program_id: int | None
    campaign_id: int | None


def _seconds(session: Session, start: Any, end: Any) -> Any:
    """`end - start` in seconds, in SQL (SQLite has no interval type: it uses julianday)."""
    if session.get_bind().dialect.name == "sqlite":
        return (func.julianday(end) - func.julianday(start)) * 86400.0
    return func.extract("epoch", end - start)


def _count(condition: ColumnElement[bool]) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _card_conditions(f: DeliveryFilter) -> list[ColumnElement[bool]]:
    conditions = [
        Card.brand_id == f.brand_id,
        Card.updated_at >= f.since,
        Card.updated_at < f.until,
    ]
    if f.program_id is not None:
        conditions.append(Member.program_id == f.program_id)
    if f.campaign_id is not None:
        conditions.append(Card.change_campaign_id == f.campaign_id)
    return conditions


def _apple(
    session: Session, f: DeliveryFilter, key: Any, now: datetime, stale: timedelta
) -> dict[int | None, dict[str, Any]]:
    """Per group: registrations of cards changed in the period, and how fast they caught up."""
    up = Registration.synced_tag > Card.update_tag
    delay = _seconds(session, Card.updated_at, Registration.synced_at)
    # Behind on a change older than `stale`: automatic updates off, or removed unannounced.
    stopped = and_(~func.coalesce(up, False), Card.updated_at < now - stale)
    last_fetch = func.coalesce(Registration.synced_at, Registration.created_at)
    columns = [
        key.label("key"),
        func.count(Registration.id).label("installed"),
        func.count(func.distinct(Card.id)).label("cards"),
        _count(up).label("up_to_date"),
        *(_count(and_(up, delay <= seconds)).label(name) for name, seconds in WINDOWS),
        _count(stopped).label("stopped"),
        *(
            _count(and_(stopped, last_fetch >= now - age)).label(name)
            for name, age in STOPPED_BUCKETS
        ),
    ]
    rows = session.execute(
        select(*columns)
        .select_from(Registration)
        .join(Card, Card.id == Registration.card_id)
        .join(Member, Member.id == Card.member_id)
        .where(*_card_conditions(f), key.is_not(None))
        .group_by(key)
    ).all()
    result: dict[int | None, dict[str, Any]] = {}
    for row in rows:
        counts = {name: int(row._mapping[name]) for name in row._mapping.keys() if name != "key"}
        buckets, below = {}, 0
        for name, _ in STOPPED_BUCKETS:
            buckets[name] = counts.pop(name) - below
            below += buckets[name]
        buckets["over_30_days"] = counts["stopped"] - below
        result[row.key] = {
            **counts,
            "behind": counts["installed"] - counts["up_to_date"],
            "share": _shares(counts, counts["installed"]),
            "stopped": {"count": counts["stopped"], **buckets},
        }
    return result


def _shares(counts: dict[str, int], whole: int) -> dict[str, float | None]:
    return {name: _ratio(counts[name], whole) for name, _ in WINDOWS}


def _google(session: Session, f: DeliveryFilter, key: Any) -> dict[int | None, dict[str, Any]]:
    """Per group: cards changed in the period that are in a Google wallet, and their updates."""
    saved = google_installed()
    up = and_(saved, Card.google_synced_at >= Card.updated_at)
    delay = _seconds(session, Card.updated_at, Card.google_synced_at)
    rows = session.execute(
        select(
            key.label("key"),
            _count(saved).label("saved"),
            _count(up).label("up_to_date"),
            *(_count(and_(up, delay <= seconds)).label(name) for name, seconds in WINDOWS),
        )
        .select_from(Card)
        .join(Member, Member.id == Card.member_id)
        .where(*_card_conditions(f), key.is_not(None))
        .group_by(key)
    ).all()
    result: dict[int | None, dict[str, Any]] = {}
    for row in rows:
        counts = {name: int(row._mapping[name]) for name in row._mapping.keys() if name != "key"}
        result[row.key] = {**counts, "share": _shares(counts, counts["saved"])}
    return result


def _google_events(
    session: Session, f: DeliveryFilter, key: Any
) -> dict[int | None, dict[str, int]]:
    """Per group: saves and deletions the callbacks reported in the period."""
    conditions = [Card.brand_id == f.brand_id]
    if f.program_id is not None:
        conditions.append(Member.program_id == f.program_id)
    if f.campaign_id is not None:
        conditions.append(Card.change_campaign_id == f.campaign_id)
    saved_in = and_(Card.google_saved_at >= f.since, Card.google_saved_at < f.until)
    deleted_in = and_(Card.google_deleted_at >= f.since, Card.google_deleted_at < f.until)
    rows = session.execute(
        select(key.label("key"), _count(saved_in).label("saves"), _count(deleted_in).label("d"))
        .select_from(Card)
        .join(Member, Member.id == Card.member_id)
        .where(*conditions, or_(saved_in, deleted_in), key.is_not(None))
        .group_by(key)
    ).all()
    return {row.key: {"saves": int(row.saves), "deletions": int(row.d)} for row in rows}


def _google_failures(session: Session, f: DeliveryFilter, key: Any) -> dict[int | None, int]:
    """Per group: Google object writes that failed for good in the period."""
    conditions = [
        OutboxMessage.kind == GOOGLE_OBJECT,
        OutboxMessage.status == "failed",
        OutboxMessage.finished_at >= f.since,
        OutboxMessage.finished_at < f.until,
        Card.brand_id == f.brand_id,
    ]
    if f.program_id is not None:
        conditions.append(Member.program_id == f.program_id)
    if f.campaign_id is not None:
        conditions.append(OutboxMessage.campaign_id == f.campaign_id)
    rows = session.execute(
        select(key.label("key"), func.count(OutboxMessage.id).label("n"))
        .select_from(OutboxMessage)
        .join(Card, OutboxMessage.dedupe_key == literal(f"{GOOGLE_OBJECT}:") + Card.serial_number)
        .join(Member, Member.id == Card.member_id)
        .where(*conditions, key.is_not(None))
        .group_by(key)
    ).all()
    return {row.key: int(row.n) for row in rows}


def _refusals(session: Session, f: DeliveryFilter, key: Any) -> dict[int | None, dict[str, Any]]:
    """Per group: pushes APNs refused in the period, by status and reason."""
    conditions = [
        ApnsRefusal.brand_id == f.brand_id,
        ApnsRefusal.refused_at >= f.since,
        ApnsRefusal.refused_at < f.until,
    ]
    if f.program_id is not None:
        conditions.append(Member.program_id == f.program_id)
    if f.campaign_id is not None:
        conditions.append(ApnsRefusal.campaign_id == f.campaign_id)
    rows = session.execute(
        select(key.label("key"), ApnsRefusal.status, ApnsRefusal.reason, func.count(ApnsRefusal.id))
        .select_from(ApnsRefusal)
        .join(Card, Card.id == ApnsRefusal.card_id)
        .join(Member, Member.id == Card.member_id)
        .where(*conditions, key.is_not(None))
        .group_by(key, ApnsRefusal.status, ApnsRefusal.reason)
        .order_by(key, ApnsRefusal.status, ApnsRefusal.reason)
    ).all()
    result: dict[int | None, dict[str, Any]] = {}
    for group, status, reason, count in rows:
        entry = result.setdefault(group, {"total": 0, "gone": 0, "by_reason": []})
        entry["total"] += int(count)
        if status == 410:
            entry["gone"] += int(count)
        entry["by_reason"].append({"status": status, "reason": reason, "count": int(count)})
    return result


_EMPTY_APPLE: dict[str, Any] = {
    "installed": 0,
    "cards": 0,
    "up_to_date": 0,
    "behind": 0,
    **{name: 0 for name, _ in WINDOWS},
    "share": {name: None for name, _ in WINDOWS},
    "stopped": {
        "count": 0,
        **{name: 0 for name, _ in STOPPED_BUCKETS},
        "over_30_days": 0,
    },
}
_EMPTY_GOOGLE: dict[str, Any] = {
    "saved": 0,
    "up_to_date": 0,
    **{name: 0 for name, _ in WINDOWS},
    "share": {name: None for name, _ in WINDOWS},
}


def _groups(
    session: Session,
    f: DeliveryFilter,
    now: datetime,
    stale: timedelta,
    *,
    card_key: Any,
    event_key: Any,
    refusal_key: Any,
    failure_key: Any,
) -> dict[int | None, dict[str, Any]]:
    """The apple, google and apns_refused parts of every group that has any."""
    apple = _apple(session, f, card_key, now, stale)
    google = _google(session, f, card_key)
    events = _google_events(session, f, event_key)
    failures = _google_failures(session, f, failure_key)
    refusals = _refusals(session, f, refusal_key)
    keys = set(apple) | set(google) | set(events) | set(failures) | set(refusals)
    groups: dict[int | None, dict[str, Any]] = {}
    for key in keys:
        a = apple.get(key, _EMPTY_APPLE)
        g = {
            **google.get(key, _EMPTY_GOOGLE),
            **events.get(key, {"saves": 0, "deletions": 0}),
            "update_failures": failures.get(key, 0),
        }
        installed = a["installed"] + g["saved"]
        together = {name: a[name] + g[name] for name, _ in WINDOWS}
        groups[key] = {
            "installed": installed,
            "up_to_date": a["up_to_date"] + g["up_to_date"],
            "share": _shares(together, installed),
            "apple": a,
            "google": g,
            "apns_refused": refusals.get(key, {"total": 0, "gone": 0, "by_reason": []}),
        }
    return groups


def _empty_group() -> dict[str, Any]:
    return {
        "installed": 0,
        "up_to_date": 0,
        "share": {name: None for name, _ in WINDOWS},
        "apple": _EMPTY_APPLE,
        "google": {**_EMPTY_GOOGLE, "saves": 0, "deletions": 0, "update_failures": 0},
        "apns_refused": {"total": 0, "gone": 0, "by_reason": []},
    }


def delivery_report(
    session: Session,
    brand_id: int,
    *,
    now: datetime,
    start: date | None = None,
    end: date | None = None,
    program_id: int | None = None,
    campaign_id: int | None = None,
    stale_after_minutes: int = DEFAULT_STALE_MINUTES,
) -> dict[str, Any]:
    """Per program and per campaign: how many installed cards got their latest change, how
    fast (1 minute, 10 minutes, 1 hour), devices that stopped fetching, Google saves, deletions
    and failed updates, and the pushes APNs refused, for cards changed in the period."""
    end = end or now.date()
    start = start or end - timedelta(days=DEFAULT_DAYS - 1)
    since, until = period(start, end)
    if program_id is not None:
        get_program(session, brand_id, program_id)
    if campaign_id is not None:
        get_campaign(session, brand_id, campaign_id)
    f = DeliveryFilter(brand_id, since, until, program_id, campaign_id)
    stale = timedelta(minutes=stale_after_minutes)
    by_program = _groups(
        session,
        f,
        now,
        stale,
        card_key=Member.program_id,
        event_key=Member.program_id,
        refusal_key=Member.program_id,
        failure_key=Member.program_id,
    )
    by_campaign = _groups(
        session,
        f,
        now,
        stale,
        card_key=Card.change_campaign_id,
        event_key=Card.change_campaign_id,
        refusal_key=ApnsRefusal.campaign_id,
        failure_key=OutboxMessage.campaign_id,
    )
    programs = session.execute(
        select(Program.id, Program.name)
        .where(Program.brand_id == brand_id, *_only(Program.id, program_id))
        .order_by(Program.id)
    ).all()
    campaign_ids = sorted(k for k in by_campaign if k is not None)
    if campaign_id is not None:
        campaign_ids = [campaign_id]
    campaigns = _campaigns(session, brand_id, campaign_ids, program_id)
    return {
        "start": start,
        "end": end,
        "stale_after_minutes": stale_after_minutes,
        "generated_at": now,
        "programs": [
            {"id": p.id, "name": p.name, **by_program.get(p.id, _empty_group())} for p in programs
        ],
        "campaigns": [
            {"id": c.id, "name": c.name, **by_campaign.get(c.id, _empty_group())} for c in campaigns
        ],
    }


def _only(column: Any, value: int | None) -> list[ColumnElement[bool]]:
    return [] if value is None else [column == value]


def _campaigns(
    session: Session, brand_id: int, ids: Iterable[int], program_id: int | None
) -> list[Any]:
    wanted = list(ids)
    if not wanted:
        return []
    return list(
        session.execute(
            select(Campaign.id, Campaign.name)
            .where(
                Campaign.brand_id == brand_id,
                Campaign.id.in_(wanted),
                *_only(Campaign.program_id, program_id),
            )
            .order_by(Campaign.id)
        ).all()
    )
