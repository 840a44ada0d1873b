"""Apple devices and their pass registrations, plus device log lines."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from walletd.db import Base, UTCDateTime, utcnow


class Device(Base):
    """An Apple device, known by its deviceLibraryIdentifier."""

    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(primary_key=True)
    library_id: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Registration(Base):
    """A device's subscription to updates of one card, and where to push them.

    The push token belongs to the registration, not the device: only a request proven by this
    card's authentication token may set it, so no other pass can redirect this card's pushes.
    """

    __tablename__ = "registrations"
    __table_args__ = (UniqueConstraint("device_id", "card_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("cards.id", ondelete="CASCADE"), index=True)
    pass_type_id: Mapped[str] = mapped_column(String(128))
    push_token: Mapped[str] = mapped_column(String(200), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # When the device last confirmed this registration: a later APNs 410 must predate it to
    # remove it, and the least recently confirmed one goes first when the card is at its cap.
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # [delivery] The device was handed every change of its card with a tag below synced_tag (it
    # listed them and downloads them next); synced_at is when it first got the card's current
    # version. Written by the list call only when it moves (walletd/push/registrations.py).
    synced_tag: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class DeviceLog(Base):
    """A message a device posted to /v1/log."""

    __tablename__ = "device_logs"

    id: Mapped[int] = mapped_column(primary_key=True)
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
