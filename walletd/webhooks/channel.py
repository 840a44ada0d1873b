"""The webhook channel: posts outbox rows of kind `webhook`, signed, and records every attempt."""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import httpx
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from walletd.db import Database
from walletd.models import OutboxMessage, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from walletd.push.dispatcher import ClaimedRow, Delivery
from walletd.services import Services
from walletd.webhooks import WEBHOOK
from walletd.webhooks.signing import SecretUnreadableError, open_secret, sign

log = logging.getLogger(__name__)

# Seconds to wait after the 1st, 2nd… failed attempt: the Standard Webhooks reference schedule
# (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h). The 8th failure is final, about 27 hours in.
RETRY_SCHEDULE = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
MAX_ATTEMPTS = len(RETRY_SCHEDULE) + 1
TIMEOUT_SECONDS = 10.0
# Only the start of an answer is read (kept in the error for the brand to see); never all of it.
MAX_RESPONSE_BYTES = 4096
MAX_ERROR_CHARS = 500
# A batch stops starting requests after this long, well inside the dispatcher's 120 s lease and
# short enough that APNs and Google rows (the same dispatcher loop) are not held up for long; the
# rows left are put back without costing them an attempt.
BATCH_SECONDS = 20.0
# Endpoints served at once; each endpoint's events go one after another, in order.
PARALLEL_ENDPOINTS = 8
USER_AGENT = "walletd-webhooks/1"


@dataclass(frozen=True)
class Target:
    """An endpoint as the channel needs it, read before any request is made."""

    url: str
    secret: str | None
    problem: str | None  # why nothing can be sent to it (deleted, disabled, unreadable secret)


@dataclass(frozen=True)
class Attempt:
    """What one POST got: a status code, or an error without one (timeout, refused…)."""

    at: datetime
    status_code: int | None
    duration_ms: int
    error: str | None

    @property
    def ok(self) -> bool:
        """A 2xx answer."""
        return self.status_code is not None and 200 <= self.status_code < 300


def request_body(payload: dict[str, Any]) -> bytes:
    """The JSON body posted for an event: its type, timestamp and data."""
    event = {"type": payload["type"], "timestamp": payload["timestamp"], "data": payload["data"]}
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()


def _record(
    row: ClaimedRow,
    attempt: Attempt | None,
    status: str,
    retry_after: float | None,
    session: Session,
    *,
    gone: bool = False,
) -> None:
    """Store an attempt on its delivery (and the endpoint's health) in the dispatcher's record."""
    endpoint_id = int(row.payload.get("endpoint_id", 0))
    if attempt is not None:
        # The endpoint first, then its delivery: the order a DELETE of the endpoint locks them.
        values: dict[str, Any] = (
            {"consecutive_failures": 0}
            if attempt.ok
            else {"consecutive_failures": WebhookEndpoint.consecutive_failures + 1}
        )
        if gone:
            values.update(status="disabled", updated_at=attempt.at,
                          disabled_reason="the endpoint answered 410 Gone")  # fmt: skip
        session.execute(
            update(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id).values(**values)
        )
    delivery = session.scalar(
        select(WebhookDelivery).where(
            WebhookDelivery.endpoint_id == endpoint_id,
            WebhookDelivery.message_id == str(row.payload.get("id", "")),
        )
    )
    if delivery is None:
        return  # the endpoint was deleted meanwhile, with its deliveries
    delivery.status = status
    if attempt is None:
        delivery.last_error = "not sent: the endpoint is deleted or disabled"
        delivery.next_attempt_at = None
        return
    delivery.attempts += 1
    delivery.last_attempt_at = attempt.at
    delivery.last_status_code = attempt.status_code
    delivery.last_error = attempt.error
    delivery.next_attempt_at = (
        attempt.at + timedelta(seconds=retry_after) if retry_after is not None else None
    )
    if attempt.ok:
        delivery.delivered_at = attempt.at
    session.add(
        WebhookAttempt(
            delivery_id=delivery.id,
            attempted_at=attempt.at,
            status_code=attempt.status_code,
            duration_ms=attempt.duration_ms,
            error=attempt.error,
        )
    )


def _give_attempt_back(row_id: int, session: Session) -> None:
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == row_id)
        .values(attempts=OutboxMessage.attempts - 1)
    )


def outcome_of(row: ClaimedRow, attempt: Attempt, *, wait_at_least: float = 0.0) -> Delivery:
    """Map an attempt to the dispatcher's outcome: sent, gone (410), retry, or failed at last."""
    if attempt.ok:
        return Delivery(row.id, "sent", after=partial(_record, row, attempt, "delivered", None))
    if attempt.status_code == 410:
        return Delivery(
            row.id, "gone", attempt.error,
            after=partial(_record, row, attempt, "failed", None, gone=True),
        )  # fmt: skip
    if row.attempts >= MAX_ATTEMPTS:
        return Delivery(row.id, "failed", attempt.error,
                        after=partial(_record, row, attempt, "failed", None))  # fmt: skip
    wait = max(RETRY_SCHEDULE[max(row.attempts, 1) - 1], wait_at_least)
    return Delivery(
        row.id, "retry", attempt.error, retry_after=wait,
        after=partial(_record, row, attempt, "retrying", wait),
    )  # fmt: skip


class WebhookChannel:
    """Delivers `webhook` outbox rows over HTTP; no database transaction is open meanwhile."""

    kinds: tuple[str, ...] = (WEBHOOK,)

    def __init__(
        self,
        *,
        secret_keys: Sequence[str],
        clock: Callable[[], datetime],
        production: bool,
        timeout: float = TIMEOUT_SECONDS,
        batch_seconds: float = BATCH_SECONDS,
        client: httpx.Client | None = None,
    ) -> None:
        self.secret_keys = tuple(secret_keys)
        self.clock = clock
        self.production = production
        self.batch_seconds = batch_seconds
        self.timeout = timeout
        # Redirects are never followed: a 3xx is a failed attempt, so a signed event cannot be
        # bounced to a host the brand did not register.
        self.client = client or httpx.Client(
            timeout=httpx.Timeout(timeout), follow_redirects=False, trust_env=False
        )

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self.client.close()

    def _targets(self, rows: Sequence[ClaimedRow], db: Database) -> dict[int, Target]:
        ids = sorted({int(row.payload.get("endpoint_id", 0)) for row in rows})
        with db.transaction() as session:
            found = session.execute(
                select(
                    WebhookEndpoint.id, WebhookEndpoint.url, WebhookEndpoint.status,
                    WebhookEndpoint.secret_encrypted,
                ).where(WebhookEndpoint.id.in_(ids))
            ).all()  # fmt: skip
        targets: dict[int, Target] = {}
        for endpoint_id, url, status, sealed in found:
            if status != "active":
                targets[endpoint_id] = Target(url, None, "the endpoint is disabled")
            elif self.production and not url.lower().startswith("https://"):
                targets[endpoint_id] = Target(url, None, "http URLs are refused in production")
            else:
                try:
                    targets[endpoint_id] = Target(url, open_secret(sealed, self.secret_keys), None)
                except SecretUnreadableError as exc:
                    log.error("webhook endpoint %d: %s", endpoint_id, exc)
                    targets[endpoint_id] = Target(url, None, str(exc))
        return targets

    def post(self, target: Target, payload: dict[str, Any]) -> Attempt:
        """POST one event, signed; read at most MAX_RESPONSE_BYTES of the answer."""
        assert target.secret is not None
        at = self.clock()
        timestamp = int(at.timestamp())
        body = request_body(payload)
        message_id = str(payload["id"])
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(target.secret, message_id, timestamp, body),
        }
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        try:
            with self.client.stream("POST", target.url, content=body, headers=headers) as answer:
                status = answer.status_code
                head = b""
                for chunk in answer.iter_bytes():
                    head += chunk
                    # A receiver dripping its answer must not hold the slot past the timeout.
                    if len(head) >= MAX_RESPONSE_BYTES or time.monotonic() - started > self.timeout:
                        break
                if not 200 <= status < 300:
                    text = head[:MAX_RESPONSE_BYTES].decode("utf-8", "replace").strip()
                    where = answer.headers.get("location") if 300 <= status < 400 else None
                    error = f"HTTP {status}" + (f" to {where} (not followed)" if where else "")
                    error += f": {text}" if text else ""
        except httpx.TimeoutException:
            error = "timed out"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        duration = int((time.monotonic() - started) * 1000)
        return Attempt(at.astimezone(UTC), status, duration,
                       None if error is None else error[:MAX_ERROR_CHARS])  # fmt: skip

    def _deliver_endpoint(
        self, target: Target | None, rows: list[ClaimedRow], deadline: float
    ) -> list[Delivery]:
        """One endpoint's rows in order; after a failure without an answer the rest wait too."""
        results: list[Delivery] = []
        unreachable: tuple[Attempt, float | None] | None = None
        for row in rows:
            if target is None or target.problem is not None:
                reason = "the endpoint was deleted" if target is None else target.problem
                gave_up = partial(_record, row, None, "failed", None)
                results.append(Delivery(row.id, "failed", reason, after=gave_up))
                continue
            if unreachable is not None:
                # Spare a dead host one timeout per event: the rest wait at least as long as the
                # first, so they stay behind it.
                first, first_wait = unreachable
                skipped = Attempt(first.at, None, 0, f"not sent: {first.error}"[:MAX_ERROR_CHARS])
                results.append(outcome_of(row, skipped, wait_at_least=first_wait or 0.0))
                continue
            if time.monotonic() > deadline:
                later = partial(_give_attempt_back, row.id)
                results.append(Delivery(row.id, "retry", None, retry_after=0.0, after=later))
                continue
            attempt = self.post(target, row.payload)
            result = outcome_of(row, attempt)
            results.append(result)
            if attempt.status_code is None:
                unreachable = (attempt, result.retry_after)
            elif result.outcome == "gone":
                target = Target(target.url, None, "the endpoint answered 410 Gone")
        return results

    def deliver(self, rows: Sequence[ClaimedRow], db: Database) -> list[Delivery]:
        """Post each row to its endpoint; endpoints in parallel, each one's events in order."""
        targets = self._targets(rows, db)
        groups: dict[int, list[ClaimedRow]] = defaultdict(list)
        for row in rows:
            groups[int(row.payload.get("endpoint_id", 0))].append(row)
        deadline = time.monotonic() + self.batch_seconds

        def run(endpoint_id: int) -> list[Delivery]:
            return self._deliver_endpoint(targets.get(endpoint_id), groups[endpoint_id], deadline)

        if len(groups) == 1:
            done = [run(next(iter(groups)))]
        else:
            with ThreadPoolExecutor(max_workers=min(PARALLEL_ENDPOINTS, len(groups))) as pool:
                done = list(pool.map(run, list(groups)))
        by_row = {result.row_id: result for results in done for result in results}
        return [by_row[row.id] for row in rows]


def webhook_channel(svc: Services) -> WebhookChannel:
    """The channel for this configuration: its secret keys, clock and production rule."""
    settings = svc.settings
    return WebhookChannel(
        secret_keys=settings.secret_keys, clock=svc.clock, production=settings.production
    )
