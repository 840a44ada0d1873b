"""E-mails: each one a history row (with its content until it is sent), bouncing addresses, and
the sender a program's e-mails come from."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from walletd.db import Base, UTCDateTime, utcnow
from walletd.models.types import JSONText

EMAIL_KINDS = (
    "card", "recovery", "staff_invite", "password_reset", "campaign", "automation", "test",
)  # fmt: skip
EMAIL_STATUSES = ("pending", "sent", "failed", "cancelled")


class Email(Base):
    """One e-mail to one address; its outbox row (kind `email`) carries `email_id` to the sender.

    The content (text, HTML, extra headers, inline images) is kept only until the e-mail is sent
    or given up: it may hold one-time links, and the history needs only the subject.
    """

    __tablename__ = "emails"
    __table_args__ = (Index("ix_emails_member_id", "member_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    program_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    member_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    campaign_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    automation_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    kind: Mapped[str] = mapped_column(String(32))
    to_address: Mapped[str] = mapped_column(String(320))
    # Empty: WALLETD_EMAIL_FROM when sent.
    from_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    from_address: Mapped[str | None] = mapped_column(String(320), nullable=True)
    reply_to: Mapped[str | None] = mapped_column(String(320), nullable=True)
    subject: Mapped[str] = mapped_column(String(998))
    text_body: Mapped[str | None] = mapped_column(Text, nullable=True)
    html_body: Mapped[str | None] = mapped_column(Text, nullable=True)
    headers: Mapped[Any] = mapped_column(JSONText(), nullable=True)
    # [[content-id, base64 PNG, filename], ...]
    inline_images: Mapped[Any] = mapped_column(JSONText(), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    message_id: Mapped[str | None] = mapped_column(String(250), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class EmailBounce(Base):
    """An address the relay refused for good (5xx) in a brand: nothing more is sent to it."""

    __tablename__ = "email_bounces"
    __table_args__ = (UniqueConstraint("brand_id", "address", name="uq_email_bounces_address"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    # Lower-cased, so one mailbox is one row however it was typed.
    address: Mapped[str] = mapped_column(String(320), index=True)
    reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    email_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class EmailSender(Base):
    """Who a program's e-mails come from; without a row, WALLETD_EMAIL_FROM."""

    __tablename__ = "email_senders"

    program_id: Mapped[int] = mapped_column(
        ForeignKey("programs.id", ondelete="CASCADE"), primary_key=True
    )
    from_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    from_address: Mapped[str | None] = mapped_column(String(320), nullable=True)
    reply_to: Mapped[str | None] = mapped_column(String(320), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


__all__ = ["Email", "EmailBounce", "EmailSender", "EMAIL_KINDS", "EMAIL_STATUSES"]
