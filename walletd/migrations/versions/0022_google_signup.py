"""google_signup: a program's Google Wallet sign-up and store-relevance settings (issue 15)

Adds the table program_discovery (one row per program at most): whether the Google loyalty class
offers sign-up from Google Wallet, the data Google shares, the discoverable program's state, and
the lock-screen text and maximum distance of the stores on the program's Apple passes. The
stores themselves are the brand's locations, whose coordinates already exist (0010).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-04 15:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import walletd.db

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "program_discovery",
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("google_signup_enabled", sa.Boolean(), nullable=False),
        sa.Column("google_signup_shared_data", sa.String(length=200), nullable=False),
        sa.Column("google_signup_state", sa.String(length=16), nullable=False),
        sa.Column("location_relevant_text", sa.String(length=100), nullable=True),
        sa.Column("location_max_distance", sa.Integer(), nullable=True),
        sa.Column("updated_at", walletd.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("program_id"),
    )


def downgrade() -> None:
    op.drop_table("program_discovery")
