"""Campaigns, their recipients, automations and the log of messages members received."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from walletd.db import Base, UTCDateTime, utcnow
from walletd.models.types import JSONText

CAMPAIGN_STATUSES = ("draft", "scheduled", "sending", "sent", "cancelled")
AUTOMATION_KINDS = (
    "welcome",
    "birthday",
    "post_purchase",
    "win_back",
    "tier_upgrade",
    "points_expiring",
    "reward_near",
)


class Campaign(Base):
    """A message to a segment at a time; fan-out resumes from `cursor_member_id` after a crash."""

    __tablename__ = "campaigns"
    __table_args__ = (Index("ix_campaigns_due", "status", "send_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    message: Mapped[str] = mapped_column(Text)
    # Texts per language ({"zh-Hant": "…"}); a member without one gets `message`.
    messages: Mapped[Any] = mapped_column(JSONText(), nullable=True)
    segment: Mapped[Any] = mapped_column(JSONText())
    status: Mapped[str] = mapped_column(String(16), default="draft")
    send_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    holdout_percent: Mapped[int] = mapped_column(Integer, default=0)
    lift_window_days: Mapped[int] = mapped_column(Integer, default=14)
    # An offer whose coupon each recipient gets with the message (an id of `offers`).
    offer_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Who created it (plain ids: the campaign outlives a revoked key or a removed account).
    created_by_api_key_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_by_staff_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The message leaves each recipient's card this many days after the campaign started.
    message_expires_in_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    claimed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    cursor_member_id: Mapped[int] = mapped_column(Integer, default=0)
    deferred_reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    fanned_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # [email-campaigns] Members without an installed card get the message by e-mail.
    email_fallback: Mapped[bool] = mapped_column(default=False, server_default="0")


class CampaignRecipient(Base):
    """A member's part in a campaign: recipient, holdout, or skipped with a reason."""

    __tablename__ = "campaign_recipients"
    __table_args__ = (UniqueConstraint("campaign_id", "member_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    group: Mapped[str] = mapped_column(String(16))
    skip_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Automation(Base):
    """An automatic lifecycle message of a program, switched on or off by the brand."""

    __tablename__ = "automations"
    __table_args__ = (UniqueConstraint("program_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    enabled: Mapped[bool] = mapped_column(default=False)
    message: Mapped[str] = mapped_column(Text)
    # Texts per language ({"zh-Hant": "…"}); a member without one gets `message`.
    messages: Mapped[Any] = mapped_column(JSONText(), nullable=True)
    delay_days: Mapped[int] = mapped_column(Integer, default=0)
    holdout_percent: Mapped[int] = mapped_column(Integer, default=0)
    # An offer issued with the message (the birthday coupon with the birthday wish); an id of
    # `offers`, checked by the service.
    offer_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # [email-campaigns] Members without an installed card get the message by e-mail.
    email_fallback: Mapped[bool] = mapped_column(default=False, server_default="0")


class MessageLog(Base):
    """A message a member got (or was held out of): frequency caps, de-duplication and lift."""

    __tablename__ = "message_log"
    __table_args__ = (
        UniqueConstraint("member_id", "dedupe_key"),
        Index("ix_message_log_member_sent", "member_id", "sent_at"),
        Index("ix_message_log_source", "source", "source_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(16))  # campaign | automation | direct
    source_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    kind: Mapped[str] = mapped_column(String(32))
    dedupe_key: Mapped[str] = mapped_column(String(200))
    marketing: Mapped[bool] = mapped_column(default=True)
    holdout: Mapped[bool] = mapped_column(default=False)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # [email-campaigns] "email" when the message went by e-mail; null: the wallet card.
    channel: Mapped[str | None] = mapped_column(String(8), nullable=True)


class StaffUser(Base):
    """A brand's staff account for the dashboard and cashier pages."""

    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(300))
    role: Mapped[str] = mapped_column(String(16), default="admin")
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # A disabled account cannot log in; its sessions ended when it was disabled.
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Copied into the session at login and compared on every request: raising it (disable,
    # role change, new password) ends every session of the account at once.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class StaffPasswordToken(Base):
    """A one-time set-password link of a staff account (invitation or reset); only its hash."""

    __tablename__ = "staff_password_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int] = mapped_column(
        ForeignKey("staff_users.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
