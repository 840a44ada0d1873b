"""Offers, the coupons issued from them, and promotions that multiply earning."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from walletd.db import Base, UTCDateTime, utcnow
from walletd.models.types import DecimalType, JSONText

OFFER_KINDS = ("percent_off", "amount_off", "free_item", "bonus_points")
OFFER_STATUSES = ("active", "archived")
COUPON_STATUSES = ("active", "redeemed", "expired", "void")
COUPON_SOURCES = (
    "manual",
    "segment",
    "campaign",
    "enrollment",
    "birthday",
    "tier_upgrade",
    "referral",
    "win_back",
    "stamps",
)


class Offer(Base):
    """What a coupon gives: percent off, an amount off, a free item or bonus points."""

    __tablename__ = "offers"

    id: Mapped[int] = mapped_column(primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    program_id: Mapped[int] = mapped_column(
        ForeignKey("programs.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    # percent_off: percent (0 < v <= 100); amount_off: major units of the program's currency;
    # bonus_points: points; free_item: unused (the item is `item`).
    value: Mapped[Decimal | None] = mapped_column(DecimalType(), nullable=True)
    item: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # {"Gold": "15", "VIP": "20"}: the value for members of a tier, by tier name.
    tier_values: Mapped[Any] = mapped_column(JSONText(), nullable=True)
    min_spend_minor: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # Validity: fixed window (valid_from/valid_until) and/or N days after issue.
    valid_from: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    valid_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    per_member_limit: Mapped[int | None] = mapped_column(Integer, nullable=True)
    terms: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    google_class_synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Coupon(Base):
    """One member's copy of an offer, with its own code, barcode, state and expiry.

    Its Apple pass is a row of `cards` with kind "coupon" (`card_id`), so the Apple web service,
    registrations, update tags and pushes serve coupons exactly as they serve loyalty cards.
    """

    __tablename__ = "coupons"
    __table_args__ = (
        # Exactly one coupon per member per issuing occasion (a segment issue, a birthday year...).
        UniqueConstraint("offer_id", "member_id", "occasion"),
        UniqueConstraint("brand_id", "redeem_key"),
        Index("ix_coupons_member_status", "member_id", "status"),
        Index("ix_coupons_status_expires_at", "status", "expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    offer_id: Mapped[int] = mapped_column(ForeignKey("offers.id", ondelete="CASCADE"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    card_id: Mapped[int | None] = mapped_column(
        ForeignKey("cards.id", ondelete="SET NULL"), nullable=True, index=True
    )
    code: Mapped[str] = mapped_column(String(32), unique=True)
    barcode: Mapped[str] = mapped_column(String(128), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    # The value resolved for the member's tier when issued (same unit as Offer.value).
    value: Mapped[Decimal | None] = mapped_column(DecimalType(), nullable=True)
    source: Mapped[str] = mapped_column(String(16), default="manual")
    occasion: Mapped[str] = mapped_column(String(100))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    redeemed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # The till's Idempotency-Key and a fingerprint of its request: a replay answers the same.
    redeem_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    redeem_fingerprint: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Redeemed with a scan (`POST /api/v1/scans` with "coupons"): that scan's ledger entry id;
    # the scan's own Idempotency-Key then covers the coupon, and `redeem_key` stays empty.
    redeemed_scan_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    purchase_minor: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    discount_minor: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    points_awarded: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    redeemed_api_key_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    google_synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class OfferIssue(Base):
    """A batch issue of an offer to a segment: resumable from `cursor_member_id`, like campaigns."""

    __tablename__ = "offer_issues"

    id: Mapped[int] = mapped_column(primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    offer_id: Mapped[int] = mapped_column(ForeignKey("offers.id", ondelete="CASCADE"), index=True)
    segment: Mapped[Any] = mapped_column(JSONText())
    status: Mapped[str] = mapped_column(String(16), default="pending")
    cursor_member_id: Mapped[int] = mapped_column(Integer, default=0)
    issued: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Promotion(Base):
    """A window that multiplies earning: member days, double-points weekends, anniversaries."""

    __tablename__ = "promotions"

    id: Mapped[int] = mapped_column(primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    program_id: Mapped[int] = mapped_column(
        ForeignKey("programs.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    multiplier: Mapped[Decimal] = mapped_column(DecimalType(), default=Decimal("2"))
    # In the program's time zone: days the promotion runs (inclusive), and ISO weekdays
    # (1 = Monday ... 7 = Sunday) it is limited to, e.g. [2] for "member day every Tuesday".
    starts_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    ends_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    weekdays: Mapped[Any] = mapped_column(JSONText(), nullable=True)
    tiers: Mapped[Any] = mapped_column(JSONText(), nullable=True)
    location_ids: Mapped[Any] = mapped_column(JSONText(), nullable=True)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
