"""Events from the brand's systems and event automations under /api/v1 (admin keys).

Events take admin keys only: they come from the brand's back office (its e-shop, its CRM), and
each may schedule marketing messages to any member, which a till's cashier key must not do.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request
from sqlalchemy.orm import Session

from walletd.events import automations, intake
from walletd.models.event import EventAutomation
from walletd.web.auth import principal
from walletd.web.deps import context, run_in_transaction
from walletd.web.endpoint import Header, endpoint
from walletd.web.event_schemas import (
    EventAutomationCreate,
    EventAutomationList,
    EventAutomationOut,
    EventAutomationUpdate,
    EventCreate,
    EventOut,
    RunCounts,
)

bp = Blueprint("events", __name__, url_prefix="/api/v1")
ADMIN = ("admin",)
EVENT_KEY = Header(
    "Idempotency-Key",
    "optional: the event's id (as the body's `id`); a retry with it replays the first answer",
)


@bp.post("/events")
@endpoint(
    "Record an event a member did in the brand's systems (a replay answers 200)",
    tag="events",
    roles=ADMIN,
    body=EventCreate,
    response=EventOut,
    status=201,
    headers=(EVENT_KEY,),
    other_responses={200: "a replay of the same event id: the first answer"},
)
def create_event(body: EventCreate) -> tuple[dict[str, Any], int]:
    """Record an event once per event id; the answer lists the runs it scheduled and cancelled."""
    brand_id = principal().brand_id
    data = intake.EventInput(
        type=body.type, member_id=body.member_id, external_id=body.external_id,
        properties=body.properties, occurred_at=body.occurred_at, event_id=body.id,
        idempotency_key=request.headers.get("Idempotency-Key"),
    )  # fmt: skip
    now = context().now
    outcome = run_in_transaction(lambda s: intake.record_event(s, brand_id, data, now))
    return outcome.body, 200 if outcome.replayed else 201


def _out(automation: EventAutomation, counts: dict[str, int]) -> EventAutomationOut:
    return EventAutomationOut(
        id=automation.id,
        program_id=automation.program_id,
        name=automation.name,
        trigger_event=automation.trigger_event,
        delay_minutes=automation.delay_minutes,
        cancel_events=list(automation.cancel_events or []),
        cancel_on_purchase=automation.cancel_on_purchase,
        message=automation.message,
        messages=automation.messages or {},
        offer_id=automation.offer_id,
        enabled=automation.enabled,
        marketing=automation.marketing,
        email_fallback=automation.email_fallback,  # [email-campaigns]
        runs=RunCounts(**counts),
        created_at=automation.created_at,
        updated_at=automation.updated_at,
    )


def _with_counts(session: Session, automation: EventAutomation) -> EventAutomationOut:
    return _out(automation, automations.run_counts(session, [automation.id])[automation.id])


def _input(body: EventAutomationCreate | EventAutomationUpdate) -> automations.AutomationInput:
    values = {name: getattr(body, name) for name in automations.FIELDS}
    return automations.AutomationInput(
        values=values,
        program_id=getattr(body, "program_id", None),
        given=frozenset(body.model_fields_set),
    )


@bp.post("/event-automations")
@endpoint(
    "Create an event automation",
    tag="events",
    roles=ADMIN,
    body=EventAutomationCreate,
    response=EventAutomationOut,
    status=201,
)
def create_automation(body: EventAutomationCreate) -> EventAutomationOut:
    """Create a message sent a delay after a trigger event unless cancelled."""
    actor = principal().actor
    data = _input(body)
    now = context().now
    return run_in_transaction(
        lambda s: _with_counts(s, automations.create_automation(s, actor, data, now))
    )


@bp.get("/event-automations")
@endpoint("The brand's event automations", tag="events", roles=ADMIN, response=EventAutomationList)
def list_automations() -> EventAutomationList:
    """Every event automation of the brand with its runs by status, oldest first."""
    brand_id = principal().brand_id

    def work(session: Session) -> list[EventAutomationOut]:
        rows = automations.list_automations(session, brand_id)
        counts = automations.run_counts(session, [a.id for a in rows])
        return [_out(a, counts[a.id]) for a in rows]

    return EventAutomationList(event_automations=run_in_transaction(work))


@bp.patch("/event-automations/<int:automation_id>")
@endpoint(
    "Change an event automation (null takes the offer off)",
    tag="events",
    roles=ADMIN,
    body=EventAutomationUpdate,
    response=EventAutomationOut,
)
def update_automation(automation_id: int, body: EventAutomationUpdate) -> EventAutomationOut:
    """Change some fields; pending runs fire with the new text and rules."""
    actor = principal().actor
    data = _input(body)
    now = context().now
    return run_in_transaction(
        lambda s: _with_counts(s, automations.update_automation(s, actor, automation_id, data, now))
    )


@bp.delete("/event-automations/<int:automation_id>")
@endpoint("Delete an event automation", tag="events", roles=ADMIN, status=204, media_type="")
def delete_automation(automation_id: int) -> Response:
    """Delete an event automation and its pending runs."""
    actor = principal().actor
    now = context().now
    run_in_transaction(lambda s: automations.delete_automation(s, actor, automation_id, now))
    response = Response(status=204)
    del response.headers["Content-Type"]  # no body, so no media type to name
    return response
