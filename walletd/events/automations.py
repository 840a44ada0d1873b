"""Event automations of a brand's programs: create, list, change and delete (audited)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from walletd import audit
from walletd.audit import Actor
from walletd.campaigns.templates import check_messages, check_text
from walletd.errors import N_, NotFoundError, ValidationError
from walletd.events.templates import check_event_template
from walletd.models import Program
from walletd.models.event import EventAutomation, EventAutomationRun
from walletd.offers.catalog import get_active_offer

MAX_ID = 2**31 - 1
EVENT_TYPE = re.compile(r"[a-z0-9_.]{1,64}")
# 30 days: the longest an abandoned cart or a sign-up is worth a reminder.
MAX_DELAY_MINUTES = 43_200
MAX_CANCEL_EVENTS = 20
# Every event of a trigger type reads these, so a program keeps a list a person can review.
MAX_PER_PROGRAM = 100
# Fields a PATCH may change; `offer_id` null takes the offer off.
FIELDS = (
    "name",
    "trigger_event",
    "delay_minutes",
    "cancel_events",
    "cancel_on_purchase",
    "message",
    "messages",
    "offer_id",
    "enabled",
    "marketing",
    "email_fallback",  # [email-campaigns]
)


@dataclass(frozen=True)
class AutomationInput:
    """What a client sent to create or change an event automation (not yet checked)."""

    values: Mapping[str, Any]
    program_id: object = None
    # Fields present in a PATCH (all of them on create).
    given: frozenset[str] = field(default_factory=frozenset)


def check_event_type(value: object, field_name: str = "type") -> str:
    """An event type: 1 to 64 of a-z, 0-9, `_` and `.`."""
    if not isinstance(value, str) or EVENT_TYPE.fullmatch(value) is None:
        raise ValidationError(
            N_("{field} must be 1 to 64 characters of a-z, 0-9, _ and ."),
            field=field_name,
            params={"field": field_name},
        )
    return value


def _bool(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(
            N_("{field} must be true or false"), field=name, params={"field": name}
        )
    return value


def _delay(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DELAY_MINUTES:
        raise ValidationError(
            f"delay_minutes must be 1 to {MAX_DELAY_MINUTES} (30 days)", field="delay_minutes"
        )
    return value


def _cancel_events(value: object) -> list[str]:
    if not isinstance(value, list) or len(value) > MAX_CANCEL_EVENTS:
        raise ValidationError(
            f"cancel_events must be a list of at most {MAX_CANCEL_EVENTS} event types",
            field="cancel_events",
        )
    types = [check_event_type(v, "cancel_events") for v in value]
    return list(dict.fromkeys(types))


def _program(session: Session, brand_id: int, program_id: object) -> Program:
    if program_id is None:
        program = session.scalar(
            select(Program).where(Program.brand_id == brand_id).order_by(Program.id).limit(1)
        )
    elif isinstance(program_id, bool) or not isinstance(program_id, int):
        raise ValidationError("program_id must be an integer", field="program_id")
    else:
        program = session.get(Program, program_id) if 1 <= program_id <= MAX_ID else None
    if program is None or program.brand_id != brand_id:
        raise ValidationError("program_id is not a program of this brand", field="program_id")
    return program


def _checked(
    session: Session,
    brand_id: int,
    program_id: int,
    values: Mapping[str, Any],
    given: frozenset[str],
) -> dict[str, Any]:
    """The given fields, each checked; a 422 names the first bad one."""
    out: dict[str, Any] = {}
    if "name" in given:
        out["name"] = check_text(values["name"], field="name", max_length=200)
    if "trigger_event" in given:
        out["trigger_event"] = check_event_type(values["trigger_event"], "trigger_event")
    if "delay_minutes" in given:
        out["delay_minutes"] = _delay(values["delay_minutes"])
    if "cancel_events" in given:
        out["cancel_events"] = _cancel_events(
            [] if values["cancel_events"] is None else values["cancel_events"]
        )
    if "message" in given:
        out["message"] = check_event_template(values["message"])
    if "messages" in given:
        out["messages"] = check_messages(values["messages"], check_event_template)
    for name in ("cancel_on_purchase", "enabled", "marketing", "email_fallback"):
        if name in given:
            out[name] = _bool(values[name], name)
    if "offer_id" in given:
        offer_id = values["offer_id"]
        if offer_id is not None:
            get_active_offer(session, brand_id, program_id, offer_id)
        out["offer_id"] = offer_id
    return out


def _check_trigger_not_cancel(automation: EventAutomation) -> None:
    if automation.trigger_event in (automation.cancel_events or []):
        raise ValidationError(
            "cancel_events must not include the trigger event", field="cancel_events"
        )


def _audit_values(automation: EventAutomation) -> dict[str, Any]:
    return {name: getattr(automation, name) for name in FIELDS}


def create_automation(
    session: Session, actor: Actor, data: AutomationInput, now: datetime
) -> EventAutomation:
    """Create an event automation of one of the brand's programs."""
    program = _program(session, actor.brand_id, data.program_id)
    for required in ("name", "trigger_event", "delay_minutes", "message"):
        if data.values.get(required) is None:
            raise ValidationError(
                N_("{field} is required"), field=required, params={"field": required}
            )
    given = frozenset(name for name in FIELDS if data.values.get(name) is not None)
    checked = _checked(session, actor.brand_id, program.id, data.values, given)
    count = session.scalar(
        select(func.count(EventAutomation.id)).where(EventAutomation.program_id == program.id)
    )
    if int(count or 0) >= MAX_PER_PROGRAM:
        raise ValidationError(
            f"a program has at most {MAX_PER_PROGRAM} event automations", field="program_id"
        )
    defaults: dict[str, Any] = {
        "cancel_events": [], "cancel_on_purchase": True, "enabled": True, "marketing": True,
        "offer_id": None, "email_fallback": False,
    }  # fmt: skip
    automation = EventAutomation(
        brand_id=actor.brand_id,
        program_id=program.id,
        created_at=now,
        updated_at=now,
        **{**defaults, **checked},
    )
    _check_trigger_not_cancel(automation)
    session.add(automation)
    session.flush()
    audit.record(
        session, actor, "event_automation.created", "event_automation", automation.id,
        now=now, changes=_audit_values(automation),
    )  # fmt: skip
    return automation


def list_automations(session: Session, brand_id: int) -> list[EventAutomation]:
    """The brand's event automations, oldest first."""
    return list(
        session.scalars(
            select(EventAutomation)
            .where(EventAutomation.brand_id == brand_id)
            .order_by(EventAutomation.id)
        ).all()
    )


def get_automation(session: Session, brand_id: int, automation_id: int) -> EventAutomation:
    """One of the brand's event automations; another brand's is not found."""
    automation = (
        session.get(EventAutomation, automation_id) if 1 <= automation_id <= MAX_ID else None
    )
    if automation is None or automation.brand_id != brand_id:
        raise NotFoundError("event automation not found")
    return automation


def run_counts(session: Session, automation_ids: list[int]) -> dict[int, dict[str, int]]:
    """Runs of each automation by status."""
    counts: dict[int, dict[str, int]] = {i: {} for i in automation_ids}
    if not automation_ids:
        return counts
    rows = session.execute(
        select(EventAutomationRun.automation_id, EventAutomationRun.status, func.count())
        .where(EventAutomationRun.automation_id.in_(automation_ids))
        .group_by(EventAutomationRun.automation_id, EventAutomationRun.status)
    ).all()
    for automation_id, status, n in rows:
        counts[int(automation_id)][str(status)] = int(n)
    return counts


def update_automation(
    session: Session, actor: Actor, automation_id: int, data: AutomationInput, now: datetime
) -> EventAutomation:
    """Change some fields of an event automation; null clears only the offer (and the cancel
    list); pending runs keep their due time and follow the new text and rules when they fire."""
    automation = get_automation(session, actor.brand_id, automation_id)
    given = frozenset(data.given) & set(FIELDS)
    for name in given - {"offer_id", "cancel_events"}:
        if data.values.get(name) is None:
            raise ValidationError(N_("{field} cannot be null"), field=name, params={"field": name})
    checked = _checked(session, actor.brand_id, automation.program_id, data.values, given)
    before = _audit_values(automation)
    for name, value in checked.items():
        setattr(automation, name, value)
    _check_trigger_not_cancel(automation)
    automation.updated_at = now
    after = _audit_values(automation)
    changes = {k: {"from": before[k], "to": after[k]} for k in FIELDS if before[k] != after[k]}
    audit.record(
        session, actor, "event_automation.updated", "event_automation", automation.id,
        now=now, changes=changes,
    )  # fmt: skip
    return automation


def delete_automation(session: Session, actor: Actor, automation_id: int, now: datetime) -> None:
    """Delete an event automation with its runs; messages already sent stay on the cards."""
    automation = get_automation(session, actor.brand_id, automation_id)
    audit.record(
        session, actor, "event_automation.deleted", "event_automation", automation.id,
        now=now, changes=_audit_values(automation),
    )  # fmt: skip
    # Its runs go with it (ON DELETE CASCADE): a pending one can no longer fire.
    session.delete(automation)
