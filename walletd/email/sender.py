"""The e-mail channel: sends `email` outbox rows through the relay, one connection per batch."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from email.utils import make_msgid
from functools import partial

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from walletd.config import Settings
from walletd.db import Database, utcnow
from walletd.email.message import build_message, parse_from
from walletd.email.outbox import EMAIL, content_of, email_enabled, mark_bouncing
from walletd.email.relay import Answer, RelayConfig, RelayConnection, RelayError, parse_relay_url
from walletd.models import OutboxMessage
from walletd.models.email import Email, EmailBounce
from walletd.push.dispatcher import MAX_ATTEMPTS, ClaimedRow, Delivery
from walletd.scheduling.rate import SharedRateLimiter

log = logging.getLogger(__name__)

# A batch stops starting messages after this long (well inside the dispatcher's 120 s lease, and
# short enough not to hold up APNs and Google rows); the rest go back without costing an attempt.
BATCH_SECONDS = 20.0
OFF = "e-mail is off (WALLETD_SMTP_URL is not set)"


@dataclass(frozen=True)
class Prepared:
    """A queued e-mail as the channel needs it, read before the relay is contacted."""

    email_id: int
    brand_id: int
    to: str
    from_name: str | None
    from_address: str
    reply_to: str | None
    message_id: str
    email: Email
    bouncing: bool


def _record(
    email_id: int, status: str, answer: Answer | None, now: datetime, message_id: str | None,
    session: Session,
) -> None:  # fmt: skip
    """Store one attempt on the e-mail's history row (in the dispatcher's recording transaction)."""
    email = session.get(Email, email_id)
    if email is None:
        return  # erased meanwhile
    email.attempts += 1 if answer is not None else 0
    email.status = status
    if answer is not None:
        code = f"{answer.code} " if answer.code is not None else ""
        email.last_error = None if answer.ok else f"{code}{answer.text}"[:500]
    if message_id and email.message_id is None:
        email.message_id = message_id
    if status == "sent":
        email.sent_at = now
    elif status in ("failed", "cancelled"):
        email.failed_at = now
    if status != "pending":
        # Sent or given up: the bodies may hold one-time links and are not needed any more.
        email.text_body = email.html_body = None
        email.headers = email.inline_images = None
    if answer is not None and answer.bounces and status == "failed":
        reason = f"{answer.code} {answer.text}"
        mark_bouncing(session, brand_id=email.brand_id, address=email.to_address,
                      reason=reason, now=now, email_id=email.id)  # fmt: skip


def _preload(ids: list[int], then: Callable[[Session], None] | None, session: Session) -> None:
    """Load a batch's e-mails in one query, so each row's `_record` finds its own in the session."""
    # Held by the session (its identity map keeps only weak references) until it closes.
    session.info["walletd.email.batch"] = session.scalars(
        select(Email).where(Email.id.in_(ids))
    ).all()
    if then is not None:
        then(session)


def _give_attempt_back(row_id: int, session: Session) -> None:
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == row_id)
        .values(attempts=OutboxMessage.attempts - 1)
    )


class EmailChannel:
    """Delivers `email` outbox rows; no database transaction is open while the relay talks."""

    kinds: tuple[str, ...] = (EMAIL,)

    def __init__(
        self,
        *,
        relay: RelayConfig | None,
        default_from: str,
        ca_file: str | None = None,
        clock: Callable[[], datetime] = utcnow,
        pace: Callable[[], object] | None = None,
        batch_seconds: float = BATCH_SECONDS,
        timeout: float = 30.0,
    ) -> None:
        self.relay = relay
        self.default_from = parse_from(default_from) if default_from else (None, "")
        self.ca_file = ca_file
        self.clock = clock
        self.pace = pace
        self.batch_seconds = batch_seconds
        self.timeout = timeout

    def _prepare(self, rows: Sequence[ClaimedRow], db: Database) -> dict[int, Prepared]:
        ids = [int(row.payload.get("email_id", 0)) for row in rows]
        with db.transaction() as session:
            emails = session.scalars(select(Email).where(Email.id.in_(ids))).all()
            bouncing = {
                (brand, address)
                for brand, address in session.execute(
                    select(EmailBounce.brand_id, EmailBounce.address).where(
                        EmailBounce.address.in_({e.to_address for e in emails})
                    )
                ).all()
            }
        default_name, default_address = self.default_from
        prepared: dict[int, Prepared] = {}
        for email in emails:
            address = email.from_address or default_address
            prepared[email.id] = Prepared(
                email_id=email.id,
                brand_id=email.brand_id,
                to=email.to_address,
                from_name=email.from_name if email.from_address else default_name,
                from_address=address,
                reply_to=email.reply_to,
                message_id=email.message_id
                or make_msgid(idstring=f"walletd.{email.id}", domain=address.rpartition("@")[2]),
                email=email,
                bouncing=(email.brand_id, email.to_address) in bouncing,
            )
        return prepared

    def _outcome(self, row: ClaimedRow, item: Prepared, answer: Answer, now: datetime) -> Delivery:
        error = f"{answer.code or ''} {answer.text}".strip()
        if answer.ok:
            done = partial(_record, item.email_id, "sent", answer, now, item.message_id)
            return Delivery(row.id, "sent", after=done)
        # Only a 5xx about this recipient or this message is final; a 5xx to the session (AUTH
        # refused, a sender the relay will not take) is the configuration's, retried until fixed.
        final = answer.permanent and answer.stage in ("rcpt", "data")
        if final or row.attempts >= MAX_ATTEMPTS:
            failed = partial(_record, item.email_id, "failed", answer, now, item.message_id)
            return Delivery(row.id, "failed", error, after=failed)
        later = partial(_record, item.email_id, "pending", answer, now, item.message_id)
        return Delivery(row.id, "retry", error, after=later)

    def deliver(self, rows: Sequence[ClaimedRow], db: Database) -> list[Delivery]:
        """Send each row's e-mail over one relay connection, paced; say what happened to each."""
        if self.relay is None or not self.default_from[1]:
            now = self.clock()
            return [
                Delivery(row.id, "failed", OFF,
                         after=partial(_record, int(row.payload.get("email_id", 0)),
                                       "cancelled", None, now, None))
                for row in rows
            ]  # fmt: skip
        prepared = self._prepare(rows, db)
        results: list[Delivery] = []
        deadline = time.monotonic() + self.batch_seconds
        connection = RelayConnection(self.relay, ca_file=self.ca_file, timeout=self.timeout)
        unusable: Answer | None = None
        sent = failed = retried = 0
        try:
            for row in rows:
                item = prepared.get(int(row.payload.get("email_id", 0)))
                now = self.clock()
                if item is None:
                    results.append(Delivery(row.id, "failed", "the e-mail was deleted"))
                    continue
                if item.bouncing:
                    gone = partial(_record, item.email_id, "cancelled", None, now, None)
                    results.append(Delivery(row.id, "failed", "address is bouncing", after=gone))
                    continue
                if unusable is None and time.monotonic() > deadline:
                    later = partial(_give_attempt_back, row.id)
                    results.append(Delivery(row.id, "retry", None, retry_after=0.0, after=later))
                    continue
                if unusable is None:
                    if self.pace is not None:
                        self.pace()
                    try:
                        message = build_message(
                            to=item.to, from_name=item.from_name, from_address=item.from_address,
                            reply_to=item.reply_to, content=content_of(item.email), now=now,
                            message_id=item.message_id,
                        )  # fmt: skip
                    except ValueError as exc:
                        bad = partial(_record, item.email_id, "failed",
                                      Answer(None, str(exc), "data"), now, None)  # fmt: skip
                        results.append(Delivery(row.id, "failed", str(exc), after=bad))
                        continue
                    try:
                        answer = connection.send(message, sender=item.from_address,
                                                 recipient=item.to)  # fmt: skip
                    except RelayError as exc:
                        unusable = exc.answer
                        answer = exc.answer
                else:
                    answer = unusable  # the relay could not be reached: the rest wait too
                result = self._outcome(row, item, answer, now)
                sent += result.outcome == "sent"
                failed += result.outcome == "failed"
                retried += result.outcome == "retry"
                results.append(result)
        finally:
            connection.close()
        if results:
            ids = [item.email_id for item in prepared.values()]
            results[0] = replace(results[0], after=partial(_preload, ids, results[0].after))
        log.info("e-mail batch: %d sent, %d failed, %d to retry (of %d)",
                 sent, failed, retried, len(rows))  # fmt: skip
        return results

    def close(self) -> None:
        """Nothing held between batches."""


class RelayPace:
    """The relay's shared pace: one slot of the shared limiter admits `burst` messages.

    A slot per message would cost a database reservation per message at high rates (slots are
    reserved a few at a time and dropped once passed); a burst of a tenth of a second's messages
    keeps the average at the rate with one reservation per burst.
    """

    def __init__(
        self, db: Database, key: str, rate_per_second: float, *,
        clock: Callable[[], datetime] = utcnow, sleep: Callable[[float], None] = time.sleep,
    ) -> None:  # fmt: skip
        self.burst = max(1, int(rate_per_second // 10))
        self.limiter = SharedRateLimiter(
            db, key, rate_per_second / self.burst, clock=clock, sleep=sleep
        )
        self.count = 0

    def __call__(self) -> None:
        if self.count % self.burst == 0:
            self.limiter.acquire()
        self.count += 1


def email_channel(
    settings: Settings, db: Database, clock: Callable[[], datetime] = utcnow
) -> EmailChannel:
    """The channel for this configuration: its relay, sender and pace (shared by all workers)."""
    if not email_enabled(settings):
        return EmailChannel(relay=None, default_from="", clock=clock)
    relay = parse_relay_url(settings.smtp_url)
    pace = RelayPace(db, relay.key, settings.smtp_rate)
    return EmailChannel(
        relay=relay,
        default_from=settings.email_from,
        ca_file=settings.smtp_ca_file or None,
        clock=clock,
        pace=pace,
    )
