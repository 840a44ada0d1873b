"""The append-only points ledger."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    func,
    or_,
)
from sqlalchemy.orm import Mapped, mapped_column

from walletd.db import Base, UTCDateTime, utcnow
from walletd.models.types import JSONText

# "opening": a balance brought over from another loyalty system by an import.
KINDS = ("earn", "redeem", "bonus", "adjust", "expire", "reversal", "opening")


class LedgerEntry(Base):
    """One change of a member's points; positive entries are lots that expire oldest first."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        UniqueConstraint("brand_id", "idempotency_key"),
        UniqueConstraint("brand_id", "internal_key"),
        Index("ix_ledger_entries_member_created", "member_id", "created_at"),
        Index("ix_ledger_entries_lots", "member_id", "expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    points: Mapped[int] = mapped_column(BigInteger)
    amount_minor: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # A scan's discount, promotions, stamp card and coupons, as its answer gave them (JSON).
    scan_extras: Mapped[Any] = mapped_column(JSONText(), nullable=True)
    # The client's Idempotency-Key (scans, redemptions).
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # Keys walletd derives itself (welcome:{id}, birthday:…, referral:…) live in their own
    # column, so no Idempotency-Key a client sends can ever match, block or replay one of them.
    internal_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # SHA-256 of the request that carried the key, so a reused key with another body is refused.
    request_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The balance and tier right after this entry: what a replayed request answers again.
    balance_after: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    tier_after: Mapped[str | None] = mapped_column(String(64), nullable=True)
    location_id: Mapped[int | None] = mapped_column(
        ForeignKey("locations.id", ondelete="SET NULL"), nullable=True
    )
    api_key_id: Mapped[int | None] = mapped_column(
        ForeignKey("api_keys.id", ondelete="SET NULL"), nullable=True
    )
    # The staff account that did it (a plain id: the entry outlives the account).
    staff_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reward_id: Mapped[int | None] = mapped_column(
        ForeignKey("rewards.id", ondelete="SET NULL"), nullable=True
    )
    reverses_id: Mapped[int | None] = mapped_column(
        ForeignKey("ledger_entries.id", ondelete="SET NULL"), nullable=True, unique=True
    )
    # The scan whose purchase earned this entry (a referral bonus), so reversing that scan
    # claws exactly these bonuses back.
    earned_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("ledger_entries.id", ondelete="SET NULL"), nullable=True, index=True
    )
    # A refund (kind "reversal") of a scan: the scan it refunds, partly or in full. Several
    # partial refunds share one scan; the one that completes it also sets `reverses_id` (unique,
    # so two concurrent "refund the rest" requests cannot both succeed). A plain id (0016).
    refund_of_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    # On a scan: the amount refunded so far (minor units; None = never refunded), so reports
    # count net revenue and leave fully refunded purchases out of visits without a join.
    refunded_minor: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # On a refund: the points it should have taken back but the balance did not hold.
    shortfall: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # Lot bookkeeping: points of this entry not yet redeemed or expired, and when they expire.
    remaining: Mapped[int] = mapped_column(BigInteger, default=0)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


def is_visit() -> ColumnElement[bool]:
    """SQL: an earn entry (a scan) that still counts as a visit: not refunded in full."""
    return or_(
        LedgerEntry.refunded_minor.is_(None),
        LedgerEntry.refunded_minor < func.coalesce(LedgerEntry.amount_minor, 0),
    )


def net_amount() -> ColumnElement[int]:
    """SQL: a scan's amount less what was refunded of it (minor units)."""
    return func.coalesce(LedgerEntry.amount_minor, 0) - func.coalesce(LedgerEntry.refunded_minor, 0)
