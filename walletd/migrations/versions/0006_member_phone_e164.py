"""members' phones in E.164 and lookups by indexed equality

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 03:30:00.000000
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import phonenumbers
import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHUNK = 1000
_members = sa.table(
    "members",
    sa.column("id", sa.Integer),
    sa.column("phone", sa.String),
    sa.column("email", sa.String),
)


def _e164(text: str, region: str) -> str | None:
    # A copy of walletd.loyalty.members.find_phone as it was when this migration was written:
    # a migration must give the same result whatever the application code becomes later.
    if len(text) > 64:
        return None
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _normalise_phones() -> None:
    # Migrations run outside the app, so the region is read from the variable the app reads.
    region = os.environ.get("WALLETD_DEFAULT_PHONE_REGION", "").strip().upper() or "TW"
    if region not in phonenumbers.SUPPORTED_REGIONS:
        region = "TW"
    bind = op.get_bind()
    update = (
        _members.update()
        .where(_members.c.id == sa.bindparam("member_id"))
        .values(phone=sa.bindparam("e164"))
    )
    last = 0
    while True:
        rows = bind.execute(
            sa.select(_members.c.id, _members.c.phone)
            .where(_members.c.phone.is_not(None), _members.c.id > last)
            .order_by(_members.c.id)
            .limit(_CHUNK)
        ).all()
        if not rows:
            return
        changes = []
        for member_id, phone in rows:
            e164 = _e164(phone, region)
            # What does not parse is kept as typed: staff still see it, recovery cannot match it.
            if e164 is not None and e164 != phone:
                changes.append({"member_id": member_id, "e164": e164})
        if changes:
            bind.execute(update, changes)
        last = rows[-1][0]


def upgrade() -> None:
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_members_phone"))
        batch_op.create_index("ix_members_program_id_phone", ["program_id", "phone"], unique=False)
    _normalise_phones()
    # Enrollment always stored e-mails in lower case; make sure no older row escapes the equality.
    op.execute(
        _members.update()
        .where(_members.c.email.is_not(None), _members.c.email != sa.func.lower(_members.c.email))
        .values(email=sa.func.lower(_members.c.email))
    )


def downgrade() -> None:
    # The phones stay in E.164: a valid spelling of the same numbers, and within the column.
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_index("ix_members_program_id_phone")
        batch_op.create_index(batch_op.f("ix_members_phone"), ["phone"], unique=False)
