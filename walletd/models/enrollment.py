"""Apple rewards enrollment: a program's sign-up sheet settings, the personalizable passes handed
out, and the devices registered for one before it is personalized."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from walletd.db import Base, UTCDateTime, utcnow
from walletd.models.types import JSONText


class AppleEnrollment(Base):
    """A program's `apple_enrollment` setting, as the API shows it (one row per program)."""

    __tablename__ = "apple_enrollments"

    program_id: Mapped[int] = mapped_column(
        ForeignKey("programs.id", ondelete="CASCADE"), primary_key=True
    )
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    # {"enabled", "required_fields", "description", "terms", "nfc": {...} | None}
    settings: Mapped[Any] = mapped_column(JSONText())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class EnrollmentPass(Base):
    """One downloaded personalizable pass; its serial and token become the member's card's."""

    __tablename__ = "enrollment_passes"

    id: Mapped[int] = mapped_column(primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    program_id: Mapped[int] = mapped_column(
        ForeignKey("programs.id", ondelete="CASCADE"), index=True
    )
    serial_number: Mapped[str] = mapped_column(String(64), unique=True)
    auth_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Set once, by the first accepted personalize request.
    personalized_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    card_id: Mapped[int | None] = mapped_column(
        ForeignKey("cards.id", ondelete="SET NULL"), nullable=True
    )
    member_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id", ondelete="SET NULL"), nullable=True, index=True
    )
    # The postal code the sheet gave (members have no address columns); erased with the member.
    postal_code: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # What the sheet showed and the holder agreed to: {"fields": [...], "description", "terms",
    # "matched_existing_member"}; no personal data (that lives on the member).
    consent: Mapped[Any] = mapped_column(JSONText(), nullable=True)


class EnrollmentRegistration(Base):
    """A device registered for a personalizable pass; moved to the card on personalization."""

    __tablename__ = "enrollment_registrations"
    __table_args__ = (UniqueConstraint("pass_id", "library_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pass_id: Mapped[int] = mapped_column(
        ForeignKey("enrollment_passes.id", ondelete="CASCADE"), index=True
    )
    library_id: Mapped[str] = mapped_column(String(128))
    push_token: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
