"""Queueing e-mails: an `emails` row and its outbox row, written in the caller's transaction."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import exists, insert, select
from sqlalchemy.orm import Session

from walletd.config import Settings
from walletd.email.message import EmailContent, Sender, check_address
from walletd.models import OutboxMessage
from walletd.models.email import EMAIL_KINDS, Email, EmailBounce, EmailSender

# The outbox kind of every e-mail; the row's payload is {"email_id": N}.
EMAIL = "email"


def email_enabled(settings: Settings) -> bool:
    """E-mail is on when WALLETD_SMTP_URL is set."""
    return bool(settings.smtp_url)


def is_bouncing(session: Session, address: str, *, brand_id: int | None = None) -> bool:
    """Whether the relay refused this address for good (in `brand_id`, else in any brand)."""
    try:
        folded = check_address(address)
    except ValueError:
        return False
    query = exists().where(EmailBounce.address == folded)
    if brand_id is not None:
        query = query.where(EmailBounce.brand_id == brand_id)
    return bool(session.scalar(select(query)))


def mark_bouncing(
    session: Session,
    *,
    brand_id: int,
    address: str,
    reason: str | None,
    now: datetime,
    email_id: int | None = None,
) -> None:
    """Record a permanent refusal: nothing more is queued or sent to the address in a brand."""
    folded = address.strip().lower()
    if session.scalar(
        select(EmailBounce.id).where(
            EmailBounce.brand_id == brand_id, EmailBounce.address == folded
        )
    ):
        return
    with session.begin_nested():
        session.add(
            EmailBounce(brand_id=brand_id, address=folded, reason=(reason or "")[:500] or None,
                        email_id=email_id, created_at=now)
        )  # fmt: skip


def clear_bouncing(session: Session, *, brand_id: int, address: str) -> bool:
    """Forget a bounce (the member fixed their mailbox); True when there was one."""
    row = session.scalar(
        select(EmailBounce).where(
            EmailBounce.brand_id == brand_id, EmailBounce.address == address.strip().lower()
        )
    )
    if row is None:
        return False
    session.delete(row)
    return True


def program_sender(session: Session, program_id: int | None) -> Sender:
    """The program's sender setting (empty fields: WALLETD_EMAIL_FROM)."""
    row = session.get(EmailSender, program_id) if program_id is not None else None
    if row is None:
        return Sender()
    return Sender(row.from_name, row.from_address, row.reply_to)


def queue_email(
    session: Session,
    *,
    brand_id: int,
    to: str,
    kind: str,
    content: EmailContent,
    now: datetime,
    program_id: int | None = None,
    member_id: int | None = None,
    campaign_id: int | None = None,
    automation_id: int | None = None,
    sender: Sender | None = None,
) -> int | None:
    """Write one outbox e-mail row in the caller's transaction; None when the address is bouncing.

    `kind`: card | recovery | staff_invite | password_reset | campaign | automation | test.

    Whether e-mail is on is a setting: callers check `email_enabled(settings)` first; a row
    queued while it is off is cancelled by the worker, never sent later by surprise.
    """
    if kind not in EMAIL_KINDS:
        raise ValueError(f"unknown e-mail kind {kind!r}")
    address = check_address(to)
    if is_bouncing(session, address, brand_id=brand_id):
        return None
    chosen = sender if sender is not None else program_sender(session, program_id)
    email = Email(
        brand_id=brand_id,
        program_id=program_id,
        member_id=member_id,
        campaign_id=campaign_id,
        automation_id=automation_id,
        kind=kind,
        to_address=address,
        from_name=chosen.from_name,
        from_address=chosen.from_address,
        reply_to=chosen.reply_to,
        subject=content.subject,
        text_body=content.text,
        html_body=content.html,
        headers=dict(content.headers) or None,
        inline_images=[
            [cid, base64.b64encode(data).decode(), filename]
            for cid, data, filename in content.inline_images
        ]
        or None,
        status="pending",
        attempts=0,
        created_at=now,
    )
    session.add(email)
    session.flush()
    session.add(
        OutboxMessage(
            kind=EMAIL,
            dedupe_key=f"email:{email.id}",
            payload={"email_id": email.id},
            status="pending",
            attempts=0,
            next_attempt_at=now,
            campaign_id=campaign_id,
            created_at=now,
        )
    )
    return email.id


@dataclass(frozen=True)
class Recipient:
    """One e-mail of a bulk queue: its address, its content, and the member it is for."""

    to: str
    content: EmailContent
    member_id: int | None = None


def queue_emails(
    session: Session,
    *,
    brand_id: int,
    kind: str,
    recipients: Sequence[Recipient],
    now: datetime,
    program_id: int | None = None,
    campaign_id: int | None = None,
    automation_id: int | None = None,
    sender: Sender | None = None,
) -> list[int | None]:
    """`queue_email` for many e-mails of one kind at once (a campaign chunk): three statements
    instead of three per e-mail. The answer lines up with `recipients`; None: bouncing."""
    if kind not in EMAIL_KINDS:
        raise ValueError(f"unknown e-mail kind {kind!r}")
    addresses = [check_address(r.to) for r in recipients]
    if not addresses:
        return []
    bounced = set(
        session.scalars(
            select(EmailBounce.address).where(
                EmailBounce.brand_id == brand_id, EmailBounce.address.in_(set(addresses))
            )
        ).all()
    )
    chosen = sender if sender is not None else program_sender(session, program_id)
    rows = [
        _email_values(brand_id, kind, address, r.content, chosen, now)
        | {
            "program_id": program_id,
            "member_id": r.member_id,
            "campaign_id": campaign_id,
            "automation_id": automation_id,
        }  # fmt: skip
        for address, r in zip(addresses, recipients, strict=True)
        if address not in bounced
    ]
    ids: list[int] = []
    if rows:
        ids = list(
            session.scalars(
                insert(Email).returning(Email.id, sort_by_parameter_order=True), rows
            ).all()
        )
        session.execute(
            insert(OutboxMessage),
            [
                {
                    "kind": EMAIL,
                    "dedupe_key": f"email:{email_id}",
                    "payload": {"email_id": email_id},
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "campaign_id": campaign_id,
                    "created_at": now,
                }  # fmt: skip
                for email_id in ids
            ],
        )
    found = iter(ids)
    return [None if address in bounced else next(found) for address in addresses]


def _email_values(
    brand_id: int, kind: str, address: str, content: EmailContent, sender: Sender, now: datetime
) -> dict[str, Any]:
    """The columns of a new `emails` row."""
    return {
        "brand_id": brand_id,
        "kind": kind,
        "to_address": address,
        "from_name": sender.from_name,
        "from_address": sender.from_address,
        "reply_to": sender.reply_to,
        "subject": content.subject,
        "text_body": content.text,
        "html_body": content.html,
        "headers": dict(content.headers) or None,
        "inline_images": [
            [cid, base64.b64encode(data).decode(), filename]
            for cid, data, filename in content.inline_images
        ]
        or None,
        "status": "pending",
        "attempts": 0,
        "created_at": now,
    }


def content_of(email: Email) -> EmailContent:
    """The content stored on a queued e-mail."""
    return EmailContent(
        subject=email.subject,
        text=email.text_body or "",
        html=email.html_body or "",
        headers=dict(email.headers or {}),
        inline_images=tuple(
            (cid, base64.b64decode(data), filename)
            for cid, data, filename in (email.inline_images or [])
        ),
    )
