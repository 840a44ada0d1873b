"""delivery: what each device and Google object has of a card's changes (issue 15, part delivery)

Adds registrations.synced_tag/synced_at (the newest version of its card a device was handed,
recorded by the Apple list call only when it moves), cards.change_campaign_id (the campaign that
made the card's current version, written by the same UPDATE that assigns the tag) and the table
apns_refusals (one row per card when APNs refuses a push). Nullable columns added in place on
SQLite and Postgres.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-04 15:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import walletd.db

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("registrations", sa.Column("synced_tag", sa.BigInteger(), nullable=True))
    op.add_column(
        "registrations",
        sa.Column("synced_at", walletd.db.UTCDateTime(timezone=True), nullable=True),
    )
    op.add_column("cards", sa.Column("change_campaign_id", sa.Integer(), nullable=True))
    op.create_index("ix_cards_change_campaign_id", "cards", ["change_campaign_id"])
    op.create_table(
        "apns_refusals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("brand_id", sa.Integer(), nullable=False),
        sa.Column("card_id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("refused_at", walletd.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["brand_id"], ["brands.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["card_id"], ["cards.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_apns_refusals_brand_refused", "apns_refusals", ["brand_id", "refused_at"])
    op.create_index("ix_apns_refusals_card_id", "apns_refusals", ["card_id"])


def downgrade() -> None:
    op.drop_index("ix_apns_refusals_card_id", table_name="apns_refusals")
    op.drop_index("ix_apns_refusals_brand_refused", table_name="apns_refusals")
    op.drop_table("apns_refusals")
    op.drop_index("ix_cards_change_campaign_id", table_name="cards")
    op.drop_column("cards", "change_campaign_id")
    op.drop_column("registrations", "synced_at")
    op.drop_column("registrations", "synced_tag")
