"""points as 64-bit integers, referral qualifying purchase and clawback, client idempotency keys

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 03:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _foreign_keys_off_on_sqlite() -> None:
    """Stop SQLite enforcing foreign keys on this connection while tables are rebuilt."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    # SQLite changes a column type by copying the table and dropping the old one; with foreign
    # keys enforced that DROP cascades, deleting every card and ledger row of every member.
    # The pragma is ignored inside a transaction, so end Alembic's (the earlier revisions are
    # complete), switch enforcement off for this connection and begin again; the connection is
    # closed after the upgrade and new ones switch enforcement back on (walletd.db).
    raw = bind.connection.dbapi_connection
    assert raw is not None
    raw.execute("COMMIT")
    raw.execute("PRAGMA foreign_keys=OFF")
    raw.execute("BEGIN IMMEDIATE")


def _check_foreign_keys_on_sqlite() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        broken = bind.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise RuntimeError(f"foreign keys broken by the table rebuild: {broken[:5]}")


def upgrade() -> None:
    _foreign_keys_off_on_sqlite()
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.alter_column(
            "points", existing_type=sa.Integer(), type_=sa.BigInteger(), existing_nullable=False
        )

    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        for column, nullable in (("points", False), ("balance_after", True), ("remaining", False)):
            batch_op.alter_column(
                column,
                existing_type=sa.Integer(),
                type_=sa.BigInteger(),
                existing_nullable=nullable,
            )
        batch_op.add_column(sa.Column("internal_key", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("earned_by_id", sa.Integer(), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f("uq_ledger_entries_brand_id_internal_key"), ["brand_id", "internal_key"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_ledger_entries_earned_by_id_ledger_entries"),
            "ledger_entries",
            ["earned_by_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_index(
            batch_op.f("ix_ledger_entries_earned_by_id"), ["earned_by_id"], unique=False
        )

    # Keys walletd derived itself (bonuses) were stored beside clients' keys; they are the rows
    # without a request fingerprint, which every client scan and redemption carries.
    op.execute(
        "UPDATE ledger_entries SET internal_key = idempotency_key, idempotency_key = NULL "
        "WHERE request_hash IS NULL AND idempotency_key IS NOT NULL"
    )

    with op.batch_alter_table("programs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "referral_min_purchase_minor",
                sa.BigInteger(),
                server_default="0",
                nullable=False,
            )
        )
    _check_foreign_keys_on_sqlite()


def downgrade() -> None:
    _foreign_keys_off_on_sqlite()
    with op.batch_alter_table("programs", schema=None) as batch_op:
        batch_op.drop_column("referral_min_purchase_minor")

    # A client key that now equals an internal one keeps its place; the internal key yields
    # (its bonus is paid already, so only the once-guard is lost).
    op.execute(
        "UPDATE ledger_entries SET idempotency_key = internal_key "
        "WHERE internal_key IS NOT NULL AND NOT EXISTS ("
        "SELECT 1 FROM ledger_entries AS other WHERE other.brand_id = ledger_entries.brand_id "
        "AND other.idempotency_key = ledger_entries.internal_key)"
    )

    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_entries_earned_by_id"))
        batch_op.drop_constraint(
            batch_op.f("fk_ledger_entries_earned_by_id_ledger_entries"), type_="foreignkey"
        )
        batch_op.drop_constraint(
            batch_op.f("uq_ledger_entries_brand_id_internal_key"), type_="unique"
        )
        batch_op.drop_column("earned_by_id")
        batch_op.drop_column("internal_key")
        for column, nullable in (("points", False), ("balance_after", True), ("remaining", False)):
            batch_op.alter_column(
                column,
                existing_type=sa.BigInteger(),
                type_=sa.Integer(),
                existing_nullable=nullable,
            )

    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.alter_column(
            "points", existing_type=sa.BigInteger(), type_=sa.Integer(), existing_nullable=False
        )
    _check_foreign_keys_on_sqlite()
