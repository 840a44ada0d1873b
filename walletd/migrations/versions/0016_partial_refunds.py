"""partial refunds: several refunds per scan, the refunded total on the scan, shortfalls

`reverses_id` stays unique and keeps its meaning for scans: the refund that completes a scan's
refund names it there, so two concurrent "refund the rest" requests still meet a unique index.
Every refund of a scan (partial or completing) names the scan in the new, non-unique
`refund_of_id`; the scan keeps the total refunded so far in `refunded_minor`, which reports read
without a join. Columns are added in place: a batch rebuild of ledger_entries (a table with
children, itself among them) would cascade-delete rows while SQLite enforces foreign keys, and
no new foreign key is added to an existing table (plain ids, as 0007/0008 do).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 09:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("ledger_entries", sa.Column("refund_of_id", sa.Integer(), nullable=True))
    op.add_column("ledger_entries", sa.Column("refunded_minor", sa.BigInteger(), nullable=True))
    op.add_column("ledger_entries", sa.Column("shortfall", sa.BigInteger(), nullable=True))
    op.create_index(
        op.f("ix_ledger_entries_refund_of_id"), "ledger_entries", ["refund_of_id"], unique=False
    )
    # Reversals made before partial refunds existed refunded their scan in full.
    op.execute(
        "UPDATE ledger_entries SET refund_of_id = reverses_id WHERE kind = 'reversal'"
        " AND reverses_id IN (SELECT e.id FROM ledger_entries e WHERE e.kind = 'earn')"
    )
    op.execute(
        "UPDATE ledger_entries SET refunded_minor = COALESCE(amount_minor, 0) WHERE kind = 'earn'"
        " AND id IN (SELECT r.reverses_id FROM ledger_entries r WHERE r.kind = 'reversal'"
        " AND r.reverses_id IS NOT NULL)"
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_ledger_entries_refund_of_id"), table_name="ledger_entries")
    op.drop_column("ledger_entries", "shortfall")
    op.drop_column("ledger_entries", "refunded_minor")
    op.drop_column("ledger_entries", "refund_of_id")
