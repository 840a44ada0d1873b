"""Per device: the version of a member's card on the phone against the current one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from walletd.models import ApnsRefusal, Card, Device, Registration


@dataclass(frozen=True)
class DeviceVersion:
    """One device holding one of the member's cards, and how current its copy is."""

    device: str  # the end of the deviceLibraryIdentifier: enough to tell devices apart
    serial_number: str
    registered_at: datetime
    current_tag: int
    changed_at: datetime
    # The device was handed every version below synced_tag, last at synced_at (None: never).
    synced_tag: int | None
    synced_at: datetime | None

    @property
    def up_to_date(self) -> bool:
        """The device has the card's current version."""
        return self.synced_tag is not None and self.synced_tag > self.current_tag


@dataclass(frozen=True)
class RefusedPush:
    """APNs's latest refusal of a push about one of the member's cards."""

    serial_number: str
    status: int | None
    reason: str
    refused_at: datetime


def member_devices(session: Session, member_id: int) -> list[DeviceVersion]:
    """The member's cards on Apple devices, newest registration first."""
    rows = session.execute(
        select(
            Device.library_id,
            Card.serial_number,
            Registration.created_at,
            Card.update_tag,
            Card.updated_at,
            Registration.synced_tag,
            Registration.synced_at,
        )
        .join(Registration, Registration.device_id == Device.id)
        .join(Card, Card.id == Registration.card_id)
        .where(Card.member_id == member_id)
        .order_by(Registration.created_at.desc(), Registration.id.desc())
    ).all()
    return [
        DeviceVersion(
            device=f"…{library[-6:]}",
            serial_number=serial,
            registered_at=registered,
            current_tag=int(tag),
            changed_at=changed,
            synced_tag=None if synced is None else int(synced),
            synced_at=synced_at,
        )
        for library, serial, registered, tag, changed, synced, synced_at in rows
    ]


def member_refusals(session: Session, member_id: int, *, limit: int = 5) -> list[RefusedPush]:
    """The latest pushes APNs refused about the member's cards (a 410: a removed pass)."""
    rows = session.execute(
        select(Card.serial_number, ApnsRefusal.status, ApnsRefusal.reason, ApnsRefusal.refused_at)
        .join(Card, Card.id == ApnsRefusal.card_id)
        .where(Card.member_id == member_id)
        .order_by(ApnsRefusal.refused_at.desc(), ApnsRefusal.id.desc())
        .limit(limit)
    ).all()
    return [RefusedPush(s, status, reason, at) for s, status, reason, at in rows]
