"""Staff accounts of a brand: scrypt-hashed passwords and roles.

Wrong passwords never lock an account here: a lockout in the account row lets any stranger keep
the owner out. Guessing is slowed down by failure limits per client, per account and client, and
per account (walletd.web.limits), which a correct password from the owner's own browser passes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from walletd.errors import N_, ConflictError, NotFoundError, ValidationError
from walletd.models import Brand, StaffUser

STAFF_ROLES = ("admin", "cashier")
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
# scrypt cost: 2^15 × 8 × 128 bytes = 32 MiB and ~50 ms per check on one core (OWASP minimum).
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**15, 8, 1
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")


@dataclass(frozen=True)
class StaffPrincipal:
    """A logged-in staff member as the pages see them."""

    staff_id: int
    brand_id: int
    email: str
    role: str
    # The account's session epoch at login; a session holding an older one is logged out.
    session_epoch: int = 0


def hash_password(password: str, *, n: int = _SCRYPT_N) -> str:
    """A self-describing scrypt hash: `scrypt$n$r$p$salt$hash` (base64)."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, n, _SCRYPT_R, _SCRYPT_P)
    encoded = [base64.b64encode(part).decode("ascii") for part in (salt, digest)]
    return f"scrypt${n}${_SCRYPT_R}${_SCRYPT_P}${encoded[0]}${encoded[1]}"


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=256 * n * r, dklen=32
    )


def check_password(password: str, stored: str) -> bool:
    """True when `password` is the one `stored` was made from."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


# Checked when no account matches, so that a wrong e-mail costs as long as a wrong password.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16), n=_SCRYPT_N)


def normalise_email(email: str) -> str:
    """E-mail addresses compare case-insensitively and without surrounding blanks."""
    return email.strip().lower()


# The password hash of an invited account until the invitee sets a password: no scrypt hash
# has this form, so no password matches it.
UNUSABLE_PASSWORD = "!unset"


def check_email(email: str) -> str:
    """A staff e-mail address normalised, or a ValidationError on `email`."""
    address = normalise_email(email)
    # Printable only: a NUL would be a database error on Postgres, not a 422.
    if len(address) > 320 or not address.isprintable() or not _EMAIL.match(address):
        raise ValidationError("email is not a valid address", field="email")
    return address


def check_role(role: object) -> str:
    """A staff role, or a ValidationError on `role`."""
    if not isinstance(role, str) or role not in STAFF_ROLES:
        raise ValidationError(f"role must be one of {', '.join(STAFF_ROLES)}", field="role")
    return role


def check_new_password(password: str) -> str:
    """A password long enough (and not absurdly long), or a ValidationError on `password`."""
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise ValidationError(
            N_("password must be at least {min} characters"),
            field="password",
            params={"min": MIN_PASSWORD_LENGTH},
        )
    return password


def create_staff(
    session: Session,
    brand_id: int,
    email: str,
    password: str | None,
    role: str,
    *,
    now: datetime,
    name: str | None = None,
) -> StaffUser:
    """Create a staff account of a brand; without a password it cannot log in until one is set."""
    address = check_email(email)
    check_role(role)
    if password is not None:
        check_new_password(password)
    if session.get(Brand, brand_id) is None:
        raise NotFoundError("brand not found")
    taken = session.scalar(select(StaffUser.id).where(func.lower(StaffUser.email) == address))
    if taken is not None:
        raise ConflictError("a staff account with this e-mail already exists", field="email")
    user = StaffUser(
        brand_id=brand_id,
        email=address,
        password_hash=UNUSABLE_PASSWORD if password is None else hash_password(password),
        role=role,
        failed_logins=0,
        created_at=now,
        name=name,
        session_epoch=0,
    )
    session.add(user)
    session.flush()
    return user


@dataclass(frozen=True)
class LoginResult:
    """The outcome of a login attempt; a failure never says whether the account exists."""

    principal: StaffPrincipal | None
    failure: str | None = None  # "invalid"


def attempt_login(session: Session, email: str, password: str, *, now: datetime) -> LoginResult:
    """Check credentials; one password hash is computed whether or not the account exists."""
    address = normalise_email(email)
    user = None
    if len(address) <= 320 and address.isprintable():
        user = session.scalar(select(StaffUser).where(func.lower(StaffUser.email) == address))
    unusable = (
        user is None
        or user.disabled_at is not None
        or user.password_hash == UNUSABLE_PASSWORD
        or len(password) > MAX_PASSWORD_LENGTH
    )
    if user is None or unusable:
        # Same cost as a real check, so the time taken does not tell which e-mails have accounts
        # (nor which are disabled or not set up yet): all get the same "invalid".
        check_password(password[:MAX_PASSWORD_LENGTH], _DUMMY_HASH)
        return LoginResult(None, "invalid")
    if not check_password(password, user.password_hash):
        return LoginResult(None, "invalid")
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    return LoginResult(principal_of(user))


def principal_of(user: StaffUser) -> StaffPrincipal:
    """A staff account as the pages see it."""
    return StaffPrincipal(user.id, user.brand_id, user.email, user.role, user.session_epoch)


def find_staff(session: Session, staff_id: int) -> StaffPrincipal | None:
    """A staff member by id, or None when the account is gone or disabled."""
    user = session.get(StaffUser, staff_id)
    if user is None or user.disabled_at is not None:
        return None
    return principal_of(user)
