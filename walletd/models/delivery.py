"""Delivery health: the pushes APNs refused, per card (issue 15, part delivery)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from walletd.db import Base, UTCDateTime, utcnow


class ApnsRefusal(Base):
    """APNs refused a push that announced a change of this card (410, bad token or fatal)."""

    __tablename__ = "apns_refusals"
    __table_args__ = (Index("ix_apns_refusals_brand_refused", "brand_id", "refused_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    card_id: Mapped[int] = mapped_column(ForeignKey("cards.id", ondelete="CASCADE"), index=True)
    # The campaign whose push it was (the outbox row's), a plain id like outbox.campaign_id.
    campaign_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reason: Mapped[str] = mapped_column(String(64))
    refused_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
