"""The audit log: who changed what in a brand's program, key, staff or integration settings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from walletd.db import Base, UTCDateTime, utcnow
from walletd.models.types import JSONText


class AuditEntry(Base):
    """One change made by a staff account or an API key; the actor's label survives its deletion."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_brand_created", "brand_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    # Plain ids, not foreign keys: the row must outlive a deleted key or staff account.
    actor_api_key_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    actor_staff_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    actor_label: Mapped[str] = mapped_column(String(330), default="")
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # {"field": [before, after], ...} or any JSON detail of the change; never secrets.
    changes: Mapped[Any] = mapped_column(JSONText(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
