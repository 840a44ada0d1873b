"""Loyalty programs, their tiers and their rewards."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from walletd.db import Base, UTCDateTime, utcnow
from walletd.models.types import DecimalType

ROUNDING_RULES = ("floor", "half_up", "ceil")
TIER_BASES = ("spend", "points")
LANGUAGES = ("en", "zh-Hant")


class Program(Base):
    """The rules by which a brand's members earn and spend points."""

    __tablename__ = "programs"

    id: Mapped[int] = mapped_column(primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    # Points per one major currency unit, before the tier multiplier.
    points_per_unit: Mapped[Decimal] = mapped_column(DecimalType(), default=Decimal("1"))
    rounding: Mapped[str] = mapped_column(String(16), default="floor")
    max_points_per_scan: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Ceiling on one purchase, in minor units; larger amounts are refused as typos or fraud.
    max_amount_minor: Mapped[int] = mapped_column(BigInteger, default=10_000_000)
    welcome_bonus: Mapped[int] = mapped_column(Integer, default=0)
    birthday_bonus: Mapped[int] = mapped_column(Integer, default=0)
    referral_bonus_referrer: Mapped[int] = mapped_column(Integer, default=0)
    referral_bonus_referee: Mapped[int] = mapped_column(Integer, default=0)
    # The smallest purchase (minor units of `currency`) that earns the referral bonuses: the
    # referred member's first purchase at or above it pays both sides, once.
    referral_min_purchase_minor: Mapped[int] = mapped_column(
        BigInteger, default=0, server_default="0"
    )
    points_expiry_months: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tier_basis: Mapped[str] = mapped_column(String(16), default="spend")
    template: Mapped[str] = mapped_column(String(64), default="default")
    background_color: Mapped[str] = mapped_column(String(7), default="#1F3A5F")
    foreground_color: Mapped[str] = mapped_column(String(7), default="#FFFFFF")
    label_color: Mapped[str] = mapped_column(String(7), default="#C9D6E8")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # Marketing messages a member may get per rolling 7 days, and the quiet hours (minutes after
    # local midnight in `timezone`, start inclusive, end exclusive, may wrap midnight) during
    # which none are sent; both NULL means no quiet hours.
    messages_per_week_cap: Mapped[int] = mapped_column(Integer, default=3)
    quiet_start_minute: Mapped[int | None] = mapped_column(
        Integer, nullable=True, default=21 * 60, server_default="1260"
    )
    quiet_end_minute: Mapped[int | None] = mapped_column(
        Integer, nullable=True, default=9 * 60, server_default="540"
    )
    # How many days after a scan a cashier key may still reverse it (admins always may).
    refund_window_days: Mapped[int] = mapped_column(Integer, default=30, server_default="30")
    # The language of the join and card pages when the visitor has not chosen one with the
    # switch ("en" or "zh-Hant"); NULL lets the browser's Accept-Language decide, as before.
    default_language: Mapped[str | None] = mapped_column(String(8), nullable=True)
    google_class_synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # A stamp card: one stamp per qualifying visit; `stamps_per_reward` stamps issue the offer
    # `stamps_offer_id` (an id of `offers`, checked by the service) and start the card again.
    stamps_enabled: Mapped[bool] = mapped_column(default=False, server_default="0")
    stamps_per_reward: Mapped[int] = mapped_column(Integer, default=10, server_default="10")
    stamps_min_spend_minor: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    stamps_offer_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The referrer's reward coupon, issued with the referral bonuses (an id of `offers`).
    referral_offer_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Tier(Base):
    """A membership level reached by 12-month qualifying spend (minor units) or points."""

    __tablename__ = "tiers"
    __table_args__ = (UniqueConstraint("program_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(
        ForeignKey("programs.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(64))
    threshold: Mapped[int] = mapped_column(BigInteger, default=0)
    multiplier: Mapped[Decimal] = mapped_column(DecimalType(), default=Decimal("1"))
    # Member prices: the discount a POS applies for this tier (0..100), and what the card says.
    member_discount_percent: Mapped[Decimal] = mapped_column(
        DecimalType(), default=Decimal("0"), server_default="0"
    )
    benefits: Mapped[str | None] = mapped_column(Text, nullable=True)


class Reward(Base):
    """Something a member can redeem points for."""

    __tablename__ = "rewards"

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(
        ForeignKey("programs.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    cost_points: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(default=True)
