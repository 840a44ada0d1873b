"""google wallet bookkeeping

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 08:44:21.542273
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import walletd.db
import walletd.models.types

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "google_callback_nonces",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("nonce", sa.String(length=200), nullable=False),
        sa.Column("received_at", walletd.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_google_callback_nonces")),
        sa.UniqueConstraint("nonce", name=op.f("uq_google_callback_nonces_nonce")),
    )
    op.create_table(
        "google_notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("card_id", sa.Integer(), nullable=False),
        sa.Column("sent_at", walletd.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["card_id"],
            ["cards.id"],
            name=op.f("fk_google_notifications_card_id_cards"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_google_notifications")),
    )
    with op.batch_alter_table("google_notifications", schema=None) as batch_op:
        batch_op.create_index(
            "ix_google_notifications_card_sent", ["card_id", "sent_at"], unique=False
        )

    with op.batch_alter_table("cards", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("google_synced_at", walletd.db.UTCDateTime(timezone=True), nullable=True)
        )

    with op.batch_alter_table("programs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "google_class_synced_at", walletd.db.UTCDateTime(timezone=True), nullable=True
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("programs", schema=None) as batch_op:
        batch_op.drop_column("google_class_synced_at")

    with op.batch_alter_table("cards", schema=None) as batch_op:
        batch_op.drop_column("google_synced_at")

    with op.batch_alter_table("google_notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_google_notifications_card_sent")

    op.drop_table("google_notifications")
    op.drop_table("google_callback_nonces")
