"""Request and response models of the webhook routes."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from walletd.web.schemas import Reply, Request, Text, Timestamp
from walletd.webhooks import EventName

# "*" subscribes to every event.
Subscription = EventName | Literal["*"]


class WebhookCreate(Request):
    """An endpoint of the brand's systems and the events it hears."""

    url: Text(2000, 1) = Field(  # type: ignore[valid-type]
        description="https:// (http:// is taken outside production); no user name or password"
    )
    events: list[Subscription] = Field(
        min_length=1, max_length=12, description='event types, or ["*"] for every one'
    )
    description: Text(500) | None = None  # type: ignore[valid-type]


class WebhookOut(Reply):
    """An endpoint; its signing secret is never shown again."""

    id: int
    url: str
    events: list[str]
    description: str | None
    status: str = Field(description="active, or disabled (it answered 410 Gone)")
    disabled_reason: str | None
    consecutive_failures: int = Field(description="failed attempts in a row; 0 after a success")
    created_at: Timestamp


class WebhookCreated(WebhookOut):
    """The new endpoint with its signing secret, shown this once."""

    secret: str = Field(
        description="whsec_ and base64 bytes: the key of the webhook-signature HMAC; keep it"
    )


class WebhookList(Reply):
    """The brand's endpoints, oldest first."""

    webhooks: list[WebhookOut]


class DeliveryQuery(Request):
    """A page of deliveries, newest first."""

    limit: Annotated[int, Field(ge=1, le=100)] = 50
    after: Text(40) | None = Field(  # type: ignore[valid-type]
        default=None, description="the `id` of the last delivery of the previous page (`next`)"
    )


class DeliveryAttemptOut(Reply):
    """One HTTP attempt of a delivery."""

    at: Timestamp
    status_code: int | None
    duration_ms: int
    error: str | None


class DeliveryOut(Reply):
    """One event sent (or being sent) to the endpoint."""

    id: str = Field(description="the webhook-id header: the same on every retry")
    event_type: str
    status: Literal["pending", "retrying", "delivered", "failed"]
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: Timestamp
    last_attempt_at: Timestamp | None
    next_attempt_at: Timestamp | None
    delivered_at: Timestamp | None
    attempt_log: list[DeliveryAttemptOut]


class DeliveryList(Reply):
    """A page of deliveries; `next` is the `after` of the following page (null: no more)."""

    deliveries: list[DeliveryOut]
    next: str | None
