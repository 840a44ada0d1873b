"""email_links: one-time recovery links e-mailed to members (issue 16, part email-links)

Adds recovery_links (only the hash of each token, its expiry and when it was used). Staff
invitations and password resets keep using staff_password_tokens.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-04 15:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import walletd.db

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "recovery_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("brand_id", sa.Integer(), nullable=False),
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", walletd.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", walletd.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", walletd.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["brand_id"], ["brands.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_recovery_links_member_id", "recovery_links", ["member_id"])


def downgrade() -> None:
    op.drop_index("ix_recovery_links_member_id", table_name="recovery_links")
    op.drop_table("recovery_links")
