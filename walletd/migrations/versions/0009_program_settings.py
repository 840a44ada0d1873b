"""program settings: quiet hours to the minute (or none), refund window, default language

Quiet hours move from whole hours (`quiet_hours_start/end`, NOT NULL) to minutes after local
midnight (`quiet_start_minute/end_minute`, both NULL for none); a program whose old start equalled
its end had no quiet hours and gets NULLs. Columns are added and dropped in place (no batch
rebuild: programs has children that a rebuild would cascade-delete while SQLite enforces foreign
keys).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 09:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "programs",
        sa.Column("quiet_start_minute", sa.Integer(), nullable=True, server_default="1260"),
    )
    op.add_column(
        "programs",
        sa.Column("quiet_end_minute", sa.Integer(), nullable=True, server_default="540"),
    )
    op.add_column(
        "programs",
        sa.Column("refund_window_days", sa.Integer(), nullable=False, server_default="30"),
    )
    op.add_column(
        "programs",
        sa.Column("default_language", sa.String(length=8), nullable=True),
    )
    op.execute(
        "UPDATE programs SET quiet_start_minute = quiet_hours_start * 60,"
        " quiet_end_minute = quiet_hours_end * 60 WHERE quiet_hours_start <> quiet_hours_end"
    )
    op.execute(
        "UPDATE programs SET quiet_start_minute = NULL, quiet_end_minute = NULL"
        " WHERE quiet_hours_start = quiet_hours_end"
    )
    op.drop_column("programs", "quiet_hours_end")
    op.drop_column("programs", "quiet_hours_start")


def downgrade() -> None:
    op.add_column(
        "programs",
        sa.Column("quiet_hours_start", sa.Integer(), nullable=False, server_default="21"),
    )
    op.add_column(
        "programs",
        sa.Column("quiet_hours_end", sa.Integer(), nullable=False, server_default="9"),
    )
    # Whole hours only: minutes are cut off; no quiet hours is start = end = 0, as it was.
    op.execute(
        "UPDATE programs SET quiet_hours_start = quiet_start_minute / 60,"
        " quiet_hours_end = quiet_end_minute / 60 WHERE quiet_start_minute IS NOT NULL"
    )
    op.execute(
        "UPDATE programs SET quiet_hours_start = 0, quiet_hours_end = 0"
        " WHERE quiet_start_minute IS NULL"
    )
    op.drop_column("programs", "default_language")
    op.drop_column("programs", "refund_window_days")
    op.drop_column("programs", "quiet_end_minute")
    op.drop_column("programs", "quiet_start_minute")
