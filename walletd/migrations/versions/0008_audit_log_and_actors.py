"""audit log, the actor of ledger entries and campaigns, members' external ids

Columns are added in place (no batch rebuild: members and ledger_entries have children that a
rebuild would cascade-delete while SQLite enforces foreign keys).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 09:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import walletd.db
import walletd.models.types

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("brand_id", sa.Integer(), nullable=False),
        sa.Column("actor_api_key_id", sa.Integer(), nullable=True),
        sa.Column("actor_staff_id", sa.Integer(), nullable=True),
        sa.Column("actor_label", sa.String(length=330), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target_type", sa.String(length=32), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=True),
        sa.Column("changes", walletd.models.types.JSONText(), nullable=True),
        sa.Column("created_at", walletd.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["brand_id"], ["brands.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_log_brand_created", "audit_log", ["brand_id", "created_at"])
    op.add_column("ledger_entries", sa.Column("staff_id", sa.Integer(), nullable=True))
    op.add_column("campaigns", sa.Column("created_by_api_key_id", sa.Integer(), nullable=True))
    op.add_column("campaigns", sa.Column("created_by_staff_id", sa.Integer(), nullable=True))
    op.add_column("members", sa.Column("external_id", sa.String(length=100), nullable=True))
    op.create_index(
        "uq_members_program_external_id", "members", ["program_id", "external_id"], unique=True
    )


def downgrade() -> None:
    op.drop_index("uq_members_program_external_id", table_name="members")
    op.drop_column("members", "external_id")
    op.drop_column("campaigns", "created_by_staff_id")
    op.drop_column("campaigns", "created_by_api_key_id")
    op.drop_column("ledger_entries", "staff_id")
    op.drop_index("ix_audit_log_brand_created", table_name="audit_log")
    op.drop_table("audit_log")
