"""Delivering outbox rows: claim due rows, hand them to their channel, record what happened."""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from walletd.db import Database
from walletd.models import OutboxMessage
from walletd.observability.metrics import PUSHES

log = logging.getLogger(__name__)

DeliveryOutcome = Literal["sent", "gone", "retry", "failed"]
MAX_ATTEMPTS = 12
BACKOFF_BASE = 5.0
BACKOFF_CAP = 3600.0


@dataclass(frozen=True)
class ClaimedRow:
    """An outbox row this worker holds a lease on."""

    id: int
    kind: str
    dedupe_key: str
    payload: dict[str, Any]
    attempts: int
    campaign_id: int | None


@dataclass(frozen=True)
class Delivery:
    """What a channel did with one row; `after` runs in the transaction that records it."""

    row_id: int
    outcome: DeliveryOutcome
    error: str | None = None
    retry_after: float | None = None
    after: Callable[[Session], None] | None = field(default=None, compare=False)


class Channel(Protocol):
    """Sends rows of some kinds to the outside world; no database transaction is open."""

    kinds: tuple[str, ...]

    def deliver(self, rows: Sequence[ClaimedRow], db: Database) -> list[Delivery]:
        """Deliver rows and say what happened to each."""


class ChannelPausedError(Exception):
    """The channel cannot deliver at all for a while (bad certificate, quota): retry later."""

    def __init__(self, message: str, *, seconds: float) -> None:
        super().__init__(message)
        self.seconds = seconds


def backoff_seconds(attempts: int, rng: random.Random | None = None) -> float:
    """Capped exponential back-off with jitter (between half and all of the step)."""
    step = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(attempts - 1, 0))
    return float(step * (0.5 + 0.5 * (rng or random).random()))


def claim_due(
    session: Session, *, now: datetime, kinds: Sequence[str], limit: int, lease: timedelta
) -> list[ClaimedRow]:
    """Take a lease on due rows; SKIP LOCKED lets any number of workers share the queue."""
    due = (
        select(OutboxMessage.id)
        .where(
            OutboxMessage.kind.in_(kinds),
            or_(
                (OutboxMessage.status == "pending") & (OutboxMessage.next_attempt_at <= now),
                # A worker that died mid-send left its lease to run out: take the rows over.
                (OutboxMessage.status == "sending") & (OutboxMessage.locked_until < now),
            ),
        )
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list(session.scalars(due).all())
    if not ids:
        return []
    rows = session.scalars(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(ids))
        .values(status="sending", locked_until=now + lease, attempts=OutboxMessage.attempts + 1)
        .returning(OutboxMessage)
        .execution_options(synchronize_session=False)
    ).all()
    return [
        ClaimedRow(r.id, r.kind, r.dedupe_key, dict(r.payload or {}), r.attempts, r.campaign_id)
        for r in sorted(rows, key=lambda r: r.id)
    ]


def record(
    session: Session, claimed: Sequence[ClaimedRow], results: Sequence[Delivery], now: datetime
) -> None:
    """Store each row's outcome; retries go back to pending with back-off."""
    by_id = {row.id: row for row in claimed}
    finished: dict[str, list[int]] = defaultdict(list)
    for result in results:
        row = by_id[result.row_id]
        if result.after is not None:
            result.after(session)
        outcome = result.outcome
        if outcome == "retry" and row.attempts >= MAX_ATTEMPTS:
            outcome = "failed"
        PUSHES.labels(channel=row.kind, outcome=outcome).inc()
        if outcome != "retry":
            finished[outcome].append(row.id)
            if result.error:
                session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id == row.id)
                    .values(last_error=result.error[:2000])
                )
            continue
        delay = max(backoff_seconds(row.attempts), result.retry_after or 0.0)
        _requeue(session, row, now + timedelta(seconds=delay), result.error)
    for status, ids in finished.items():
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(ids))
            .values(status=status, finished_at=now, locked_until=None)
        )


def _requeue(session: Session, row: ClaimedRow, when: datetime, error: str | None) -> None:
    """Put a row back to pending; if a newer pending row already carries the same key, retire it."""
    try:
        with session.begin_nested():
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == row.id)
                .values(status="pending", next_attempt_at=when, locked_until=None,
                        last_error=(error or "")[:2000] or None)
            )  # fmt: skip
    except IntegrityError:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == row.id)
            .values(status="cancelled", finished_at=when, last_error="superseded by a newer row")
        )


class Dispatcher:
    """Claims due rows in batches and delivers them through their channels."""

    def __init__(
        self,
        db: Database,
        channels: Sequence[Channel],
        *,
        clock: Callable[[], datetime],
        batch_size: int = 500,
        lease: timedelta = timedelta(seconds=120),
    ) -> None:
        self.db = db
        self.channels = list(channels)
        self.clock = clock
        self.batch_size = batch_size
        self.lease = lease
        self.paused_until: dict[int, datetime] = {}

    def run_once(self) -> int:
        """Deliver one batch per channel; returns how many rows were handled."""
        handled = 0
        for index, channel in enumerate(self.channels):
            now = self.clock()
            if self.paused_until.get(index, now) > now:
                continue
            with self.db.transaction() as session:
                rows = claim_due(
                    session, now=now, kinds=channel.kinds, limit=self.batch_size, lease=self.lease
                )
            if not rows:
                continue
            try:
                results = channel.deliver(rows, self.db)
            except ChannelPausedError as exc:
                log.error("%s delivery paused for %.0f s: %s", channel.kinds, exc.seconds, exc)
                self.paused_until[index] = now + timedelta(seconds=exc.seconds)
                results = [Delivery(r.id, "retry", str(exc), retry_after=exc.seconds) for r in rows]
                # A pause is not the row's fault: give the attempt back, here and in the count
                # `record` checks against MAX_ATTEMPTS.
                rows = [replace(r, attempts=r.attempts - 1) for r in rows]
                with self.db.transaction() as session:
                    session.execute(
                        update(OutboxMessage)
                        .where(OutboxMessage.id.in_([r.id for r in rows]))
                        .values(attempts=OutboxMessage.attempts - 1)
                    )
            with self.db.transaction() as session:
                record(session, rows, results, self.clock())
            handled += len(rows)
        return handled

    def drain(self, *, max_rounds: int = 1000) -> int:
        """Deliver until nothing is due (tests and the CLI)."""
        total = 0
        for _ in range(max_rounds):
            handled = self.run_once()
            total += handled
            if handled == 0:
                break
        return total
