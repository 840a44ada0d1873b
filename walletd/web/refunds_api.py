"""Refunds under /api/v1: refund a scan in part or in full, reverse a redemption."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from walletd.refunds import refund_scan, reverse_redemption
from walletd.web.auth import principal
from walletd.web.deps import context, json_body, run_in_transaction
from walletd.web.endpoint import Header, endpoint, validate
from walletd.web.schemas import Amount, Reply, Request

bp = Blueprint("refunds", __name__, url_prefix="/api/v1")
TILL = ("cashier", "admin")
# Refunds take an Idempotency-Key but do not need one: without it, refunding a scan that is
# already refunded in full, or reversing a redemption twice, answers 409 already_reversed.
IDEMPOTENCY_KEY = Header(
    "Idempotency-Key",
    "optional: a retry with the same key replays the first answer (200); another body is a 409",
)


class RefundCreate(Request):
    """A partial refund: the amount given back (no body, or no amount: the rest of the scan)."""

    amount: Amount | None = None


class RefundOut(Reply):
    """A refund: what it gave back, the points taken back, and what is left of the scan."""

    scan_id: int
    member_id: int
    reversal_id: int
    points_reversed: int
    shortfall: int
    balance: int
    tier: str | None
    amount: str
    refunded_total: str
    remaining_amount: str
    currency: str
    partial: bool


class RedemptionReversalOut(Reply):
    """A reversed redemption: the points given back as a new lot."""

    redemption_id: int
    member_id: int
    reversal_id: int
    points_restored: int
    balance: int


def _refund_body() -> RefundCreate:
    """The optional body: nothing at all means a full refund of the rest."""
    if not request.get_data(cache=True).strip():
        return RefundCreate()
    return validate(RefundCreate, json_body())  # type: ignore[return-value]


def _limited() -> bool:
    # Cashier keys refund only within the program's refund window; admins any time.
    return principal().role != "admin"


@bp.post("/scans/<int:scan_id>/reversal")
@endpoint(
    'Refund a scan, in part ({"amount"}) or the rest in full (no body); cashier keys within'
    " the program's refund window",
    tag="scans",
    roles=TILL,
    body_doc=RefundCreate,
    body_optional=True,
    response=RefundOut,
    status=201,
    headers=(IDEMPOTENCY_KEY,),
    other_responses={
        200: "a replay: the first answer",
        409: "already refunded in full, or the Idempotency-Key was used for another request",
    },
)
def refund(scan_id: int) -> tuple[dict[str, Any], int]:
    """Refund a scan (partly or in full) with a compensating entry."""
    body = _refund_body()
    actor = principal().actor
    key = request.headers.get("Idempotency-Key")
    limited = _limited()
    outcome = run_in_transaction(
        lambda s: refund_scan(
            s, actor, scan_id, context(), amount=body.amount, idempotency_key=key,
            within_refund_window=limited,
        )
    )  # fmt: skip
    return outcome.body, 200 if outcome.replayed else 201


@bp.post("/redemptions/<int:redemption_id>/reversal")
@endpoint(
    "Reverse a redemption: its points come back as a new lot; cashier keys within the"
    " program's refund window",
    tag="scans",
    roles=TILL,
    response=RedemptionReversalOut,
    status=201,
    headers=(IDEMPOTENCY_KEY,),
    other_responses={
        200: "a replay: the first answer",
        409: "already reversed, or the Idempotency-Key was used for another request",
    },
)
def reverse(redemption_id: int) -> tuple[dict[str, Any], int]:
    """Give a redemption's points back exactly once."""
    actor = principal().actor
    key = request.headers.get("Idempotency-Key")
    limited = _limited()
    outcome = run_in_transaction(
        lambda s: reverse_redemption(
            s, actor, redemption_id, context(), idempotency_key=key, within_refund_window=limited
        )
    )
    return outcome.body, 200 if outcome.replayed else 201
