"""email: e-mails (history and content until sent), bouncing addresses, program senders (issue 16)

New tables only: `emails` (one row per e-mail; its outbox row of kind `email` names it),
`email_bounces` (addresses refused for good, per brand) and `email_senders` (a program's from
name, address and reply-to).

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-04 15:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import walletd.db
import walletd.models.types

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    when = walletd.db.UTCDateTime(timezone=True)
    op.create_table(
        "emails",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("brand_id", sa.Integer(), nullable=False),
        sa.Column("program_id", sa.Integer(), nullable=True),
        sa.Column("member_id", sa.Integer(), nullable=True),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("automation_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("to_address", sa.String(length=320), nullable=False),
        sa.Column("from_name", sa.String(length=200), nullable=True),
        sa.Column("from_address", sa.String(length=320), nullable=True),
        sa.Column("reply_to", sa.String(length=320), nullable=True),
        sa.Column("subject", sa.String(length=998), nullable=False),
        sa.Column("text_body", sa.Text(), nullable=True),
        sa.Column("html_body", sa.Text(), nullable=True),
        sa.Column("headers", walletd.models.types.JSONText(), nullable=True),
        sa.Column("inline_images", walletd.models.types.JSONText(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("message_id", sa.String(length=250), nullable=True),
        sa.Column("created_at", when, nullable=False),
        sa.Column("sent_at", when, nullable=True),
        sa.Column("failed_at", when, nullable=True),
        sa.ForeignKeyConstraint(["brand_id"], ["brands.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_emails_brand_id", "emails", ["brand_id"])
    op.create_index("ix_emails_campaign_id", "emails", ["campaign_id"])
    op.create_index("ix_emails_member_id", "emails", ["member_id", "id"])
    op.create_table(
        "email_bounces",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("brand_id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("email_id", sa.Integer(), nullable=True),
        sa.Column("created_at", when, nullable=False),
        sa.ForeignKeyConstraint(["brand_id"], ["brands.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("brand_id", "address", name="uq_email_bounces_address"),
    )
    op.create_index("ix_email_bounces_address", "email_bounces", ["address"])
    op.create_table(
        "email_senders",
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("from_name", sa.String(length=200), nullable=True),
        sa.Column("from_address", sa.String(length=320), nullable=True),
        sa.Column("reply_to", sa.String(length=320), nullable=True),
        sa.Column("updated_at", when, nullable=False),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("program_id"),
    )


def downgrade() -> None:
    op.drop_table("email_senders")
    op.drop_index("ix_email_bounces_address", table_name="email_bounces")
    op.drop_table("email_bounces")
    op.drop_index("ix_emails_member_id", table_name="emails")
    op.drop_index("ix_emails_campaign_id", table_name="emails")
    op.drop_index("ix_emails_brand_id", table_name="emails")
    op.drop_table("emails")
