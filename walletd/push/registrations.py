"""The Apple Wallet web service's use cases: device registrations, updated serials, logs."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from walletd.errors import AuthenticationError, ValidationError
from walletd.loyalty.cards import current_poll_tag
from walletd.models import Card, Device, DeviceLog, Registration

MAX_LOG_LINES = 100
MAX_LOG_LENGTH = 2000
# An authentication token that never matches, compared when the serial is unknown so that the
# time taken does not tell an attacker whether a serial exists.
_DUMMY_TOKEN = "x" * 43


def authenticate_pass(session: Session, serial: str, token: str | None) -> Card:
    """The card whose serial and pass authentication token match; one error for every failure."""
    card = session.scalar(select(Card).where(Card.serial_number == serial)) if serial else None
    expected = card.auth_token if card is not None else _DUMMY_TOKEN
    if not token or not hmac.compare_digest(expected.encode(), token.encode()) or card is None:
        raise AuthenticationError("unauthorized")
    return card


def _check_push_token(push_token: object) -> str:
    if not isinstance(push_token, str) or not push_token.strip() or len(push_token) > 200:
        raise ValidationError("pushToken must be a non-empty string", field="pushToken")
    return push_token.strip()


def register_device(
    session: Session,
    *,
    library_id: str,
    pass_type_id: str,
    card: Card,
    push_token: object,
    now: datetime,
) -> bool:
    """Register a device for a card's updates; True when the registration is new."""
    token = _check_push_token(push_token)
    if not library_id or len(library_id) > 128:
        raise ValidationError(
            "deviceLibraryIdentifier is not valid", field="deviceLibraryIdentifier"
        )
    device = session.scalar(select(Device).where(Device.library_id == library_id).with_for_update())
    if device is None:
        device = Device(library_id=library_id, push_token=token, created_at=now, updated_at=now)
        session.add(device)
        session.flush()
    else:
        # A re-registration refreshes the token and marks when it was last confirmed, which
        # decides whether a later 410 from APNs predates it.
        device.push_token = token
        device.updated_at = now
    existing = session.scalar(
        select(Registration).where(
            Registration.device_id == device.id, Registration.card_id == card.id
        )
    )
    if existing is not None:
        return False
    session.add(
        Registration(
            device_id=device.id, card_id=card.id, pass_type_id=pass_type_id, created_at=now
        )
    )
    session.flush()
    return True


def unregister_device(session: Session, *, library_id: str, card: Card) -> None:
    """Remove a registration; the device goes too when it was its last one."""
    device = session.scalar(select(Device).where(Device.library_id == library_id))
    if device is None:
        return
    session.execute(
        delete(Registration).where(
            Registration.device_id == device.id, Registration.card_id == card.id
        )
    )
    left = session.scalar(
        select(func.count()).select_from(Registration).where(Registration.device_id == device.id)
    )
    if not left:
        session.delete(device)


@dataclass(frozen=True)
class UpdatedSerials:
    """Serials changed since a tag, and the tag to use next time."""

    serials: list[str]
    last_updated: str


def parse_tag(value: str | None) -> int | None:
    """A passesUpdatedSince value, or None when absent or not one of our tags."""
    if value is None or not value.strip().isdigit() or len(value) > 20:
        return None
    return int(value)


def updated_serials(
    session: Session, *, library_id: str, pass_type_id: str, since: int | None
) -> UpdatedSerials:
    """The device's registered serials changed at or after `since` (all when absent)."""
    # Read the poll tag first: any change committed after this point has a tag >= it.
    tag = current_poll_tag(session)
    query = (
        select(Card.serial_number)
        .join(Registration, Registration.card_id == Card.id)
        .join(Device, Device.id == Registration.device_id)
        .where(Device.library_id == library_id, Registration.pass_type_id == pass_type_id)
        .order_by(Card.serial_number)
    )
    if since is not None:
        query = query.where(Card.update_tag >= since)
    return UpdatedSerials(serials=list(session.scalars(query).all()), last_updated=str(tag))


def record_logs(session: Session, logs: object, now: datetime) -> int:
    """Store the messages a device sent to /v1/log; returns how many were kept."""
    if not isinstance(logs, list):
        raise ValidationError("logs must be a list of strings", field="logs")
    kept = [str(line)[:MAX_LOG_LENGTH] for line in logs[:MAX_LOG_LINES] if isinstance(line, str)]
    session.add_all(DeviceLog(message=line, created_at=now) for line in kept)
    return len(kept)


def forget_token(session: Session, token: str, *, gone_at: datetime | None) -> int:
    """Drop registrations of a push token APNs no longer delivers to.

    A device that re-registered after APNs's 410 timestamp has a live token again: keep it.
    """
    query = select(Device).where(Device.push_token == token)
    if gone_at is not None:
        query = query.where(Device.updated_at <= gone_at)
    devices = session.scalars(query).all()
    for device in devices:
        session.delete(device)  # registrations cascade
    return len(devices)
