"""card_messages: several messages per member with expiry and withdrawal; campaigns' message expiry

The new column on campaigns is added in place and nullable (no batch rebuild: campaigns has
children a rebuild would cascade-delete). Messages already on cards stay in cards.message, which
the pass still shows until the member's next message or a clear.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 09:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import walletd.db

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LIVE_WITH_EXPIRY = "withdrawn_at IS NULL AND expires_at IS NOT NULL"


def upgrade() -> None:
    op.create_table(
        "card_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("brand_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("automation_kind", sa.String(length=32), nullable=True),
        sa.Column("event_automation_id", sa.Integer(), nullable=True),
        sa.Column("reward_points", sa.BigInteger(), nullable=True),
        sa.Column("expiring_until", walletd.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", walletd.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", walletd.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("withdrawn_at", walletd.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("withdrawn_reason", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(["brand_id"], ["brands.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_card_messages_brand_id", "card_messages", ["brand_id"])
    op.create_index(
        "uq_card_messages_member_message",
        "card_messages",
        ["member_id", "message_id"],
        unique=True,
    )
    op.create_index(
        "ix_card_messages_due",
        "card_messages",
        ["expires_at"],
        sqlite_where=sa.text(_LIVE_WITH_EXPIRY),
        postgresql_where=sa.text(_LIVE_WITH_EXPIRY),
    )
    op.add_column("campaigns", sa.Column("message_expires_in_days", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("campaigns", "message_expires_in_days")
    op.drop_index("ix_card_messages_due", table_name="card_messages")
    op.drop_index("uq_card_messages_member_message", table_name="card_messages")
    op.drop_index("ix_card_messages_brand_id", table_name="card_messages")
    op.drop_table("card_messages")
