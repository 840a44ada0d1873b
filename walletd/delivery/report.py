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

from sqlalchemy import ColumnElement, Interval, Select, and_, case, func, literal, or_, select
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
    # The brand's program when it has only one: then no query needs to join members.
    only_program: int | None = None


@dataclass(frozen=True)
class Grouping:
    """How rows fall into the report's groups: by program or by campaign."""

    by_campaign: bool

    def key(self, f: DeliveryFilter, campaign_column: Any = Card.change_campaign_id) -> Any:
        """The group key's column; None: every row is the brand's only program."""
        if self.by_campaign:
            return campaign_column
        return None if f.only_program is not None else Member.program_id

    def joins_members(self, f: DeliveryFilter) -> bool:
        """Whether the query needs members (the program of a card)."""
        if f.only_program is not None:
            return False
        return f.program_id is not None or not self.by_campaign


def _keyed(
    query: Select[Any], grouping: Grouping, f: DeliveryFilter, key: Any
) -> tuple[Select[Any], Any]:
    """The query joined to members when needed and grouped by `key`."""
    if grouping.joins_members(f):
        query = query.join(Member, Member.id == Card.member_id)
        if f.program_id is not None:
            query = query.where(Member.program_id == f.program_id)
    if key is None:
        return query, None
    return query.add_columns(key.label("key")).where(key.is_not(None)).group_by(key), key


def _group_of(row: Any, key: Any, f: DeliveryFilter) -> int | None:
    return f.only_program if key is None else row.key


def _within(session: Session, start: Any, end: Any, seconds: int) -> ColumnElement[bool]:
    """`end` is at most `seconds` after `start` (SQLite has no interval type: julianday)."""
    if session.get_bind().dialect.name == "sqlite":
        seconds_between: Any = (func.julianday(end) - func.julianday(start)) * 86400.0
        return and_(seconds_between <= seconds)
    return and_(end <= start + literal(timedelta(seconds=seconds), Interval()))


def _count(condition: ColumnElement[bool]) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _changed_in(f: DeliveryFilter) -> ColumnElement[bool]:
    return and_(Card.updated_at >= f.since, Card.updated_at < f.until)


def _card_scope(f: DeliveryFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [Card.brand_id == f.brand_id]
    if f.campaign_id is not None:
        conditions.append(Card.change_campaign_id == f.campaign_id)
    return conditions


def _counts(row: Any) -> dict[str, int]:
    return {name: int(value) for name, value in row._mapping.items() if name != "key"}


def _apple(
    session: Session, f: DeliveryFilter, grouping: Grouping, now: datetime, stale: timedelta
) -> dict[int | None, dict[str, Any]]:
    """Per group: registrations of cards changed in the period, and how fast they caught up."""
    up = Registration.synced_tag > Card.update_tag
    # Behind on a change older than `stale`: automatic updates off, or removed unannounced.
    stopped = and_(~func.coalesce(up, False), Card.updated_at < now - stale)
    last_fetch = func.coalesce(Registration.synced_at, Registration.created_at)
    query = (
        select(
            func.count(Registration.id).label("installed"),
            func.count(func.distinct(Card.id)).label("cards"),
            _count(up).label("up_to_date"),
            *(
                _count(
                    and_(up, _within(session, Card.updated_at, Registration.synced_at, s))
                ).label(name)
                for name, s in WINDOWS
            ),
            _count(stopped).label("stopped"),
            *(
                _count(and_(stopped, last_fetch >= now - age)).label(name)
                for name, age in STOPPED_BUCKETS
            ),
        )
        .select_from(Registration)
        .join(Card, Card.id == Registration.card_id)
        .where(*_card_scope(f), _changed_in(f))
    )
    query, key = _keyed(query, grouping, f, grouping.key(f))
    result: dict[int | None, dict[str, Any]] = {}
    for row in session.execute(query).all():
        counts = _counts(row)
        if not counts["installed"]:
            continue
        buckets, below = {}, 0
        for name, _ in STOPPED_BUCKETS:
            buckets[name] = counts.pop(name) - below
            below += buckets[name]
        buckets["over_30_days"] = counts["stopped"] - below
        result[_group_of(row, key, f)] = {
            **counts,
            "behind": counts["installed"] - counts["up_to_date"],
            "share": _shares(counts, counts["installed"]),
            "stopped": {"count": counts["stopped"], **buckets},
        }
    return result


def _shares(counts: dict[str, int], whole: int) -> dict[str, float | None]:
    return {name: _ratio(counts[name], whole) for name, _ in WINDOWS}


def _google(
    session: Session, f: DeliveryFilter, grouping: Grouping
) -> dict[int | None, dict[str, Any]]:
    """Per group, in one pass over the cards: those changed in the period that are in a Google
    wallet and whether their object has the change, and the save/delete callbacks of the period."""
    changed = _changed_in(f)
    saved = and_(changed, google_installed())
    up = and_(saved, Card.google_synced_at >= Card.updated_at)
    saved_in = and_(Card.google_saved_at >= f.since, Card.google_saved_at < f.until)
    deleted_in = and_(Card.google_deleted_at >= f.since, Card.google_deleted_at < f.until)
    query = select(
        _count(saved).label("saved"),
        _count(up).label("up_to_date"),
        *(
            _count(and_(up, _within(session, Card.updated_at, Card.google_synced_at, s))).label(
                name
            )
            for name, s in WINDOWS
        ),
        _count(saved_in).label("saves"),
        _count(deleted_in).label("deletions"),
    ).where(*_card_scope(f), or_(saved, saved_in, deleted_in))
    query, key = _keyed(query.select_from(Card), grouping, f, grouping.key(f))
    result: dict[int | None, dict[str, Any]] = {}
    for row in session.execute(query).all():
        counts = _counts(row)
        if any(counts.values()):
            result[_group_of(row, key, f)] = {**counts, "share": _shares(counts, counts["saved"])}
    return result


def _google_failures(
    session: Session, f: DeliveryFilter, grouping: Grouping
) -> dict[int | None, int]:
    """Per group: Google object writes that failed for good in the period."""
    # The row's card by its serial (unique index): the failed rows are few, the cards many.
    serial = func.substr(OutboxMessage.dedupe_key, len(GOOGLE_OBJECT) + 2)
    query = (
        select(func.count(OutboxMessage.id).label("n"))
        .select_from(OutboxMessage)
        .join(Card, Card.serial_number == serial)
        .where(
            OutboxMessage.kind == GOOGLE_OBJECT,
            OutboxMessage.status == "failed",
            OutboxMessage.finished_at >= f.since,
            OutboxMessage.finished_at < f.until,
            Card.brand_id == f.brand_id,
            *_only(OutboxMessage.campaign_id, f.campaign_id),
        )
    )
    query, key = _keyed(query, grouping, f, grouping.key(f, OutboxMessage.campaign_id))
    return {_group_of(row, key, f): int(row.n) for row in session.execute(query).all() if row.n}


def _refusals(
    session: Session, f: DeliveryFilter, grouping: Grouping
) -> dict[int | None, dict[str, Any]]:
    """Per group: pushes APNs refused in the period, by status and reason."""
    query = (
        select(ApnsRefusal.status, ApnsRefusal.reason, func.count(ApnsRefusal.id).label("n"))
        .select_from(ApnsRefusal)
        .join(Card, Card.id == ApnsRefusal.card_id)
        .where(
            ApnsRefusal.brand_id == f.brand_id,
            ApnsRefusal.refused_at >= f.since,
            ApnsRefusal.refused_at < f.until,
            *_only(ApnsRefusal.campaign_id, f.campaign_id),
        )
        .group_by(ApnsRefusal.status, ApnsRefusal.reason)
        .order_by(ApnsRefusal.status, ApnsRefusal.reason)
    )
    query, key = _keyed(query, grouping, f, grouping.key(f, ApnsRefusal.campaign_id))
    result: dict[int | None, dict[str, Any]] = {}
    for row in session.execute(query).all():
        entry = result.setdefault(_group_of(row, key, f), {"total": 0, "gone": 0, "by_reason": []})
        entry["total"] += int(row.n)
        if row.status == 410:
            entry["gone"] += int(row.n)
        entry["by_reason"].append({"status": row.status, "reason": row.reason, "count": int(row.n)})
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
    "saves": 0,
    "deletions": 0,
}


def _groups(
    session: Session, f: DeliveryFilter, now: datetime, stale: timedelta, grouping: Grouping
) -> dict[int | None, dict[str, Any]]:
    """The apple, google and apns_refused parts of every group that has any."""
    apple = _apple(session, f, grouping, now, stale)
    google = _google(session, f, grouping)
    failures = _google_failures(session, f, grouping)
    refusals = _refusals(session, f, grouping)
    keys = set(apple) | set(google) | set(failures) | set(refusals)
    groups: dict[int | None, dict[str, Any]] = {}
    for key in keys:
        a = apple.get(key, _EMPTY_APPLE)
        g = {
            **google.get(key, _EMPTY_GOOGLE),
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
        "google": {**_EMPTY_GOOGLE, "update_failures": 0},
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
    first_two = session.scalars(
        select(Program.id).where(Program.brand_id == brand_id).order_by(Program.id).limit(2)
    ).all()
    only = int(first_two[0]) if len(first_two) == 1 else None
    f = DeliveryFilter(brand_id, since, until, program_id, campaign_id, only_program=only)
    stale = timedelta(minutes=stale_after_minutes)
    by_program = _groups(session, f, now, stale, Grouping(by_campaign=False))
    by_campaign = _groups(session, f, now, stale, Grouping(by_campaign=True))
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
