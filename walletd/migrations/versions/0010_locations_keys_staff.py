"""locations (address, coordinates, time zone), API keys (last use, location), staff accounts
(name, disabled, session epoch) and one-time set-password links

Columns are added in place (no batch rebuild: staff_users, api_keys and locations are existing
tables that a rebuild could cascade through). New columns are nullable or have a server default;
api_keys.location_id is a plain id (no new foreign key on an existing table).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 09:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import walletd.db

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("locations", sa.Column("address", sa.String(length=500), nullable=True))
    op.add_column("locations", sa.Column("latitude", sa.Numeric(9, 6), nullable=True))
    op.add_column("locations", sa.Column("longitude", sa.Numeric(10, 6), nullable=True))
    op.add_column("locations", sa.Column("timezone", sa.String(length=64), nullable=True))
    op.add_column(
        "locations", sa.Column("updated_at", walletd.db.UTCDateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "api_keys", sa.Column("last_used_at", walletd.db.UTCDateTime(timezone=True), nullable=True)
    )
    op.add_column("api_keys", sa.Column("location_id", sa.Integer(), nullable=True))
    op.add_column("staff_users", sa.Column("name", sa.String(length=200), nullable=True))
    op.add_column(
        "staff_users",
        sa.Column("disabled_at", walletd.db.UTCDateTime(timezone=True), nullable=True),
    )
    op.add_column(
        "staff_users",
        sa.Column("session_epoch", sa.Integer(), server_default="0", nullable=False),
    )
    op.create_table(
        "staff_password_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", walletd.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", walletd.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", walletd.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["staff_id"], ["staff_users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_staff_password_tokens_staff_id", "staff_password_tokens", ["staff_id"])


def downgrade() -> None:
    op.drop_index("ix_staff_password_tokens_staff_id", table_name="staff_password_tokens")
    op.drop_table("staff_password_tokens")
    op.drop_column("staff_users", "session_epoch")
    op.drop_column("staff_users", "disabled_at")
    op.drop_column("staff_users", "name")
    op.drop_column("api_keys", "location_id")
    op.drop_column("api_keys", "last_used_at")
    op.drop_column("locations", "updated_at")
    op.drop_column("locations", "timezone")
    op.drop_column("locations", "longitude")
    op.drop_column("locations", "latitude")
    op.drop_column("locations", "address")
