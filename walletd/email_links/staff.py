"""Staff e-mails: the invitation's set-password link, and password resets asked for by e-mail.

A reset asked for on the login page answers the same whether or not the address has an account;
only an active account (or a pending invitation) gets the e-mail. The link is the invitation's
kind (staff_password_tokens), lives 30 minutes, works once, and setting the password raises the
account's session epoch, which ends its other sessions.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from walletd.admin.accounts import (
    LINK_LIFETIME,
    PasswordLink,
    hash_token,
    is_pending,
    issue_password_link,
)
from walletd.audit import Actor
from walletd.email import is_bouncing, queue_email
from walletd.email_links.catalog import language_of
from walletd.email_links.content import password_reset_email, staff_invite_email
from walletd.models import Brand, Program, StaffUser
from walletd.models.campaign import StaffPasswordToken

RESET_LIFETIME = timedelta(minutes=30)
MAX_EMAIL_LENGTH = 320


def _brand_language(session: Session, brand_id: int) -> str | None:
    # A brand's staff read its (first) program's language when nothing better is known.
    return session.scalar(
        select(Program.default_language).where(Program.brand_id == brand_id).order_by(Program.id)
    )


def email_password_link(
    session: Session, link: PasswordLink, url: str, *, language: str | None, now: datetime
) -> int | None:
    """E-mail an invitation (or a new link made by an admin) to the account's address.

    Returns the outbox e-mail's id, or None when e-mail is off or the address is bouncing.
    """
    user = link.staff
    brand_name = session.get_one(Brand, user.brand_id).name
    lang = language_of(language, _brand_language(session, user.brand_id))
    lifetime = link.expires_at - now
    if is_pending(user):
        content = staff_invite_email(lang, brand_name=brand_name, email=user.email, link=url,
                                     hours=round(lifetime.total_seconds() / 3600))  # fmt: skip
        kind = "staff_invite"
    else:
        content = password_reset_email(lang, brand_name=brand_name, email=user.email, link=url,
                                       minutes=round(lifetime.total_seconds() / 60))  # fmt: skip
        kind = "password_reset"
    return queue_email(session, brand_id=user.brand_id, to=user.email, kind=kind,
                       content=content, now=now)  # fmt: skip


def request_password_reset(
    session: Session,
    email: str,
    *,
    link_for: Callable[[str], str],
    language: str,
    now: datetime,
) -> int | None:
    """E-mail a 30-minute one-time set-password link to the account holding `email`.

    None (and nothing written) when no live account holds it or it is bouncing; callers answer
    the same either way.
    """
    address = email.strip().lower()[:MAX_EMAIL_LENGTH]
    user = session.scalar(select(StaffUser).where(StaffUser.email == address))
    brand_id = user.brand_id if user is not None else None
    if (
        user is None
        or user.disabled_at is not None
        or is_bouncing(session, address, brand_id=brand_id)
    ):
        # The same steps as for an account: a token drawn, the e-mail written.
        password_reset_email(language, brand_name="", email=address, link=link_for("x" * 43),
                             minutes=int(RESET_LIFETIME.total_seconds() // 60))  # fmt: skip
        return None
    # A pending invitation keeps its longer life: the invitee simply gets a fresh link.
    lifetime = LINK_LIFETIME if is_pending(user) else RESET_LIFETIME
    actor = Actor(user.brand_id, staff_id=user.id, label=user.email)
    link = issue_password_link(session, actor, user, now=now, lifetime=lifetime)
    return email_password_link(session, link, link_for(link.token), language=language, now=now)


def password_link_state(session: Session, token: str, *, now: datetime) -> str:
    """valid, used, expired or unknown (never issued, replaced by a newer link, or disabled)."""
    if not token or len(token) > 128:
        return "unknown"
    row = session.scalar(
        select(StaffPasswordToken).where(StaffPasswordToken.token_hash == hash_token(token))
    )
    if row is None:
        return "unknown"
    user = session.get(StaffUser, row.staff_id)
    if user is None or user.disabled_at is not None:
        return "unknown"
    if row.used_at is not None:
        return "used"
    if row.expires_at <= now:
        return "expired"
    return "valid"
