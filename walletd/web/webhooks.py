"""Webhook endpoints and their deliveries under /api/v1 (admin keys)."""

from __future__ import annotations

from flask import Blueprint, Response
from sqlalchemy.orm import Session

from walletd.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from walletd.web.auth import principal
from walletd.web.deps import run_in_transaction, services
from walletd.web.endpoint import endpoint
from walletd.web.webhook_schemas import (
    DeliveryAttemptOut,
    DeliveryList,
    DeliveryOut,
    DeliveryQuery,
    WebhookCreate,
    WebhookCreated,
    WebhookList,
    WebhookOut,
)
from walletd.webhooks import endpoints

bp = Blueprint("webhooks", __name__, url_prefix="/api/v1")
ADMIN = ("admin",)


def _out(endpoint: WebhookEndpoint) -> WebhookOut:
    return WebhookOut(
        id=endpoint.id,
        url=endpoint.url,
        events=list(endpoint.events or []),
        description=endpoint.description,
        status=endpoint.status,
        disabled_reason=endpoint.disabled_reason,
        consecutive_failures=endpoint.consecutive_failures,
        created_at=endpoint.created_at,
    )


def _delivery(delivery: WebhookDelivery, attempts: list[WebhookAttempt]) -> DeliveryOut:
    return DeliveryOut(
        id=delivery.message_id,
        event_type=delivery.event_type,
        status=delivery.status,  # type: ignore[arg-type]
        attempts=delivery.attempts,
        last_status_code=delivery.last_status_code,
        last_error=delivery.last_error,
        created_at=delivery.created_at,
        last_attempt_at=delivery.last_attempt_at,
        next_attempt_at=delivery.next_attempt_at,
        delivered_at=delivery.delivered_at,
        attempt_log=[
            DeliveryAttemptOut(
                at=a.attempted_at,
                status_code=a.status_code,
                duration_ms=a.duration_ms,
                error=a.error,
            )  # fmt: skip
            for a in attempts
        ],
    )


@bp.post("/webhooks")
@endpoint(
    "Add a webhook endpoint (its signing secret is in this answer only)",
    tag="webhooks",
    roles=ADMIN,
    body=WebhookCreate,
    response=WebhookCreated,
    status=201,
    other_responses={409: "the brand already has 20 endpoints"},
)
def create_webhook(body: WebhookCreate) -> WebhookCreated:
    """Add an endpoint that hears the chosen events, signed with a new secret."""
    actor = principal().actor
    svc = services()
    now = svc.clock()

    def work(session: Session) -> WebhookCreated:
        created = endpoints.create_endpoint(
            session, actor, url=body.url, events=list(body.events),
            description=body.description, production=svc.settings.production,
            secret_keys=svc.settings.secret_keys, now=now,
        )  # fmt: skip
        return WebhookCreated(**_out(created.endpoint).model_dump(), secret=created.secret)

    return run_in_transaction(work)


@bp.get("/webhooks")
@endpoint("The brand's webhook endpoints", tag="webhooks", roles=ADMIN, response=WebhookList)
def list_webhooks() -> WebhookList:
    """Every endpoint of the brand, oldest first, without secrets."""
    brand_id = principal().brand_id
    rows = run_in_transaction(lambda s: [_out(e) for e in endpoints.list_endpoints(s, brand_id)])
    return WebhookList(webhooks=rows)


@bp.delete("/webhooks/<int:webhook_id>")
@endpoint("Delete a webhook endpoint", tag="webhooks", roles=ADMIN, status=204, media_type="")
def delete_webhook(webhook_id: int) -> Response:
    """Delete an endpoint with its delivery records; events not yet sent to it are dropped."""
    actor = principal().actor
    now = services().clock()
    run_in_transaction(lambda s: endpoints.delete_endpoint(s, actor, webhook_id, now=now))
    response = Response(status=204)
    del response.headers["Content-Type"]  # no body, so no media type to name
    return response


@bp.get("/webhooks/<int:webhook_id>/deliveries")
@endpoint("An endpoint's deliveries, newest first", tag="webhooks", roles=ADMIN,
          query=DeliveryQuery, response=DeliveryList)  # fmt: skip
def list_deliveries(webhook_id: int, query: DeliveryQuery) -> DeliveryList:
    """Each event sent to the endpoint: its state, attempts and the endpoint's last answer."""
    brand_id = principal().brand_id

    def work(session: Session) -> DeliveryList:
        page = endpoints.list_deliveries(
            session, brand_id, webhook_id, limit=query.limit, after=query.after
        )
        return DeliveryList(
            deliveries=[_delivery(d, page.attempts[d.id]) for d in page.deliveries],
            next=page.next,
        )

    return run_in_transaction(work)
