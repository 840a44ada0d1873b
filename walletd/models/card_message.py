"""Messages on a member's cards: several at once, each with its source, expiry and withdrawal."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from walletd.db import Base, UTCDateTime, utcnow

# Where a message came from.
SOURCES = ("manual", "campaign", "automation", "event")
# Why a message left the card.
WITHDRAWN_REASONS = ("expired", "cleared", "replaced", "no_longer_true")


class CardMessage(Base):
    """One message shown on all of a member's loyalty cards until it expires or is withdrawn."""

    __tablename__ = "card_messages"
    __table_args__ = (
        # The message id is the dedupe key of its source (c<campaign>, a<automation>-<member>-<day>,
        # e<automation>-<run>, m<random>): a retried send replaces the message instead of adding it.
        Index("uq_card_messages_member_message", "member_id", "message_id", unique=True),
        # The expiry job reads only messages still on a card.
        Index(
            "ix_card_messages_due",
            "expires_at",
            sqlite_where=text("withdrawn_at IS NULL AND expires_at IS NOT NULL"),
            postgresql_where=text("withdrawn_at IS NULL AND expires_at IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    message_id: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16))
    # Plain ids: the message's history outlives a deleted campaign or event automation.
    campaign_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    automation_kind: Mapped[str | None] = mapped_column(String(32), nullable=True)
    event_automation_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # A reward_near reminder is withdrawn once the balance reaches this.
    reward_points: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # A points_expiring reminder is withdrawn once no points expiring by then are left.
    expiring_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    withdrawn_reason: Mapped[str | None] = mapped_column(String(16), nullable=True)
