"""Who did it: the actor of a change, and the audit log every administrative change writes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from walletd.models.audit import AuditEntry


@dataclass(frozen=True)
class Actor:
    """Who asks for a change: the brand, and the API key or staff account acting for it."""

    brand_id: int
    api_key_id: int | None = None
    staff_id: int | None = None
    # What people read: a staff e-mail or a key's public prefix and name; never a secret.
    label: str = ""
    # The location the API key is bound to, as read when the request authenticated it
    # (`key_location_known`); otherwise a scan reads it from the key (one more statement).
    key_location_id: int | None = None
    key_location_known: bool = False


def record(
    session: Session,
    actor: Actor,
    action: str,
    target_type: str,
    target_id: int | None,
    *,
    now: datetime,
    changes: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """Append one audit row for `actor`'s change, in the caller's transaction."""
    entry = AuditEntry(
        brand_id=actor.brand_id,
        actor_api_key_id=actor.api_key_id,
        actor_staff_id=actor.staff_id,
        actor_label=actor.label[:330],
        action=action,
        target_type=target_type,
        target_id=target_id,
        changes=dict(changes) if changes is not None else None,
        created_at=now,
    )
    session.add(entry)
    return entry


def list_entries(
    session: Session,
    brand_id: int,
    *,
    target_type: str | None = None,
    target_id: int | None = None,
    limit: int = 100,
    before_id: int | None = None,
) -> list[AuditEntry]:
    """A brand's audit rows, newest first (keyset by id)."""
    query = select(AuditEntry).where(AuditEntry.brand_id == brand_id)
    if target_type is not None:
        query = query.where(AuditEntry.target_type == target_type)
    if target_id is not None:
        query = query.where(AuditEntry.target_id == target_id)
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    return list(session.scalars(query.order_by(AuditEntry.id.desc()).limit(limit)))
