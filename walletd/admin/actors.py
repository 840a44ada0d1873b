"""Who did it, as people read it: a staff account's e-mail or a key's prefix and name."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from walletd.loyalty.brands import key_label
from walletd.models import ApiKey, AuditEntry, LedgerEntry, StaffUser


@dataclass(frozen=True)
class ActorRef:
    """The actor of a ledger entry or a campaign: `kind` is "staff", "key" or None (walletd)."""

    kind: str | None
    id: int | None
    label: str


NOBODY = ActorRef(None, None, "")
Pair = tuple[int | None, int | None]  # (api_key_id, staff_id)


def actor_refs(session: Session, brand_id: int, pairs: Iterable[Pair]) -> dict[Pair, ActorRef]:
    """Each (api_key_id, staff_id) pair as an ActorRef, with two queries for the whole batch.

    A staff account wins over a key (a staff member logged in on a till key is the person).
    Removed accounts are named from the audit row of their removal.
    """
    wanted = set(pairs)
    key_ids = {k for k, s in wanted if k is not None and s is None}
    staff_ids = {s for _k, s in wanted if s is not None}
    keys = {
        k.id: key_label(k)
        for k in session.scalars(
            select(ApiKey).where(ApiKey.brand_id == brand_id, ApiKey.id.in_(key_ids))
        )
    } if key_ids else {}  # fmt: skip
    staff = {
        u.id: u.email
        for u in session.scalars(
            select(StaffUser).where(StaffUser.brand_id == brand_id, StaffUser.id.in_(staff_ids))
        )
    } if staff_ids else {}  # fmt: skip
    missing = staff_ids - staff.keys()
    if missing:
        for entry in session.scalars(
            select(AuditEntry).where(
                AuditEntry.brand_id == brand_id,
                AuditEntry.target_type == "staff",
                AuditEntry.action == "staff.deleted",
                AuditEntry.target_id.in_(missing),
            )
        ):
            email = (entry.changes or {}).get("email", [None])[0]
            if isinstance(email, str) and entry.target_id is not None:
                staff[entry.target_id] = email
    refs: dict[Pair, ActorRef] = {}
    for key_id, staff_id in wanted:
        if staff_id is not None:
            refs[(key_id, staff_id)] = ActorRef("staff", staff_id, staff.get(staff_id, ""))
        elif key_id is not None:
            refs[(key_id, staff_id)] = ActorRef("key", key_id, keys.get(key_id, ""))
        else:
            refs[(key_id, staff_id)] = NOBODY
    return refs


def actor_ref(
    session: Session, brand_id: int, api_key_id: int | None, staff_id: int | None
) -> ActorRef:
    """One actor as an ActorRef."""
    return actor_refs(session, brand_id, [(api_key_id, staff_id)])[(api_key_id, staff_id)]


def actor_pair(entry: LedgerEntry) -> Pair:
    """A ledger entry's (api_key_id, staff_id)."""
    return (entry.api_key_id, entry.staff_id)


def actor_json(ref: ActorRef) -> dict[str, Any] | None:
    """An ActorRef as the API shows it; None when walletd itself made the change."""
    if ref.kind is None:
        return None
    return {"type": ref.kind, "id": ref.id, "label": ref.label}
