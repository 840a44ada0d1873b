"""Signed Apple passes kept by (card, update tag), shared by every web process."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, LargeBinary
from sqlalchemy.orm import Mapped, mapped_column

from walletd.db import Base, UTCDateTime, utcnow


class PassPackage(Base):
    """The newest signed .pkpass of one card: a fetch of that tag is served from these bytes.

    Only the newest tag is kept (a card's older versions are never served again), so the table
    holds at most one row per card with a pass on some device.
    """

    __tablename__ = "pass_packages"

    card_id: Mapped[int] = mapped_column(
        ForeignKey("cards.id", ondelete="CASCADE"), primary_key=True
    )
    update_tag: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
