"""The cashier's view of a checkout: the scan or redemption, the member and their rewards."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from walletd.loyalty import ledger
from walletd.loyalty.context import Context
from walletd.loyalty.programs import redeemable_rewards
from walletd.models import Member, Program


def _member_summary(session: Session, member_id: int) -> dict[str, Any]:
    member = session.get_one(Member, member_id)
    program = session.get_one(Program, member.program_id)
    return {
        "name": member.name,
        "points": member.points,
        "currency": program.currency,
        "rewards": [
            {"id": r.id, "name": r.name, "cost_points": r.cost_points}
            for r in redeemable_rewards(session, member.program_id, member.points)
        ],
    }


def scan_at_till(
    session: Session,
    actor: ledger.Actor,
    *,
    barcode: object,
    amount: object,
    idempotency_key: str | None,
    ctx: Context,
) -> dict[str, Any]:
    """Credit a scan exactly once and describe the member for the cashier's screen."""
    outcome = ledger.credit_scan(
        session,
        actor,
        barcode=barcode,
        amount=amount,
        currency=None,
        location_id=None,
        idempotency_key=idempotency_key,
        ctx=ctx,
    )
    summary = _member_summary(session, outcome.body["member_id"])
    return {**outcome.body, **summary, "replayed": outcome.replayed}


def redeem_at_till(
    session: Session,
    actor: ledger.Actor,
    *,
    barcode: object,
    reward_id: object,
    idempotency_key: str | None,
    ctx: Context,
) -> dict[str, Any]:
    """Redeem a reward exactly once and describe what the member has left."""
    outcome = ledger.redeem(
        session,
        actor,
        barcode=barcode,
        points=None,
        reward_id=reward_id,
        idempotency_key=idempotency_key,
        ctx=ctx,
    )
    summary = _member_summary(session, outcome.body["member_id"])
    return {**outcome.body, **summary, "replayed": outcome.replayed}
