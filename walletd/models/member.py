"""Members and their cards."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from walletd.db import Base, UTCDateTime, utcnow


class Member(Base):
    """A customer enrolled in a program; `points` is a cached sum of the ledger."""

    __tablename__ = "members"
    # Lost-card recovery looks a phone up by equality within one program.
    __table_args__ = (
        Index("ix_members_program_id_phone", "program_id", "phone"),
        # The id the brand's other system (or the one it moved from) knows the member by.
        # A unique index, not a constraint: SQLite adds it without rebuilding the table.
        Index("uq_members_program_external_id", "program_id", "external_id", unique=True),
        # GET /api/v1/members (migration 0014): keyset pages of one brand by id, the phone
        # filter without a program, and the tier filter.
        Index("ix_members_brand_id_id", "brand_id", "id"),
        Index("ix_members_brand_id_phone", "brand_id", "phone"),
        Index("ix_members_tier_id_id", "tier_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    program_id: Mapped[int] = mapped_column(
        ForeignKey("programs.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320), nullable=True, index=True)
    # E.164 (`+886912345678`); rows from before migration 0006 that did not parse keep their text.
    phone: Mapped[str | None] = mapped_column(String(32), nullable=True)
    external_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    birthday: Mapped[date | None] = mapped_column(Date, nullable=True)
    marketing_consent: Mapped[bool] = mapped_column(default=False)
    referral_code: Mapped[str] = mapped_column(String(16), unique=True)
    referred_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id", ondelete="SET NULL"), nullable=True
    )
    tier_id: Mapped[int | None] = mapped_column(
        ForeignKey("tiers.id", ondelete="SET NULL"), nullable=True
    )
    # Negative only while a member owes clawed-back referral points (see ledger.reverse_scan).
    points: Mapped[int] = mapped_column(BigInteger, default=0)
    lifetime_spend_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    visits: Mapped[int] = mapped_column(Integer, default=0)
    first_visit_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_visit_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_birthday_bonus_year: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Stamps on the program's stamp card since the last completed one.
    stamps: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The language messages reach the member in ("en", "zh-Hant"); None: the program's default.
    language: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # Set when the person was erased (walletd/privacy/erasure.py): the row stays so the ledger
    # keeps the brand's totals, but no route or page finds the member any more.
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ConsentChange(Base):
    """One change of a member's marketing consent: when, to what, and through which channel."""

    __tablename__ = "consent_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    consent: Mapped[bool] = mapped_column()
    # "card_page" (the member), "api" / "dashboard" (the brand), "erasure".
    source: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Card(Base):
    """A member's wallet card; serial and authentication token never change."""

    __tablename__ = "cards"

    id: Mapped[int] = mapped_column(primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    # "loyalty": the member's card; "coupon": the Apple pass of one coupon (see Coupon.card_id).
    kind: Mapped[str] = mapped_column(String(16), default="loyalty", server_default="loyalty")
    serial_number: Mapped[str] = mapped_column(String(64), unique=True)
    auth_token: Mapped[str] = mapped_column(String(64))
    barcode: Mapped[str] = mapped_column(String(128), unique=True)
    # Monotonic per-database change counter; the Apple lastUpdated tag and the pass cache key.
    update_tag: Mapped[int] = mapped_column(BigInteger, default=0, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    message_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # When walletd last wrote the Google object; None until it exists at Google.
    google_synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    google_saved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    google_deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # [delivery] The campaign that made the card's current version (None: any other change);
    # set with the tag in touch_cards, so the delivery report can follow a campaign.
    change_campaign_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
