"""languages: members' preferred language, messages per language (issue 13, part i18n-messages)

Adds members.language and a JSON `messages` column (language -> text) on campaigns,
automations and event_automations: nullable columns added in place on SQLite and Postgres.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import walletd.models.types

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_MESSAGE_TABLES = ("campaigns", "automations", "event_automations")


def upgrade() -> None:
    op.add_column("members", sa.Column("language", sa.String(length=16), nullable=True))
    for table in _MESSAGE_TABLES:
        op.add_column(table, sa.Column("messages", walletd.models.types.JSONText(), nullable=True))


def downgrade() -> None:
    for table in reversed(_MESSAGE_TABLES):
        op.drop_column(table, "messages")
    op.drop_column("members", "language")
