"""What the hot paths record for delivery health: few statements, written only on change."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Integer,
    String,
    bindparam,
    cast,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from walletd.db import UTCDateTime
from walletd.models import ApnsRefusal, Card, Registration

# Refusal reasons are APNs's short words ("Unregistered", "BadDeviceToken"); longer text is cut.
MAX_REASON = 64


def record_synced(
    session: Session, registration_ids: Sequence[int], *, tag: int, now: datetime
) -> None:
    """The devices of these registrations were handed every change below `tag` at `now`."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(synced_statement(), {"ids": list(registration_ids), "tag": tag, "now": now})
        return
    session.execute(
        update(Registration)
        .where(
            Registration.id.in_(list(registration_ids)),
            or_(Registration.synced_tag.is_(None), Registration.synced_tag < tag),
        )
        .values(synced_tag=tag, synced_at=now)
        .execution_options(synchronize_session=False)
    )


@functools.cache
def synced_statement() -> Any:
    """record_synced on Postgres with parameters `ids` (one array), `tag` and `now`.

    One statement text whatever the number of ids (an IN list is a new text per length);
    walletd/fastpath/apple.py runs its compiled text.
    """
    return (
        update(Registration)
        .where(
            Registration.id == func.any(bindparam("ids", type_=ARRAY(BigInteger))),
            or_(
                Registration.synced_tag.is_(None),
                Registration.synced_tag < bindparam("tag", type_=BigInteger),
            ),
        )
        .values(synced_tag=bindparam("tag"), synced_at=bindparam("now", type_=UTCDateTime()))
        .execution_options(synchronize_session=False)
    )


def record_refusal(
    session: Session,
    token: str,
    *,
    status: int | None,
    reason: str | None,
    campaign_id: int | None,
    now: datetime,
) -> None:
    """APNs refused the push to `token`: one row per card registered with it, in one INSERT."""
    cards = (
        select(
            Card.brand_id,
            Card.id,
            # Casts: Postgres cannot tell a bare NULL parameter's type in a SELECT list.
            cast(literal(campaign_id), Integer),
            cast(literal(status), Integer),
            cast(literal((reason or "unknown")[:MAX_REASON]), String(MAX_REASON)),
            literal(now, ApnsRefusal.refused_at.type),
        )
        .join(Registration, Registration.card_id == Card.id)
        .where(Registration.push_token == token)
        .distinct()
    )
    session.execute(
        insert(ApnsRefusal).from_select(
            ["brand_id", "card_id", "campaign_id", "status", "reason", "refused_at"], cards
        )
    )
