"""Lost-card recovery by e-mail: a one-time link, valid 30 minutes, to the member's card page.

Whether or not a member of the program holds the address, the caller gets the same answer and
the same work is done (a token drawn, the e-mail written, the bounce list read); only a known
address gets the link row and the outbox e-mail. Programs are separate: an address known in
another program (or brand) is not known here.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from walletd.email import is_bouncing, queue_email
from walletd.email_links.catalog import language_of
from walletd.email_links.content import recovery_email
from walletd.errors import N_, ConflictError, NotFoundError
from walletd.loyalty.members import get_card_of, normalise_email
from walletd.models import Card, Member, Program
from walletd.models.recovery_link import RecoveryLink

LINK_LIFETIME = timedelta(minutes=30)
MAX_TOKEN_LENGTH = 128


class LinkUsedError(ConflictError):
    """The one-time link was opened before."""


class LinkExpiredError(ConflictError):
    """The link is older than its lifetime."""


def hash_token(token: str) -> str:
    """SHA-256 of a link token (256-bit random: a slow hash would add nothing)."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def _member_by_email(session: Session, program_id: int, address: str) -> Member | None:
    return session.scalars(
        select(Member)
        .where(
            Member.program_id == program_id,
            Member.email == address,
            Member.erased_at.is_(None),
        )
        .order_by(Member.id.desc())
        .limit(1)
    ).first()


def send_recovery_link(
    session: Session,
    program_id: int,
    email: str,
    *,
    link_for: Callable[[str], str],
    language: str,
    now: datetime,
) -> int | None:
    """E-mail a one-time card link to the program's member holding `email`.

    Returns the outbox e-mail's id, or None when no member holds the address here (or it is
    bouncing); callers must not tell their users which.
    """
    program = session.get_one(Program, program_id)
    address = normalise_email(email)
    member = _member_by_email(session, program_id, address)
    token = secrets.token_urlsafe(32)
    content = recovery_email(
        language_of(member.language if member else None, language, program.default_language),
        program_name=program.name,
        link=link_for(token),
        minutes=int(LINK_LIFETIME.total_seconds() // 60),
    )
    bouncing = is_bouncing(session, address, brand_id=program.brand_id)
    if member is None or bouncing:
        return None
    get_card_of(session, member)  # a member without a loyalty card has nothing to show
    queued = queue_email(
        session, brand_id=member.brand_id, to=address, kind="recovery", content=content, now=now,
        program_id=program_id, member_id=member.id,
    )  # fmt: skip
    if queued is not None:
        session.add(
            RecoveryLink(
                brand_id=member.brand_id,
                program_id=program_id,
                member_id=member.id,
                token_hash=hash_token(token),
                expires_at=now + LINK_LIFETIME,
                created_at=now,
            )
        )
        session.flush()
    return queued


def recovery_link_state(session: Session, program_id: int, token: str, *, now: datetime) -> str:
    """valid, used, expired or unknown (also: another program's link, an erased member)."""
    row = _find_link(session, program_id, token)
    if row is None:
        return "unknown"
    if row.used_at is not None:
        return "used"
    if row.expires_at <= now:
        return "expired"
    return "valid"


def _find_link(session: Session, program_id: int, token: str) -> RecoveryLink | None:
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    row = session.scalar(select(RecoveryLink).where(RecoveryLink.token_hash == hash_token(token)))
    if row is None or row.program_id != program_id:
        return None
    member = session.get(Member, row.member_id)
    if member is None or member.erased_at is not None:
        return None
    return row


def use_recovery_link(session: Session, program_id: int, token: str, *, now: datetime) -> Card:
    """Spend a one-time link and return the member's card; it never works a second time.

    The link is spent by one conditional UPDATE as the transaction's first statement: of two
    clicks at once, the database lets exactly one of them change the row.
    """
    if token and len(token) <= MAX_TOKEN_LENGTH:
        spent = session.execute(
            update(RecoveryLink)
            .where(
                RecoveryLink.token_hash == hash_token(token),
                RecoveryLink.program_id == program_id,
                RecoveryLink.used_at.is_(None),
                RecoveryLink.expires_at > now,
            )
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        if getattr(spent, "rowcount", 0) == 1:
            row = _find_link(session, program_id, token)
            if row is not None:
                return get_card_of(session, session.get_one(Member, row.member_id))
    state = recovery_link_state(session, program_id, token, now=now)
    if state == "used":
        raise LinkUsedError(N_("this link was used already"))
    if state == "expired":
        raise LinkExpiredError(N_("this link has expired"))
    raise NotFoundError("link not found")
