"""Webhooks: events of a brand's program sent, signed, to the URLs its other systems listen on.

`emit_event` is called by the services where things happen, inside their transaction: it writes
one delivery record and one outbox row per subscribed endpoint, and the worker's
`WebhookChannel` posts them later, signed as the Standard Webhooks specification describes.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Literal, get_args

from sqlalchemy import select
from sqlalchemy.orm import Session

from walletd.db import transaction_memo
from walletd.models import WebhookDelivery, WebhookEndpoint
from walletd.push.outbox import enqueue

# The outbox kind the WebhookChannel delivers.
WEBHOOK = "webhook"
# The one list of event names (fixed by the contract, section 8): the route models use the type,
# the services the tuple.
EventName = Literal[
    "member.enrolled",
    "member.updated",
    "member.erased",
    "scan.credited",
    "scan.reversed",
    "redemption.created",
    "tier.changed",
    "coupon.issued",
    "coupon.redeemed",
    "pass.installed",
    "pass.removed",
    # A member rated a visit (walletd.feedback); `data.low` is true at 2 stars or fewer.
    "feedback.received",
]
EVENTS: tuple[str, ...] = get_args(EventName)
ALL_EVENTS = "*"


def new_message_id() -> str:
    """A fresh `webhook-id`: the same for every endpoint and every retry of one event."""
    return f"msg_{secrets.token_hex(13)}"


def event_timestamp(now: datetime) -> str:
    """An event's time as the payload's `timestamp`: ISO 8601 in UTC with a `Z`."""
    return now.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _plain(value: Any) -> Any:
    # Decimals are strings (never floats), times ISO 8601: the payload is stored as JSON.
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return event_timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def subscribes(events: Any, event_type: str) -> bool:
    """Whether an endpoint's event list takes this event type."""
    return isinstance(events, list) and (ALL_EVENTS in events or event_type in events)


_ENDPOINTS_INFO = "walletd.webhooks.endpoints"


def _known_endpoints(session: Session) -> dict[int, list[tuple[int, Any]]]:
    """Brands' active endpoints already read in the session's current transaction."""
    return transaction_memo(session, _ENDPOINTS_INFO, dict)


def note_no_endpoints(session: Session, brand_id: int) -> None:
    """Record, for this transaction, that the brand has no active endpoint (read by the caller
    in a statement it needed anyway), so its events cost no query of their own."""
    _known_endpoints(session)[brand_id] = []


def active_endpoints_exist(brand_id: Any) -> Any:
    """An SQL EXISTS for a brand's active endpoints, to put beside a query a request makes."""
    return (
        select(WebhookEndpoint.id)
        .where(WebhookEndpoint.brand_id == brand_id, WebhookEndpoint.status == "active")
        .exists()
    )


def emit_event(
    session: Session,
    brand_id: int,
    event_type: str,
    data: dict[str, Any] | Callable[[], dict[str, Any]],
    *,
    now: datetime,
) -> None:
    """Queue `event_type` for each active endpoint of the brand that subscribed to it.

    Runs in the caller's transaction, so the event exists exactly when the change does; costs one
    indexed query when the brand has no endpoint.
    """
    if event_type not in EVENTS:
        raise ValueError(f"unknown webhook event {event_type!r}")
    endpoints = _known_endpoints(session).get(brand_id)
    if endpoints is None:
        endpoints = [
            (row.id, row.events)
            for row in session.execute(
                select(WebhookEndpoint.id, WebhookEndpoint.events).where(
                    WebhookEndpoint.brand_id == brand_id, WebhookEndpoint.status == "active"
                )
            )
        ]
        _known_endpoints(session)[brand_id] = endpoints
    targets = sorted(id_ for id_, events in endpoints if subscribes(events, event_type))
    if not targets:
        return
    message_id = new_message_id()
    if callable(data):
        data = data()  # built only when someone listens
    body = json.loads(json.dumps(data, default=_plain))
    rows = []
    for endpoint_id in targets:
        session.add(
            WebhookDelivery(
                endpoint_id=endpoint_id,
                message_id=message_id,
                event_type=event_type,
                status="pending",
                attempts=0,
                created_at=now,
                next_attempt_at=now,
            )
        )
        rows.append(
            {
                "kind": WEBHOOK,
                "dedupe_key": f"{WEBHOOK}:{endpoint_id}:{message_id}",
                "payload": {
                    "endpoint_id": endpoint_id,
                    "id": message_id,
                    "type": event_type,
                    "timestamp": event_timestamp(now),
                    "data": body,
                },
            }
        )
    enqueue(session, rows, now=now)
