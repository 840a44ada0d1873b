"""member_lifecycle: indexes for GET /api/v1/members (keyset by brand and id, phone, tier)

Indexes only, created in place (no table rebuild: members has children). No unique index on
(program_id, lower(email)) or (program_id, phone): existing databases may hold duplicates, so
the duplicate guard is a check in the enrolling or editing transaction instead.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 09:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_members_brand_id_id", "members", ["brand_id", "id"])
    op.create_index("ix_members_brand_id_phone", "members", ["brand_id", "phone"])
    op.create_index("ix_members_tier_id_id", "members", ["tier_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_members_tier_id_id", table_name="members")
    op.drop_index("ix_members_brand_id_phone", table_name="members")
    op.drop_index("ix_members_brand_id_id", table_name="members")
