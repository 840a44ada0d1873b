"""Recording an event a brand's system reports, once per event id, and what it sets in motion.

An event of an automation's trigger type schedules that automation's run for the member at
`occurred_at + delay`; a later trigger event replaces a pending run (the reminder follows the
latest cart), an earlier one (delivered out of order) leaves it. An event of one of its cancel
types cancels a pending run whose trigger came no later than it. The worker checks cancel events
and purchases again when the run is due (walletd.events.runs), so arrival order never matters.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from walletd.campaigns.templates import check_text
from walletd.errors import IdempotencyConflictError, NotFoundError, ValidationError
from walletd.events.automations import MAX_ID, check_event_type
from walletd.events.properties import check_properties, dump_properties
from walletd.models import Member
from walletd.models.event import Event, EventAutomation, EventAutomationRun

# A report may come late (a batch export, a retry queue), but not from last season; and a clock
# a little ahead is tolerated, not one that schedules reminders for tomorrow.
MAX_AGE = timedelta(days=30)
MAX_AHEAD = timedelta(minutes=5)
MAX_CLIENT_ID = 100
MAX_HEADER_KEY = 200


@dataclass(frozen=True)
class EventInput:
    """An event as a client sent it (not yet checked)."""

    type: object
    member_id: object = None
    external_id: object = None
    properties: object = None
    occurred_at: object = None
    # The client's event id (body `id`) and the request's Idempotency-Key header.
    event_id: object = None
    idempotency_key: object = None


@dataclass(frozen=True)
class Outcome:
    """The answer, and whether it is a replay of an earlier one with the same event id."""

    body: dict[str, Any]
    replayed: bool = False


def _client_id(data: EventInput) -> str | None:
    body_id = None
    if data.event_id is not None:
        body_id = check_text(data.event_id, field="id", max_length=MAX_CLIENT_ID)
    header = data.idempotency_key
    if isinstance(header, str) and header.strip():
        key = header.strip()
        if len(key) > MAX_HEADER_KEY or not all(" " <= ch <= "~" for ch in key):
            raise ValidationError(
                "Idempotency-Key must be 1 to 200 printable ASCII characters",
                field="Idempotency-Key",
            )
        if body_id is not None and body_id != key:
            raise ValidationError("id and the Idempotency-Key header differ", field="id")
        return key
    return body_id


def _member_ref(data: EventInput) -> tuple[int | None, str | None]:
    if (data.member_id is None) == (data.external_id is None):
        raise ValidationError("give exactly one of member_id and external_id", field="member_id")
    if data.member_id is not None:
        member_id = data.member_id
        if isinstance(member_id, bool) or not isinstance(member_id, int) or member_id < 1:
            raise ValidationError("member_id must be a positive integer", field="member_id")
        return member_id, None
    return None, check_text(data.external_id, field="external_id", max_length=100)


def _occurred_at(value: object, now: datetime) -> datetime:
    if value is None:
        return now
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(
            "occurred_at must be an ISO 8601 time with its offset", field="occurred_at"
        )
    if value > now + MAX_AHEAD:
        raise ValidationError(
            "occurred_at must not be more than 5 minutes in the future", field="occurred_at"
        )
    if value < now - MAX_AGE:
        raise ValidationError("occurred_at must be within the last 30 days", field="occurred_at")
    return value.astimezone(now.tzinfo)


def _fingerprint(meaning: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(meaning, sort_keys=True).encode()).hexdigest()


def _find_member(
    session: Session, brand_id: int, member_id: int | None, external_id: str | None
) -> Member:
    if member_id is not None:
        member = session.get(Member, member_id) if member_id <= MAX_ID else None
        if member is None or member.brand_id != brand_id or member.erased_at is not None:
            raise NotFoundError("member not found")
        return member
    found = session.scalars(
        select(Member)
        .where(
            Member.brand_id == brand_id,
            Member.external_id == external_id,
            Member.erased_at.is_(None),
        )
        .order_by(Member.id)
        .limit(2)
    ).all()
    if not found:
        raise NotFoundError("no member has this external_id")
    if len(found) > 1:
        # External ids are unique per program; a brand with two programs may reuse one.
        raise ValidationError(
            "this external_id names members of several programs: send member_id",
            field="external_id",
        )
    return found[0]


def _replay(session: Session, brand_id: int, client_id: str, fingerprint: str) -> Outcome | None:
    earlier = session.scalar(
        select(Event).where(Event.brand_id == brand_id, Event.client_id == client_id)
    )
    if earlier is None:
        return None
    if earlier.request_hash != fingerprint:
        raise IdempotencyConflictError("this event id was already used for a different event")
    return Outcome(body=dict(earlier.answer or {}), replayed=True)


def _pending(
    session: Session, member_id: int, program_id: int
) -> list[tuple[EventAutomationRun, EventAutomation, datetime]]:
    """The member's scheduled runs, with their automation and their trigger's time."""
    rows = session.execute(
        select(EventAutomationRun, EventAutomation, Event.occurred_at)
        .join(EventAutomation, EventAutomation.id == EventAutomationRun.automation_id)
        .join(Event, Event.id == EventAutomationRun.event_id)
        .where(
            EventAutomationRun.member_id == member_id,
            EventAutomationRun.status == "scheduled",
            EventAutomation.program_id == program_id,
        )
        .order_by(EventAutomationRun.id)
        .with_for_update(of=EventAutomationRun)
    ).all()
    return [(run, automation, at) for run, automation, at in rows]


def _run_out(run: EventAutomationRun) -> dict[str, Any]:
    body: dict[str, Any] = {"id": run.id, "automation_id": run.automation_id}
    if run.status == "scheduled":
        body["due_at"] = run.due_at.isoformat()
    else:
        body["reason"] = run.reason
    return body


def record_event(session: Session, brand_id: int, data: EventInput, now: datetime) -> Outcome:
    """Record an event once per event id; schedule and cancel the automation runs it concerns."""
    client_id = _client_id(data)
    member_id, external_id = _member_ref(data)
    event_type = check_event_type(data.type)
    properties = None if data.properties is None else check_properties(data.properties)
    if data.occurred_at is not None and not isinstance(data.occurred_at, datetime):
        raise ValidationError("occurred_at must be an ISO 8601 time", field="occurred_at")
    stored = None if properties is None else dump_properties(properties)
    fingerprint = _fingerprint({
        "member_id": member_id, "external_id": external_id, "type": event_type,
        "properties": stored,
        "occurred_at": None if data.occurred_at is None else data.occurred_at.isoformat(),
    })  # fmt: skip
    if client_id is not None:
        replay = _replay(session, brand_id, client_id, fingerprint)
        if replay is not None:
            return replay
    occurred_at = _occurred_at(data.occurred_at, now)
    member = _find_member(session, brand_id, member_id, external_id)
    event = Event(
        brand_id=brand_id, program_id=member.program_id, member_id=member.id, type=event_type,
        properties=stored, occurred_at=occurred_at, received_at=now, client_id=client_id,
        request_hash=fingerprint,
    )  # fmt: skip
    session.add(event)
    session.flush()
    scheduled: list[EventAutomationRun] = []
    cancelled: list[EventAutomationRun] = []
    pending = _pending(session, member.id, member.program_id)
    for run, automation, trigger_at in pending:
        if event_type in (automation.cancel_events or []) and trigger_at <= occurred_at:
            run.status, run.reason, run.decided_at = "cancelled", "cancel_event", now
            run.cancelled_by_event_id = event.id
            cancelled.append(run)
    still = {run.automation_id: (run, at) for run, _, at in pending if run.status == "scheduled"}
    triggered = session.scalars(
        select(EventAutomation)
        .where(
            EventAutomation.program_id == member.program_id,
            EventAutomation.trigger_event == event_type,
            EventAutomation.enabled,
        )
        .order_by(EventAutomation.id)
    ).all()
    for automation in triggered:
        earlier = still.get(automation.id)
        if earlier is not None:
            if earlier[1] > occurred_at:
                continue  # a later trigger already scheduled this reminder
            run = earlier[0]
            run.status, run.reason, run.decided_at = "cancelled", "replaced", now
            run.cancelled_by_event_id = event.id
            cancelled.append(run)
            session.flush()  # the pending run gives up its place before its successor
        new = EventAutomationRun(
            automation_id=automation.id, member_id=member.id, event_id=event.id,
            due_at=occurred_at + timedelta(minutes=automation.delay_minutes),
            status="scheduled", created_at=now,
        )  # fmt: skip
        session.add(new)
        scheduled.append(new)
    session.flush()
    body = {
        "id": event.id,
        "member_id": member.id,
        "type": event_type,
        "occurred_at": occurred_at.isoformat(),
        "received_at": now.isoformat(),
        "scheduled": [_run_out(r) for r in scheduled],
        "cancelled": [_run_out(r) for r in cancelled],
    }
    event.answer = body
    return Outcome(body=body)
