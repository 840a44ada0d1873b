"""A brand's staff accounts: invite with a one-time set-password link, change, disable, remove.

Every change that takes rights away (disable, a new role, removal, a new password) raises the
account's session epoch, which ends its open sessions on their next request.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from walletd.audit import Actor, record
from walletd.errors import N_, ConflictError, NotFoundError, ValidationError
from walletd.loyalty.staff import (
    UNUSABLE_PASSWORD,
    StaffPrincipal,
    check_new_password,
    check_role,
    create_staff,
    hash_password,
    principal_of,
)
from walletd.models import StaffUser
from walletd.models.campaign import StaffPasswordToken

MAX_ID = 2**31 - 1
LINK_LIFETIME = timedelta(hours=72)
MAX_STAFF = 500


@dataclass(frozen=True)
class PasswordLink:
    """A one-time set-password token for an account (shown once; only its hash is kept)."""

    staff: StaffUser
    token: str
    expires_at: datetime


def hash_token(token: str) -> str:
    """SHA-256 of a set-password token; tokens are 256-bit random, so a slow hash adds nothing."""
    return hashlib.sha256(token.encode()).hexdigest()


def list_staff(session: Session, brand_id: int) -> list[StaffUser]:
    """A brand's staff accounts, oldest first."""
    return list(
        session.scalars(
            select(StaffUser).where(StaffUser.brand_id == brand_id).order_by(StaffUser.id)
        )
    )


def get_staff(session: Session, brand_id: int, staff_id: int) -> StaffUser:
    """A brand's staff account; another brand's is not found."""
    if not 0 < staff_id <= MAX_ID:
        raise NotFoundError("staff account not found")
    user = session.scalar(
        select(StaffUser).where(StaffUser.id == staff_id, StaffUser.brand_id == brand_id)
    )
    if user is None:
        raise NotFoundError("staff account not found")
    return user


def is_pending(user: StaffUser) -> bool:
    """Invited but no password chosen yet."""
    return user.password_hash == UNUSABLE_PASSWORD


def status_of(user: StaffUser) -> str:
    """invited (no password yet), active or disabled."""
    if user.disabled_at is not None:
        return "disabled"
    return "invited" if is_pending(user) else "active"


def _name(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError("name must be text", field="name")
    text = value.strip()
    if len(text) > 200 or not text.isprintable():
        raise ValidationError("name must be at most 200 printable characters", field="name")
    return text or None


def issue_password_link(
    session: Session,
    actor: Actor | None,
    user: StaffUser,
    *,
    now: datetime,
    lifetime: timedelta = LINK_LIFETIME,  # [email-links] resets asked by e-mail live 30 minutes
) -> PasswordLink:
    """A new one-time set-password link for `user`; earlier unused links stop working."""
    session.execute(delete(StaffPasswordToken).where(StaffPasswordToken.staff_id == user.id))
    token = secrets.token_urlsafe(32)
    expires_at = now + lifetime
    session.add(
        StaffPasswordToken(
            staff_id=user.id, token_hash=hash_token(token), expires_at=expires_at, created_at=now
        )
    )
    if actor is not None:
        record(session, actor, "staff.password_link", "staff", user.id, now=now,
               changes={"email": [user.email, user.email]})  # fmt: skip
    return PasswordLink(user, token, expires_at)


def invite_staff(
    session: Session,
    actor: Actor,
    *,
    email: str,
    role: str,
    name: str | None,
    now: datetime,
) -> PasswordLink:
    """Create an account without a usable password and a link for the invitee to choose one."""
    count = session.scalar(
        select(func.count()).select_from(StaffUser).where(StaffUser.brand_id == actor.brand_id)
    )
    if (count or 0) >= MAX_STAFF:
        raise ConflictError(
            N_("a brand has at most {max} staff accounts"), params={"max": MAX_STAFF}
        )
    user = create_staff(session, actor.brand_id, email, None, role, now=now, name=_name(name))
    record(session, actor, "staff.invited", "staff", user.id, now=now,
           changes={"email": [None, user.email], "role": [None, user.role],
                    "name": [None, user.name]})  # fmt: skip
    return issue_password_link(session, None, user, now=now)


def _active_admins(session: Session, brand_id: int) -> list[StaffUser]:
    # Locked: two admins demoting each other at once must not both pass the guard.
    return list(
        session.scalars(
            select(StaffUser)
            .where(
                StaffUser.brand_id == brand_id,
                StaffUser.role == "admin",
                StaffUser.disabled_at.is_(None),
                StaffUser.password_hash != UNUSABLE_PASSWORD,
            )
            .with_for_update()
        )
    )


# One whole sentence per case, so that each can be translated (walletd/translations).
LAST_ADMIN = {
    "demoted": N_("this is the brand's last admin account: it cannot be demoted"),
    "disabled": N_("this is the brand's last admin account: it cannot be disabled"),
    "removed": N_("this is the brand's last admin account: it cannot be removed"),
}


def _guard_last_admin(session: Session, user: StaffUser, what: str, field: str | None) -> None:
    admins = _active_admins(session, user.brand_id)
    if [a.id for a in admins] == [user.id]:
        raise ConflictError(LAST_ADMIN[what], field=field)


def update_staff(
    session: Session, actor: Actor, staff_id: int, changes: Mapping[str, Any], *, now: datetime
) -> StaffUser:
    """Change a staff account's role, name or disabled state (absent fields are kept)."""
    user = get_staff(session, actor.brand_id, staff_id)
    done: dict[str, list[Any]] = {}
    role = check_role(changes["role"]) if changes.get("role") is not None else user.role
    disabled = changes.get("disabled")
    if disabled is not None and not isinstance(disabled, bool):
        raise ValidationError("disabled must be true or false", field="disabled")
    if "name" in changes:
        name = _name(changes["name"])
        if name != user.name:
            done["name"] = [user.name, name]
            user.name = name
    demoted = user.role == "admin" and role != "admin"
    disabling = disabled is True and user.disabled_at is None
    if demoted or disabling:
        if demoted:
            _guard_last_admin(session, user, "demoted", "role")
        else:
            _guard_last_admin(session, user, "disabled", "disabled")
    if role != user.role:
        done["role"] = [user.role, role]
        user.role = role
    if disabling:
        done["disabled"] = [False, True]
        user.disabled_at = now
    elif disabled is False and user.disabled_at is not None:
        done["disabled"] = [True, False]
        user.disabled_at = None
    if "role" in done or disabling:
        user.session_epoch += 1  # its open sessions end on their next request
    if done:
        record(session, actor, "staff.updated", "staff", user.id, now=now, changes=done)
    return user


def delete_staff(session: Session, actor: Actor, staff_id: int, *, now: datetime) -> None:
    """Remove a staff account; ledger entries and audit rows keep its id and e-mail."""
    user = get_staff(session, actor.brand_id, staff_id)
    if user.role == "admin":
        _guard_last_admin(session, user, "removed", None)
    # The audit row keeps the e-mail: the member page still names who made old entries.
    record(session, actor, "staff.deleted", "staff", user.id, now=now,
           changes={"email": [user.email, None], "role": [user.role, None]})  # fmt: skip
    session.delete(user)
    session.flush()


def find_password_link(session: Session, token: str, *, now: datetime) -> StaffUser | None:
    """The account a set-password link is for, or None when unknown, used or expired."""
    if not token or len(token) > 128:
        return None
    row = session.scalar(
        select(StaffPasswordToken).where(StaffPasswordToken.token_hash == hash_token(token))
    )
    if row is None or row.used_at is not None or row.expires_at <= now:
        return None
    user = session.get(StaffUser, row.staff_id)
    if user is None or user.disabled_at is not None:
        return None
    return user


def set_password_with_link(
    session: Session, token: str, password: str, *, now: datetime
) -> StaffPrincipal:
    """Set the account's password with a one-time link and end its other sessions.

    A refused password leaves the link usable; a used or expired link is NotFoundError.
    """
    user = find_password_link(session, token, now=now)
    if user is None:
        raise NotFoundError("this link is not valid: it was used, it expired or it was replaced")
    check_new_password(password)
    row = session.scalar(
        select(StaffPasswordToken)
        .where(StaffPasswordToken.token_hash == hash_token(token))
        .with_for_update()
    )
    if row is None or row.used_at is not None:  # a concurrent twin used it first
        raise NotFoundError("this link is not valid: it was used, it expired or it was replaced")
    row.used_at = now
    user.password_hash = hash_password(password)
    user.session_epoch += 1
    user.last_login_at = now
    actor = Actor(user.brand_id, staff_id=user.id, label=user.email)
    record(session, actor, "staff.password_set", "staff", user.id, now=now)
    return principal_of(user)
