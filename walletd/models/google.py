"""Google Wallet bookkeeping: notification budget per pass, and callback nonces seen."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from walletd.db import Base, UTCDateTime, utcnow


class GoogleNotification(Base):
    """One notifying update or message sent for a pass (Google allows 3 per pass per 24 h)."""

    __tablename__ = "google_notifications"
    __table_args__ = (Index("ix_google_notifications_card_sent", "card_id", "sent_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("cards.id", ondelete="CASCADE"))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class GoogleCallbackNonce(Base):
    """A callback nonce already processed: Google may deliver a callback more than once."""

    __tablename__ = "google_callback_nonces"

    id: Mapped[int] = mapped_column(primary_key=True)
    nonce: Mapped[str] = mapped_column(String(200), unique=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
