"""push tokens per registration, device log pruning

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 03:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import walletd.db

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("registrations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("push_token", sa.String(length=200), nullable=True))
        batch_op.add_column(
            sa.Column("updated_at", walletd.db.UTCDateTime(timezone=True), nullable=True)
        )
    # Each registration takes the token its device had, and the device's last confirmation as
    # its own, so APNs 410s keep being judged as before.
    op.execute(
        """UPDATE registrations SET
               push_token = (SELECT d.push_token FROM devices d
                             WHERE d.id = registrations.device_id),
               updated_at = (SELECT d.updated_at FROM devices d
                             WHERE d.id = registrations.device_id)
        """
    )
    op.execute("DELETE FROM registrations WHERE push_token IS NULL")  # no device, no token
    op.execute("UPDATE registrations SET updated_at = created_at WHERE updated_at IS NULL")
    with op.batch_alter_table("registrations", schema=None) as batch_op:
        batch_op.alter_column("push_token", existing_type=sa.String(length=200), nullable=False)
        batch_op.alter_column(
            "updated_at", existing_type=walletd.db.UTCDateTime(timezone=True), nullable=False
        )
        batch_op.create_index(
            batch_op.f("ix_registrations_push_token"), ["push_token"], unique=False
        )
    # Not a batch (copy-and-drop) on SQLite: dropping `devices` there would cascade-delete every
    # registration. ALTER TABLE ... DROP COLUMN is native since SQLite 3.35.
    op.drop_index(op.f("ix_devices_push_token"), table_name="devices")
    op.drop_column("devices", "push_token")
    with op.batch_alter_table("device_logs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_device_logs_created_at"), ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("device_logs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_device_logs_created_at"))
    # Added in place with a default rather than rebuilt as NOT NULL: rebuilding `devices` on
    # SQLite would cascade-delete every registration.
    op.add_column(
        "devices",
        sa.Column("push_token", sa.String(length=200), nullable=False, server_default=""),
    )
    # A device gets back the token of its most recently confirmed registration, and that time.
    op.execute(
        """UPDATE devices SET
               push_token = COALESCE((
                   SELECT r.push_token FROM registrations r WHERE r.device_id = devices.id
                   ORDER BY r.updated_at DESC, r.id DESC LIMIT 1), push_token),
               updated_at = COALESCE((
                   SELECT MAX(r.updated_at) FROM registrations r WHERE r.device_id = devices.id),
                   updated_at)
        """
    )
    op.create_index(op.f("ix_devices_push_token"), "devices", ["push_token"], unique=False)
    with op.batch_alter_table("registrations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_registrations_push_token"))
        batch_op.drop_column("updated_at")
        batch_op.drop_column("push_token")
