"""Request and response models of the events and event automation routes."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    AwareDatetime,
    BeforeValidator,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
)

from walletd.web.schemas import Id, Messages, Reply, Request, Text, Timestamp

EventType = Annotated[
    str,
    StringConstraints(strict=True, pattern=r"^[a-z0-9_.]{1,64}$"),
    Field(description="1 to 64 characters of a-z, 0-9, _ and ., such as cart_abandoned"),
]
DelayMinutes = Annotated[StrictInt, Field(ge=1, le=43_200, description="1 minute to 30 days")]
CancelEvents = Annotated[
    list[EventType],
    Field(max_length=20, description="event types that cancel a pending run"),
]
Message = Annotated[
    str,
    StringConstraints(strict=True, min_length=1, max_length=500),
    Field(
        description="the card message; {name}, {points}, {tier} and {event.<path>} into the "
        "trigger event's properties, such as {event.items.0.name}"
    ),
]


def _iso_text(value: object) -> object:
    """Only ISO 8601 text: pydantic alone would also read a number as Unix seconds."""
    if not isinstance(value, str) or len(value) > 40:
        raise ValueError("must be an ISO 8601 time with its offset, such as 2026-03-10T12:00:00Z")
    return value


IsoTime = Annotated[AwareDatetime, BeforeValidator(_iso_text)]


class EventCreate(Request):
    """Something a member did in the brand's other systems (exactly one of member_id and
    external_id)."""

    member_id: Id | None = None
    external_id: Text(100, 1) | None = Field(  # type: ignore[valid-type]
        default=None, description="the id the brand's system knows the member by"
    )
    type: EventType
    properties: dict[str, Any] | None = Field(
        default=None,
        description="a JSON object: at most 8 KiB as JSON, nested at most 5 deep, strings at "
        "most 500 characters",
    )
    occurred_at: IsoTime | None = Field(
        default=None,
        description="ISO 8601 with an offset; within the last 30 days and at most 5 minutes "
        "ahead; now when absent",
    )
    id: Text(100, 1) | None = Field(  # type: ignore[valid-type]
        default=None,
        description="the event's id in the brand's system: the same id again replays the first "
        "answer (the Idempotency-Key header does the same)",
    )


class RunRef(Reply):
    """An automation run an event scheduled or cancelled."""

    id: int
    automation_id: int
    due_at: str | None = Field(default=None, description="when it fires (scheduled runs)")
    reason: str | None = Field(default=None, description="why it was cancelled")


class EventOut(Reply):
    """The recorded event and the automation runs it scheduled and cancelled."""

    id: int
    member_id: int
    type: str
    occurred_at: str
    received_at: str
    scheduled: list[RunRef]
    cancelled: list[RunRef]


class EventAutomationCreate(Request):
    """A message some minutes after a trigger event, unless a cancel event or a purchase came."""

    program_id: Id | None = Field(default=None, description="the brand's first program if absent")
    name: Text(200, 1)  # type: ignore[valid-type]
    trigger_event: EventType
    delay_minutes: DelayMinutes
    cancel_events: CancelEvents | None = None
    cancel_on_purchase: StrictBool | None = Field(
        default=None, description="a purchase scan after the trigger cancels (default true)"
    )
    message: Message
    messages: Messages | None = None
    offer_id: Id | None = Field(
        default=None, description="an active offer of the program: its coupon goes with it"
    )
    enabled: StrictBool | None = Field(default=None, description="default true")
    marketing: StrictBool | None = Field(
        default=None,
        description="marketing messages need consent and count towards the weekly cap "
        "(default true)",
    )
    email_fallback: StrictBool | None = Field(
        default=None,
        description="members without an installed card who consented get it by e-mail "
        "(default false)",
    )  # [email-campaigns]


class EventAutomationUpdate(Request):
    """Change some fields of an event automation; null takes the offer off."""

    name: Text(200, 1) | None = None  # type: ignore[valid-type]
    trigger_event: EventType | None = None
    delay_minutes: DelayMinutes | None = None
    cancel_events: CancelEvents | None = None
    cancel_on_purchase: StrictBool | None = None
    message: Message | None = None
    # Null takes the per-language texts off.
    messages: Messages | None = None
    offer_id: Id | None = None
    enabled: StrictBool | None = None
    marketing: StrictBool | None = None
    email_fallback: StrictBool | None = None  # [email-campaigns]


class RunCounts(Reply):
    """An automation's runs by status."""

    scheduled: int = 0
    sent: int = 0
    cancelled: int = 0
    skipped: int = 0


class EventAutomationOut(Reply):
    """An event automation of the caller's brand."""

    id: int
    program_id: int
    name: str
    trigger_event: str
    delay_minutes: int
    cancel_events: list[str]
    cancel_on_purchase: bool
    message: str
    messages: dict[str, str] = Field(default_factory=dict, description="texts per language")
    offer_id: int | None
    enabled: bool
    marketing: bool
    email_fallback: bool = False  # [email-campaigns]
    runs: RunCounts
    created_at: Timestamp
    updated_at: Timestamp


class EventAutomationList(Reply):
    """The brand's event automations, oldest first."""

    event_automations: list[EventAutomationOut]
