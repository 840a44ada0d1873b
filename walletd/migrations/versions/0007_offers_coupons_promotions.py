"""offers, coupons, promotions, stamp cards and member prices

Columns are added and dropped in place (SQLite 3.35+): a batch rebuild of cards or members
would cascade-delete their children while SQLite enforces foreign keys.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 04:15:00.721518
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import walletd.db
import walletd.models.types

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "offers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("brand_id", sa.Integer(), nullable=False),
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", walletd.models.types.DecimalType(precision=18, scale=6), nullable=True),
        sa.Column("item", sa.String(length=200), nullable=True),
        sa.Column("tier_values", walletd.models.types.JSONText(), nullable=True),
        sa.Column("min_spend_minor", sa.BigInteger(), nullable=True),
        sa.Column("valid_from", walletd.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("valid_until", walletd.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("valid_days", sa.Integer(), nullable=True),
        sa.Column("per_member_limit", sa.Integer(), nullable=True),
        sa.Column("terms", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("google_class_synced_at", walletd.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", walletd.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", walletd.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["brand_id"], ["brands.id"], name=op.f("fk_offers_brand_id_brands"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["program_id"],
            ["programs.id"],
            name=op.f("fk_offers_program_id_programs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_offers")),
    )
    with op.batch_alter_table("offers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_offers_brand_id"), ["brand_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_offers_program_id"), ["program_id"], unique=False)

    op.create_table(
        "promotions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("brand_id", sa.Integer(), nullable=False),
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "multiplier", walletd.models.types.DecimalType(precision=18, scale=6), nullable=False
        ),
        sa.Column("starts_on", sa.Date(), nullable=True),
        sa.Column("ends_on", sa.Date(), nullable=True),
        sa.Column("weekdays", walletd.models.types.JSONText(), nullable=True),
        sa.Column("tiers", walletd.models.types.JSONText(), nullable=True),
        sa.Column("location_ids", walletd.models.types.JSONText(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", walletd.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", walletd.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brands.id"],
            name=op.f("fk_promotions_brand_id_brands"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["program_id"],
            ["programs.id"],
            name=op.f("fk_promotions_program_id_programs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promotions")),
    )
    with op.batch_alter_table("promotions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_promotions_brand_id"), ["brand_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_promotions_program_id"), ["program_id"], unique=False)

    op.create_table(
        "offer_issues",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("brand_id", sa.Integer(), nullable=False),
        sa.Column("offer_id", sa.Integer(), nullable=False),
        sa.Column("segment", walletd.models.types.JSONText(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("cursor_member_id", sa.Integer(), nullable=False),
        sa.Column("issued", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claimed_until", walletd.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", walletd.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", walletd.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brands.id"],
            name=op.f("fk_offer_issues_brand_id_brands"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["offer_id"],
            ["offers.id"],
            name=op.f("fk_offer_issues_offer_id_offers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_offer_issues")),
    )
    with op.batch_alter_table("offer_issues", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_offer_issues_brand_id"), ["brand_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_offer_issues_offer_id"), ["offer_id"], unique=False)

    op.create_table(
        "coupons",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("brand_id", sa.Integer(), nullable=False),
        sa.Column("offer_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("card_id", sa.Integer(), nullable=True),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("barcode", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("value", walletd.models.types.DecimalType(precision=18, scale=6), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("occasion", sa.String(length=100), nullable=False),
        sa.Column("issued_at", walletd.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", walletd.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("redeemed_at", walletd.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("redeem_key", sa.String(length=200), nullable=True),
        sa.Column("redeem_fingerprint", sa.String(length=64), nullable=True),
        sa.Column("redeemed_scan_id", sa.Integer(), nullable=True),
        sa.Column("purchase_minor", sa.BigInteger(), nullable=True),
        sa.Column("discount_minor", sa.BigInteger(), nullable=True),
        sa.Column("points_awarded", sa.BigInteger(), nullable=True),
        sa.Column("redeemed_api_key_id", sa.Integer(), nullable=True),
        sa.Column("google_synced_at", walletd.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", walletd.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["brand_id"], ["brands.id"], name=op.f("fk_coupons_brand_id_brands"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["card_id"], ["cards.id"], name=op.f("fk_coupons_card_id_cards"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_coupons_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["offer_id"], ["offers.id"], name=op.f("fk_coupons_offer_id_offers"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupons")),
        sa.UniqueConstraint("barcode", name=op.f("uq_coupons_barcode")),
        sa.UniqueConstraint("brand_id", "redeem_key", name=op.f("uq_coupons_brand_id_redeem_key")),
        sa.UniqueConstraint("code", name=op.f("uq_coupons_code")),
        sa.UniqueConstraint(
            "offer_id", "member_id", "occasion", name=op.f("uq_coupons_offer_id_member_id_occasion")
        ),
    )
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_coupons_brand_id"), ["brand_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_coupons_card_id"), ["card_id"], unique=False)
        batch_op.create_index("ix_coupons_member_status", ["member_id", "status"], unique=False)
        batch_op.create_index(batch_op.f("ix_coupons_offer_id"), ["offer_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_coupons_redeemed_scan_id"), ["redeemed_scan_id"], unique=False
        )
        batch_op.create_index(
            "ix_coupons_status_expires_at", ["status", "expires_at"], unique=False
        )

    op.add_column("automations", sa.Column("offer_id", sa.Integer(), nullable=True))
    op.add_column("campaigns", sa.Column("offer_id", sa.Integer(), nullable=True))
    op.add_column("programs", sa.Column("referral_offer_id", sa.Integer(), nullable=True))
    op.add_column(
        "ledger_entries",
        sa.Column("scan_extras", walletd.models.types.JSONText(), nullable=True),
    )

    op.add_column(
        "cards", sa.Column("kind", sa.String(length=16), server_default="loyalty", nullable=False)
    )

    op.add_column("members", sa.Column("stamps", sa.Integer(), server_default="0", nullable=False))

    op.add_column(
        "programs", sa.Column("stamps_enabled", sa.Boolean(), server_default="0", nullable=False)
    )
    op.add_column(
        "programs",
        sa.Column("stamps_per_reward", sa.Integer(), server_default="10", nullable=False),
    )
    op.add_column("programs", sa.Column("stamps_min_spend_minor", sa.BigInteger(), nullable=True))
    op.add_column("programs", sa.Column("stamps_offer_id", sa.Integer(), nullable=True))

    op.add_column(
        "tiers",
        sa.Column(
            "member_discount_percent",
            walletd.models.types.DecimalType(precision=18, scale=6),
            server_default="0",
            nullable=False,
        ),
    )
    op.add_column("tiers", sa.Column("benefits", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("tiers", "benefits")
    op.drop_column("tiers", "member_discount_percent")

    op.drop_column("programs", "stamps_offer_id")
    op.drop_column("programs", "stamps_min_spend_minor")
    op.drop_column("programs", "stamps_per_reward")
    op.drop_column("programs", "stamps_enabled")

    op.drop_column("members", "stamps")

    op.drop_column("cards", "kind")

    op.drop_column("ledger_entries", "scan_extras")
    op.drop_column("automations", "offer_id")
    op.drop_column("campaigns", "offer_id")
    op.drop_column("programs", "referral_offer_id")

    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.drop_index("ix_coupons_status_expires_at")
        batch_op.drop_index(batch_op.f("ix_coupons_redeemed_scan_id"))
        batch_op.drop_index(batch_op.f("ix_coupons_offer_id"))
        batch_op.drop_index("ix_coupons_member_status")
        batch_op.drop_index(batch_op.f("ix_coupons_card_id"))
        batch_op.drop_index(batch_op.f("ix_coupons_brand_id"))

    op.drop_table("coupons")
    with op.batch_alter_table("offer_issues", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_offer_issues_offer_id"))
        batch_op.drop_index(batch_op.f("ix_offer_issues_brand_id"))

    op.drop_table("offer_issues")
    with op.batch_alter_table("promotions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_promotions_program_id"))
        batch_op.drop_index(batch_op.f("ix_promotions_brand_id"))

    op.drop_table("promotions")
    with op.batch_alter_table("offers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_offers_program_id"))
        batch_op.drop_index(batch_op.f("ix_offers_brand_id"))

    op.drop_table("offers")
