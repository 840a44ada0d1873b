"""member imports: the job table and the chunks of validated rows its worker applies

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 09:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import walletd.db
import walletd.models.types

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "member_imports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("brand_id", sa.Integer(), nullable=False),
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=True),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("processed", sa.Integer(), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("error_count", sa.Integer(), nullable=False),
        sa.Column("errors", walletd.models.types.JSONText(), nullable=True),
        sa.Column("chunks", sa.Integer(), nullable=False),
        sa.Column("cursor", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("created_by_api_key_id", sa.Integer(), nullable=True),
        sa.Column("created_by_staff_id", sa.Integer(), nullable=True),
        sa.Column("created_by_label", sa.String(length=330), nullable=False),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claimed_until", walletd.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", walletd.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", walletd.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", walletd.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["brand_id"], ["brands.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_member_imports_brand_id", "member_imports", ["brand_id"])
    op.create_index("ix_member_imports_program_id", "member_imports", ["program_id"])
    op.create_table(
        "member_import_chunks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("import_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("rows", walletd.models.types.JSONText(), nullable=False),
        sa.ForeignKeyConstraint(["import_id"], ["member_imports.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("import_id", "seq"),
    )


def downgrade() -> None:
    op.drop_table("member_import_chunks")
    op.drop_index("ix_member_imports_program_id", table_name="member_imports")
    op.drop_index("ix_member_imports_brand_id", table_name="member_imports")
    op.drop_table("member_imports")
