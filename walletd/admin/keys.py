"""A brand's API keys: issue (the key is shown once), list with their last use, revoke."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from walletd.admin.locations import check_location_id
from walletd.audit import Actor, record
from walletd.errors import N_, ConflictError, NotFoundError, ValidationError
from walletd.loyalty.brands import issue_key
from walletd.models import ApiKey
from walletd.models.brand import ROLES

MAX_ID = 2**31 - 1
# Live keys a brand may hold: enough for every till of a large chain, bounded all the same.
MAX_ACTIVE_KEYS = 500
# Revoked keys stay listed (their last use is history), but a list answer stays bounded.
MAX_LISTED = 1000


def list_keys(session: Session, brand_id: int) -> list[ApiKey]:
    """A brand's keys, revoked ones too, newest first (the newest MAX_LISTED)."""
    return list(
        session.scalars(
            select(ApiKey)
            .where(ApiKey.brand_id == brand_id)
            .order_by(ApiKey.id.desc())
            .limit(MAX_LISTED)
        )
    )


def get_key(session: Session, brand_id: int, key_id: int) -> ApiKey:
    """A brand's key; another brand's is not found."""
    if not 0 < key_id <= MAX_ID:
        raise NotFoundError("API key not found")
    api_key = session.scalar(select(ApiKey).where(ApiKey.id == key_id, ApiKey.brand_id == brand_id))
    if api_key is None:
        raise NotFoundError("API key not found")
    return api_key


def create_key(
    session: Session,
    actor: Actor,
    *,
    role: str,
    name: str,
    location_id: int | None,
    now: datetime,
) -> tuple[ApiKey, str]:
    """Issue a key of the actor's brand; returns the row and the key (shown this once)."""
    if role not in ROLES:
        raise ValidationError(f"role must be one of {', '.join(ROLES)}", field="role")
    label = name.strip()
    if not label or len(label) > 200 or not label.isprintable():
        raise ValidationError("name must be 1 to 200 printable characters", field="name")
    if location_id is not None:
        location_id = check_location_id(session, actor.brand_id, location_id, "location_id")
    live = session.scalar(
        select(func.count())
        .select_from(ApiKey)
        .where(ApiKey.brand_id == actor.brand_id, ApiKey.revoked_at.is_(None))
    )
    if (live or 0) >= MAX_ACTIVE_KEYS:
        raise ConflictError(
            N_("a brand has at most {max} live keys: revoke some"), params={"max": MAX_ACTIVE_KEYS}
        )
    api_key, key = issue_key(
        session, actor.brand_id, role, now=now, label=label, location_id=location_id
    )
    record(session, actor, "api_key.created", "api_key", api_key.id, now=now,
           changes={"role": [None, role], "name": [None, label], "prefix": [None, api_key.prefix],
                    "location_id": [None, location_id]})  # fmt: skip
    return api_key, key


def revoke_key(session: Session, actor: Actor, key_id: int, *, now: datetime) -> ApiKey:
    """Revoke a key from the next request on; revoking a revoked key changes nothing.

    The key making the request may revoke itself (its next request is refused), but the brand's
    last live admin key may not be revoked: nobody could then manage the brand through the API.
    """
    # Locked so that two admins revoking the last two admin keys at once cannot both pass.
    rows = session.scalars(
        select(ApiKey)
        .where(
            ApiKey.brand_id == actor.brand_id, ApiKey.revoked_at.is_(None), ApiKey.role == "admin"
        )
        .with_for_update()
    ).all()
    api_key = get_key(session, actor.brand_id, key_id)
    if api_key.revoked_at is not None:
        return api_key
    if api_key.role == "admin" and len(rows) <= 1:
        raise ConflictError(
            "this is the brand's last live admin key: issue another admin key first"
        )
    api_key.revoked_at = now
    changes = {"revoked_at": [None, now.isoformat()], "prefix": [api_key.prefix] * 2}
    record(session, actor, "api_key.revoked", "api_key", api_key.id, now=now, changes=changes)
    return api_key
