"""Events the brand's other systems report about members, and the automations they trigger."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from walletd.db import Base, UTCDateTime, utcnow
from walletd.models.types import JSONText

RUN_STATUSES = ("scheduled", "sent", "cancelled", "skipped")


class Event(Base):
    """Something a member did elsewhere (cart abandoned, newsletter sign-up...), as reported."""

    __tablename__ = "events"
    __table_args__ = (
        # The client's event id (body `id` or Idempotency-Key): a retry replays the first answer.
        UniqueConstraint("brand_id", "client_id", name="uq_events_brand_client_id"),
        # Cancel checks at fire time look for later events of some types of one member.
        Index("ix_events_member_type_occurred", "member_id", "type", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(64))
    # JSON text written by walletd.events.properties (numbers kept exactly as sent).
    properties: Mapped[str | None] = mapped_column(Text, nullable=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    client_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # SHA-256 of the request's meaning, so the same id with another body is refused.
    request_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The first answer, replayed as it was to a retry with the same id.
    answer: Mapped[Any] = mapped_column(JSONText(), nullable=True)


class EventAutomation(Base):
    """A message sent some minutes after a trigger event unless a cancel event or purchase came."""

    __tablename__ = "event_automations"
    __table_args__ = (Index("ix_event_automations_trigger", "program_id", "trigger_event"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    trigger_event: Mapped[str] = mapped_column(String(64))
    delay_minutes: Mapped[int] = mapped_column(Integer)
    # Event types that cancel a pending run (["order_placed"]).
    cancel_events: Mapped[Any] = mapped_column(JSONText(), default=list)
    cancel_on_purchase: Mapped[bool] = mapped_column(default=True)
    message: Mapped[str] = mapped_column(Text)
    # Texts per language ({"zh-Hant": "…"}); a member without one gets `message`.
    messages: Mapped[Any] = mapped_column(JSONText(), nullable=True)
    # An offer whose coupon goes with the message (a plain id of `offers`, checked when set).
    offer_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    enabled: Mapped[bool] = mapped_column(default=True)
    marketing: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # [email-campaigns] A member without an installed card gets the message by e-mail.
    email_fallback: Mapped[bool] = mapped_column(default=False, server_default="0")


class EventAutomationRun(Base):
    """One member's pending or decided message of an event automation."""

    __tablename__ = "event_automation_runs"
    __table_args__ = (
        # One pending run per automation and member: a later trigger event replaces it.
        Index(
            "uq_event_automation_runs_pending",
            "automation_id",
            "member_id",
            unique=True,
            sqlite_where=text("status = 'scheduled'"),
            postgresql_where=text("status = 'scheduled'"),
        ),
        Index("ix_event_automation_runs_due", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    automation_id: Mapped[int] = mapped_column(
        ForeignKey("event_automations.id", ondelete="CASCADE")
    )
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default="scheduled")
    # Why it was cancelled or skipped: cancel_event, purchase, replaced, automation_disabled,
    # no_consent, frequency_cap.
    reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # The event that cancelled it (a plain id: kept when events are pruned).
    cancelled_by_event_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
