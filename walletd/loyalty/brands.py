"""Brands, their default program, and API keys."""

from __future__ import annotations

import functools
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Exists, Select, String, bindparam, or_, select, update
from sqlalchemy.orm import Session

from walletd.audit import Actor
from walletd.errors import AuthenticationError, NotFoundError, ValidationError
from walletd.loyalty.money import is_currency_code, minor_unit_exponent
from walletd.models import ApiKey, Brand, Location, Program, Reward, Tier
from walletd.models.brand import ROLES


@dataclass(frozen=True)
class BrandCredentials:
    """What `create-brand` prints: ids and the two keys, shown this once."""

    brand_id: int
    program_id: int
    admin_key: str
    cashier_key: str


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of an API request."""

    api_key_id: int
    brand_id: int
    role: str
    # The key's public prefix and name, as the audit log and the member page show the actor.
    label: str = ""
    # The location the key is bound to: its scans happen there unless they name another.
    location_id: int | None = None

    @property
    def actor(self) -> Actor:
        """This key as the actor of a change."""
        return Actor(
            self.brand_id, api_key_id=self.api_key_id, label=self.label,
            key_location_id=self.location_id, key_location_known=True,
        )  # fmt: skip


def hash_key(key: str) -> str:
    """SHA-256 of an API key; keys are 256-bit random so a slow hash adds nothing."""
    return hashlib.sha256(key.encode()).hexdigest()


# How stale `api_keys.last_used_at` may get. Writing it on every request would turn every read
# into a write (a row update, a WAL/heap write and a lock on hot till keys) for a figure the
# dashboard shows to the minute; once a minute per key costs nothing noticeable.
LAST_USED_PRECISION = timedelta(minutes=1)


def key_label(api_key: ApiKey) -> str:
    """How people see a key: its public prefix and its name, never the key."""
    return f"{api_key.prefix}… {api_key.label}".strip()


def issue_key(
    session: Session,
    brand_id: int,
    role: str,
    *,
    now: datetime,
    label: str = "",
    location_id: int | None = None,
) -> tuple[ApiKey, str]:
    """Create a key with a role; returns the row and the key, whose hash alone is kept."""
    if role not in ROLES:
        raise ValidationError(f"role must be one of {', '.join(ROLES)}", field="role")
    key = f"wd_{role[0]}_{secrets.token_urlsafe(32)}"
    api_key = ApiKey(
        brand_id=brand_id,
        role=role,
        label=label,
        prefix=key[:10],
        key_hash=hash_key(key),
        created_at=now,
        location_id=location_id,
    )
    session.add(api_key)
    session.flush()
    return api_key, key


def issue_api_key(
    session: Session, brand_id: int, role: str, *, now: datetime, label: str = ""
) -> str:
    """Create a key with a role and return it; only its hash is kept."""
    return issue_key(session, brand_id, role, now=now, label=label)[1]


def touch_last_used(session: Session, api_key: ApiKey, now: datetime) -> None:
    """Record that the key was used, unless that was already recorded in the last minute."""
    last = api_key.last_used_at
    if last is not None and now - last < LAST_USED_PRECISION:
        return
    # Conditional in SQL too: concurrent requests of one key write it once, not once each.
    session.execute(
        update(ApiKey)
        .where(
            ApiKey.id == api_key.id,
            or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at <= now - LAST_USED_PRECISION),
        )
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )


def key_still_live(key_id: Any) -> Exists:
    """Whether the API key `key_id` (a bind parameter or a column) exists and is not revoked:
    the column a till route's locked read adds so that a key the web layer took from its cache
    (walletd/web/auth.py, KeyCache) is refused in the transaction that would use it."""
    return select(ApiKey.id).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None)).exists()


@functools.cache
def _key_by_hash() -> Select[tuple[ApiKey]]:
    """Every API request's first statement, built once: SQLAlchemy memoises a statement
    object's cache key, so a request spends no CPU building and keying it."""
    return select(ApiKey).where(ApiKey.key_hash == bindparam("key_hash", type_=String))


def authenticate(session: Session, key: str, *, now: datetime | None = None) -> Principal:
    """The principal behind an API key; revoked and unknown keys are refused alike.

    With `now`, the key's last use is recorded (at most once a minute); the caller commits.
    """
    if not key or len(key) > 200:
        raise AuthenticationError("invalid API key")
    api_key = session.scalar(_key_by_hash(), {"key_hash": hash_key(key)})
    if api_key is None or api_key.revoked_at is not None:
        raise AuthenticationError("invalid API key")
    if now is not None:
        touch_last_used(session, api_key, now)
    return Principal(
        api_key.id, api_key.brand_id, api_key.role, key_label(api_key), api_key.location_id
    )


def revoke_api_key(session: Session, brand_id: int, prefix: str, *, now: datetime) -> int:
    """Revoke the brand's keys that start with a prefix; returns how many were revoked."""
    keys = session.scalars(
        select(ApiKey).where(
            ApiKey.brand_id == brand_id, ApiKey.prefix == prefix[:10], ApiKey.revoked_at.is_(None)
        )
    ).all()
    for api_key in keys:
        api_key.revoked_at = now
    return len(keys)


def create_brand(
    session: Session, name: str, *, now: datetime, currency: str = "USD"
) -> BrandCredentials:
    """A brand with a default program (three tiers, two rewards), a location and two keys."""
    name = name.strip()
    if not name or len(name) > 200:
        raise ValidationError("brand name must be 1 to 200 characters", field="name")
    if not is_currency_code(currency):
        raise ValidationError("currency must be an ISO 4217 code such as USD", field="currency")
    brand = Brand(name=name, created_at=now)
    session.add(brand)
    session.flush()
    unit = 10 ** minor_unit_exponent(currency)
    program = Program(
        brand_id=brand.id,
        name=f"{name} Rewards",
        currency=currency,
        points_per_unit=Decimal("1"),
        rounding="floor",
        max_amount_minor=100_000 * unit,
        welcome_bonus=50,
        birthday_bonus=100,
        referral_bonus_referrer=100,
        referral_bonus_referee=50,
        # A referral pays on a real purchase, not on a 0.01 one made to farm bonuses.
        referral_min_purchase_minor=5 * unit,
        points_expiry_months=12,
        tier_basis="spend",
        created_at=now,
        updated_at=now,
    )
    session.add(program)
    session.flush()
    session.add_all(
        [
            Tier(program_id=program.id, name="Silver", threshold=0, multiplier=Decimal("1")),
            Tier(program_id=program.id, name="Gold", threshold=500 * unit,
                 multiplier=Decimal("1.25")),
            Tier(program_id=program.id, name="VIP", threshold=2000 * unit,
                 multiplier=Decimal("1.5")),
            Reward(program_id=program.id, name="Free coffee", cost_points=150),
            Reward(program_id=program.id, name="10% off voucher", cost_points=500),
            Location(brand_id=brand.id, name="Main store", created_at=now),
        ]
    )  # fmt: skip
    admin_key = issue_api_key(session, brand.id, "admin", now=now, label="initial admin key")
    cashier_key = issue_api_key(session, brand.id, "cashier", now=now, label="initial cashier key")
    session.flush()
    return BrandCredentials(brand.id, program.id, admin_key, cashier_key)


def get_program(session: Session, brand_id: int, program_id: int | None = None) -> Program:
    """A brand's program by id, or its first program; another brand's program is not found."""
    query = select(Program).where(Program.brand_id == brand_id)
    if program_id is not None:
        query = query.where(Program.id == program_id)
    program = session.scalars(query.order_by(Program.id).limit(1)).first()
    if program is None:
        raise NotFoundError("program not found")
    return program


def find_location(session: Session, brand_id: int, location_id: int) -> Location | None:
    """A brand's location, or None."""
    return session.scalar(
        select(Location).where(Location.brand_id == brand_id, Location.id == location_id)
    )


def key_location(session: Session, api_key_id: int | None) -> int | None:
    """The location a key is bound to (a till's key names its shop), or None."""
    if api_key_id is None:
        return None
    return session.scalar(select(ApiKey.location_id).where(ApiKey.id == api_key_id))
