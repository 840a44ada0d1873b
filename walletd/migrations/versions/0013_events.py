"""events: what members did in the brand's other systems, and the automations they trigger

New tables only: nothing existing is altered.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 09:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import walletd.db
import walletd.models.types

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("brand_id", sa.Integer(), nullable=False),
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("properties", sa.Text(), nullable=True),
        sa.Column("occurred_at", walletd.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("received_at", walletd.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("client_id", sa.String(length=200), nullable=True),
        sa.Column("request_hash", sa.String(length=64), nullable=True),
        sa.Column("answer", walletd.models.types.JSONText(), nullable=True),
        sa.ForeignKeyConstraint(["brand_id"], ["brands.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("brand_id", "client_id", name="uq_events_brand_client_id"),
    )
    op.create_index(
        "ix_events_member_type_occurred", "events", ["member_id", "type", "occurred_at"]
    )
    op.create_table(
        "event_automations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("brand_id", sa.Integer(), nullable=False),
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("trigger_event", sa.String(length=64), nullable=False),
        sa.Column("delay_minutes", sa.Integer(), nullable=False),
        sa.Column("cancel_events", walletd.models.types.JSONText(), nullable=False),
        sa.Column("cancel_on_purchase", sa.Boolean(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("offer_id", sa.Integer(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("marketing", sa.Boolean(), nullable=False),
        sa.Column("created_at", walletd.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", walletd.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["brand_id"], ["brands.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_event_automations_brand_id", "event_automations", ["brand_id"])
    op.create_index(
        "ix_event_automations_trigger", "event_automations", ["program_id", "trigger_event"]
    )
    op.create_table(
        "event_automation_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("automation_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("due_at", walletd.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("cancelled_by_event_id", sa.Integer(), nullable=True),
        sa.Column("created_at", walletd.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_at", walletd.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["automation_id"], ["event_automations.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "uq_event_automation_runs_pending",
        "event_automation_runs",
        ["automation_id", "member_id"],
        unique=True,
        sqlite_where=sa.text("status = 'scheduled'"),
        postgresql_where=sa.text("status = 'scheduled'"),
    )
    op.create_index("ix_event_automation_runs_due", "event_automation_runs", ["status", "due_at"])
    op.create_index("ix_event_automation_runs_member_id", "event_automation_runs", ["member_id"])
    op.create_index("ix_event_automation_runs_event_id", "event_automation_runs", ["event_id"])


def downgrade() -> None:
    op.drop_index("ix_event_automation_runs_event_id", table_name="event_automation_runs")
    op.drop_index("ix_event_automation_runs_member_id", table_name="event_automation_runs")
    op.drop_index("ix_event_automation_runs_due", table_name="event_automation_runs")
    op.drop_index("uq_event_automation_runs_pending", table_name="event_automation_runs")
    op.drop_table("event_automation_runs")
    op.drop_index("ix_event_automations_trigger", table_name="event_automations")
    op.drop_index("ix_event_automations_brand_id", table_name="event_automations")
    op.drop_table("event_automations")
    op.drop_index("ix_events_member_type_occurred", table_name="events")
    op.drop_table("events")
