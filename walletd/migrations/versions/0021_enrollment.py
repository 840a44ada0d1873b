"""enrollment: Apple rewards enrollment (pass personalization) settings and passes (issue 15)

New tables only: apple_enrollments (a program's sign-up sheet and NFC settings),
enrollment_passes (each personalizable pass handed out) and enrollment_registrations (devices
registered for one before it is personalized). Nothing existing is altered.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04 15:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import walletd.db
import walletd.models.types

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "apple_enrollments",
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("brand_id", sa.Integer(), nullable=False),
        sa.Column("settings", walletd.models.types.JSONText(), nullable=False),
        sa.Column("updated_at", walletd.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], ondelete="CASCADE",
            name="fk_apple_enrollments_program_id_programs",
        ),
        sa.ForeignKeyConstraint(
            ["brand_id"], ["brands.id"], ondelete="CASCADE",
            name="fk_apple_enrollments_brand_id_brands",
        ),
        sa.PrimaryKeyConstraint("program_id", name="pk_apple_enrollments"),
    )  # fmt: skip
    op.create_index("ix_apple_enrollments_brand_id", "apple_enrollments", ["brand_id"])
    op.create_table(
        "enrollment_passes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("brand_id", sa.Integer(), nullable=False),
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("serial_number", sa.String(length=64), nullable=False),
        sa.Column("auth_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", walletd.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("personalized_at", walletd.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("card_id", sa.Integer(), nullable=True),
        sa.Column("member_id", sa.Integer(), nullable=True),
        sa.Column("postal_code", sa.String(length=32), nullable=True),
        sa.Column("consent", walletd.models.types.JSONText(), nullable=True),
        sa.ForeignKeyConstraint(
            ["brand_id"], ["brands.id"], ondelete="CASCADE",
            name="fk_enrollment_passes_brand_id_brands",
        ),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], ondelete="CASCADE",
            name="fk_enrollment_passes_program_id_programs",
        ),
        sa.ForeignKeyConstraint(
            ["card_id"], ["cards.id"], ondelete="SET NULL",
            name="fk_enrollment_passes_card_id_cards",
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], ondelete="SET NULL",
            name="fk_enrollment_passes_member_id_members",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_enrollment_passes"),
        sa.UniqueConstraint("serial_number", name="uq_enrollment_passes_serial_number"),
    )  # fmt: skip
    op.create_index("ix_enrollment_passes_brand_id", "enrollment_passes", ["brand_id"])
    op.create_index("ix_enrollment_passes_program_id", "enrollment_passes", ["program_id"])
    op.create_index("ix_enrollment_passes_member_id", "enrollment_passes", ["member_id"])
    op.create_table(
        "enrollment_registrations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pass_id", sa.Integer(), nullable=False),
        sa.Column("library_id", sa.String(length=128), nullable=False),
        sa.Column("push_token", sa.String(length=200), nullable=False),
        sa.Column("created_at", walletd.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", walletd.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["pass_id"], ["enrollment_passes.id"], ondelete="CASCADE",
            name="fk_enrollment_registrations_pass_id_enrollment_passes",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_enrollment_registrations"),
        sa.UniqueConstraint(
            "pass_id", "library_id",
            name="uq_enrollment_registrations_pass_id_library_id",
        ),
    )  # fmt: skip
    op.create_index(
        "ix_enrollment_registrations_pass_id",
        "enrollment_registrations",
        ["pass_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_enrollment_registrations_pass_id", table_name="enrollment_registrations")
    op.drop_table("enrollment_registrations")
    op.drop_index("ix_enrollment_passes_member_id", table_name="enrollment_passes")
    op.drop_index("ix_enrollment_passes_program_id", table_name="enrollment_passes")
    op.drop_index("ix_enrollment_passes_brand_id", table_name="enrollment_passes")
    op.drop_table("enrollment_passes")
    op.drop_index("ix_apple_enrollments_brand_id", table_name="apple_enrollments")
    op.drop_table("apple_enrollments")
