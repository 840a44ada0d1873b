"""Managing a brand's webhook endpoints and reading what was delivered to them."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from walletd import audit
from walletd.audit import Actor
from walletd.errors import ConflictError, NotFoundError, ValidationError
from walletd.models import Brand, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from walletd.webhooks import ALL_EVENTS, EVENTS
from walletd.webhooks.signing import new_secret, seal_secret

MAX_URL_LENGTH = 2000
MAX_DESCRIPTION_LENGTH = 500
MAX_ENDPOINTS_PER_BRAND = 20
MAX_PAGE = 100
# Ids are 32-bit serials: a larger number names nothing.
MAX_ID = 2**31 - 1


@dataclass(frozen=True)
class CreatedEndpoint:
    """A new endpoint and its signing secret, which is shown this once."""

    endpoint: WebhookEndpoint
    secret: str


@dataclass(frozen=True)
class DeliveryPage:
    """One page of an endpoint's deliveries, newest first, with each one's attempts."""

    deliveries: list[WebhookDelivery]
    attempts: dict[int, list[WebhookAttempt]]
    next: str | None


def _is_internal_host(host: str) -> bool:
    """A host that names this machine or a private network (refused in production)."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return not address.is_global


def check_url(url: object, *, production: bool) -> str:
    """A webhook URL walletd may post to: http(s) without credentials; https only in production.

    In production an IP address of a private, loopback or link-local network (or `localhost`) is
    refused too, so a brand's admin cannot point walletd at its own host or network.
    """
    if not isinstance(url, str) or not url.strip():
        raise ValidationError("url is required", field="url")
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        raise ValidationError(f"url must be at most {MAX_URL_LENGTH} characters", field="url")
    if not url.isascii() or any(ch.isspace() or not ch.isprintable() for ch in url):
        raise ValidationError(
            "url must be ASCII without spaces (write a non-ASCII host in its xn-- form)",
            field="url",
        )
    try:
        parts = urlsplit(url)
        port = parts.port
        httpx.URL(url)
    except ValueError as exc:
        raise ValidationError(f"url is not a valid URL: {exc}", field="url") from None
    except httpx.InvalidURL as exc:
        raise ValidationError(f"url is not a valid URL: {exc}", field="url") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ValidationError("url must start with https:// (or http:// outside production)",
                              field="url")  # fmt: skip
    if production and scheme != "https":
        raise ValidationError("url must be https:// in production", field="url")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ValidationError("url must not carry a user name or password", field="url")
    host = (parts.hostname or "").lower()
    if not host:
        raise ValidationError("url must name a host", field="url")
    if port == 0:
        raise ValidationError("url's port must be between 1 and 65535", field="url")
    if production and _is_internal_host(host):
        raise ValidationError(
            "url must name a public host in production, not a private or local address",
            field="url",
        )
    return url


def check_events(events: object) -> list[str]:
    """The event types subscribed to: names from EVENTS without repeats, or ["*"] for all."""
    if not isinstance(events, list) or not events:
        raise ValidationError("events must be a non-empty list of event types", field="events")
    if len(events) > len(EVENTS) + 1:
        raise ValidationError(f"events lists at most {len(EVENTS)} types", field="events")
    chosen: list[str] = []
    for name in events:
        if not isinstance(name, str) or (name not in EVENTS and name != ALL_EVENTS):
            raise ValidationError(
                f"unknown event type; choose among {', '.join(EVENTS)} or *", field="events"
            )
        if name not in chosen:
            chosen.append(name)
    if ALL_EVENTS in chosen and len(chosen) > 1:
        raise ValidationError('"*" already takes every event: give it alone', field="events")
    return chosen


def check_description(description: object) -> str | None:
    """An optional one-line note of at most 500 printable characters."""
    if description is None:
        return None
    if not isinstance(description, str):
        raise ValidationError("description must be text", field="description")
    text = description.strip()
    if len(text) > MAX_DESCRIPTION_LENGTH or not text.isprintable():
        raise ValidationError(
            f"description must be at most {MAX_DESCRIPTION_LENGTH} printable characters",
            field="description",
        )
    return text or None


def create_endpoint(
    session: Session,
    actor: Actor,
    *,
    url: object,
    events: object,
    description: object = None,
    production: bool,
    secret_keys: Sequence[str],
    now: datetime,
) -> CreatedEndpoint:
    """Add an endpoint for the brand, with a fresh signing secret returned this once."""
    checked_url = check_url(url, production=production)
    checked_events = check_events(events)
    checked_description = check_description(description)
    # The brand's row lock makes two concurrent creations count each other against the cap.
    session.execute(select(Brand.id).where(Brand.id == actor.brand_id).with_for_update())
    held = session.scalar(
        select(func.count(WebhookEndpoint.id)).where(WebhookEndpoint.brand_id == actor.brand_id)
    )
    if int(held or 0) >= MAX_ENDPOINTS_PER_BRAND:
        raise ConflictError(
            f"a brand has at most {MAX_ENDPOINTS_PER_BRAND} webhook endpoints; delete one first"
        )
    secret = new_secret()
    endpoint = WebhookEndpoint(
        brand_id=actor.brand_id,
        url=checked_url,
        events=checked_events,
        description=checked_description,
        secret_encrypted=seal_secret(secret, secret_keys),
        status="active",
        consecutive_failures=0,
        created_at=now,
        updated_at=now,
    )
    session.add(endpoint)
    session.flush()
    audit.record(
        session, actor, "webhook.created", "webhook", endpoint.id, now=now,
        changes={"url": checked_url, "events": checked_events},
    )  # fmt: skip
    return CreatedEndpoint(endpoint, secret)


def list_endpoints(session: Session, brand_id: int) -> list[WebhookEndpoint]:
    """The brand's endpoints, oldest first."""
    return list(
        session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.brand_id == brand_id)
            .order_by(WebhookEndpoint.id)
        )
    )


def get_endpoint(session: Session, brand_id: int, endpoint_id: int) -> WebhookEndpoint:
    """One of the brand's endpoints; another brand's is not found."""
    endpoint = (
        session.scalar(
            select(WebhookEndpoint).where(
                WebhookEndpoint.id == endpoint_id, WebhookEndpoint.brand_id == brand_id
            )
        )
        if 0 < endpoint_id <= MAX_ID
        else None
    )
    if endpoint is None:
        raise NotFoundError("webhook endpoint not found")
    return endpoint


def delete_endpoint(session: Session, actor: Actor, endpoint_id: int, *, now: datetime) -> None:
    """Remove an endpoint with its delivery records; its queued events are dropped unsent."""
    endpoint = get_endpoint(session, actor.brand_id, endpoint_id)
    audit.record(
        session, actor, "webhook.deleted", "webhook", endpoint.id, now=now,
        changes={"url": endpoint.url, "events": endpoint.events},
    )  # fmt: skip
    session.delete(endpoint)
    session.flush()


def list_deliveries(
    session: Session, brand_id: int, endpoint_id: int, *, limit: int = 50, after: str | None = None
) -> DeliveryPage:
    """An endpoint's deliveries, newest first; `after` is the last `id` (webhook-id) seen."""
    endpoint = get_endpoint(session, brand_id, endpoint_id)
    limit = max(1, min(limit, MAX_PAGE))
    query = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)
    if after is not None:
        cursor = session.scalar(
            select(WebhookDelivery.id).where(
                WebhookDelivery.endpoint_id == endpoint.id, WebhookDelivery.message_id == after
            )
        )
        if cursor is None:
            raise ValidationError("after is not a delivery of this endpoint", field="after")
        query = query.where(WebhookDelivery.id < cursor)
    rows = list(session.scalars(query.order_by(WebhookDelivery.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    attempts: dict[int, list[WebhookAttempt]] = {row.id: [] for row in rows}
    if rows:
        for attempt in session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_(list(attempts)))
            .order_by(WebhookAttempt.id)
        ):
            attempts[attempt.delivery_id].append(attempt)
    return DeliveryPage(rows, attempts, rows[-1].message_id if more and rows else None)
