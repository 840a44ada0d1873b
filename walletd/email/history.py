"""What was e-mailed to a member: the history rows the member page and the API show."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from walletd.email.outbox import is_bouncing
from walletd.models import Member
from walletd.models.email import Email, EmailBounce

HISTORY_LIMIT = 100


@dataclass(frozen=True)
class EmailHistory:
    """A member's newest e-mails and whether their address is bouncing."""

    emails: list[Email]
    bouncing: bool


def member_emails(session: Session, member: Member, *, limit: int = HISTORY_LIMIT) -> EmailHistory:
    """The member's e-mails, newest first (brand-scoped by the member the caller looked up)."""
    emails = session.scalars(
        select(Email)
        .where(Email.member_id == member.id, Email.brand_id == member.brand_id)
        .order_by(Email.id.desc())
        .limit(limit)
    ).all()
    bouncing = bool(member.email) and is_bouncing(
        session, member.email or "", brand_id=member.brand_id
    )
    return EmailHistory(list(emails), bouncing)


def forget_member_emails(session: Session, member: Member) -> int:
    """Erasure: delete the member's e-mails (addresses, subjects, unsent content) and the bounce
    of their address in the brand; a queued one is then never sent. Returns the e-mails deleted."""
    deleted = session.execute(
        delete(Email)
        .where(Email.member_id == member.id, Email.brand_id == member.brand_id)
        .execution_options(synchronize_session=False)
    )
    if member.email:
        session.execute(
            delete(EmailBounce)
            .where(
                EmailBounce.brand_id == member.brand_id,
                EmailBounce.address == member.email.strip().lower(),
            )
            .execution_options(synchronize_session=False)
        )
    return int(getattr(deleted, "rowcount", 0) or 0)
