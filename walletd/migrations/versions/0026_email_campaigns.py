"""email_campaigns: e-mail fallback of campaigns and automations (issue 16, part email-campaigns)

Adds `email_fallback` to campaigns, automations and event automations (members without an
installed card get the message by e-mail), `channel` to message_log ("email" for an e-mail,
null for the wallet card) so lift can be split per channel, and a unique index on emails
(campaign_id, member_id): a campaign e-mails a member at most once, even when a chunk is retried.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-04 15:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FALLBACK_TABLES = ("campaigns", "automations", "event_automations")


def upgrade() -> None:
    for table in _FALLBACK_TABLES:
        op.add_column(
            table,
            sa.Column("email_fallback", sa.Boolean(), nullable=False, server_default="0"),
        )
    op.add_column("message_log", sa.Column("channel", sa.String(length=8), nullable=True))
    op.create_index(
        "uq_emails_campaign_member", "emails", ["campaign_id", "member_id"], unique=True
    )


def downgrade() -> None:
    op.drop_index("uq_emails_campaign_member", table_name="emails")
    with op.batch_alter_table("message_log") as batch:
        batch.drop_column("channel")
    for table in reversed(_FALLBACK_TABLES):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("email_fallback")
