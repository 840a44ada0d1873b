"""pass_packages: signed Apple passes stored by (card, update tag) (issue 14, hot paths)

A fetch of a pass whose tag is already signed is served from these bytes by any web process;
the worker signs a card's new pass when it changes, before the push goes out.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-04 15:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import walletd.db

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pass_packages",
        sa.Column("card_id", sa.Integer(), nullable=False),
        sa.Column("update_tag", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("signed_at", walletd.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["card_id"],
            ["cards.id"],
            name=op.f("fk_pass_packages_card_id_cards"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("card_id", name=op.f("pk_pass_packages")),
    )


def downgrade() -> None:
    op.drop_table("pass_packages")
