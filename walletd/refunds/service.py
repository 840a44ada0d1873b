"""Refunds: partial and full refunds of scans, and reversals of redemptions.

A scan may be refunded in several parts until its whole amount is refunded. Each refund is a
ledger entry of kind "reversal" naming the scan in `refund_of_id`; the one that completes the
scan also names it in `reverses_id` (a unique column: two concurrent "refund the rest" requests
cannot both succeed). The scan itself keeps the total refunded so far in `refunded_minor`, which
the reports read to count net revenue and to leave fully refunded purchases out of visits.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from walletd.audit import Actor, record
from walletd.errors import (
    AlreadyReversedError,
    IdempotencyConflictError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from walletd.loyalty.cards import cards_of_member, touch_cards
from walletd.loyalty.context import Context

# The ledger's own building blocks: a refund is a ledger operation that lives in its own module.
from walletd.loyalty.ledger import (
    MAX_BALANCE,
    Outcome,
    ScanExtras,
    _append,
    _check_key,
    _claw_back_bonuses,
    _integer,
    _may_exist,
    _rank,
    _tier_name,
    _tiers,
    lock_member,
    qualifying_value,
    request_fingerprint,
)
from walletd.loyalty.money import format_minor, parse_amount
from walletd.loyalty.rules import tier_for
from walletd.models import Coupon, LedgerEntry, Member, Offer, Program
from walletd.models.ledger import is_visit
from walletd.webhooks import events as webhook_events


def points_due(points: int, amount_minor: int, refunded_minor: int) -> int:
    """Points a scan owes back once `refunded_minor` of its `amount_minor` is refunded in all.

    ceil(points × refunded / amount): rounded in the member's disfavour by less than one point,
    and cumulative, so the refunds of one scan together never take back more than it earned.
    """
    if points <= 0:
        return 0
    if amount_minor <= 0 or refunded_minor >= amount_minor:
        return points if refunded_minor >= amount_minor else 0
    return -(-points * refunded_minor // amount_minor)


def _program_of(session: Session, member_id: int) -> Program:
    return session.scalars(
        select(Program).join(Member, Member.program_id == Program.id).where(Member.id == member_id)
    ).one()


def _check_window(program: Program, created_at: datetime, ctx: Context, what: str) -> None:
    """Cashiers may undo an operation only within the program's refund window."""
    if created_at < ctx.now - timedelta(days=program.refund_window_days):
        raise PermissionDeniedError(
            f"this {what} is older than the {program.refund_window_days}-day refund window"
            " for cashiers; an admin can still reverse it"
        )


def _optional_key(idempotency_key: object) -> str | None:
    """The Idempotency-Key when one was sent (refunds take one, but do not require it)."""
    if idempotency_key is None or (
        isinstance(idempotency_key, str) and not idempotency_key.strip()
    ):
        return None
    return _check_key(idempotency_key)


def _keyed_entry(session: Session, brand_id: int, key: str | None) -> LedgerEntry | None:
    if key is None:
        return None
    return session.scalar(
        select(LedgerEntry).where(
            LedgerEntry.brand_id == brand_id, LedgerEntry.idempotency_key == key
        )
    )


def _flush_keyed(session: Session) -> None:
    """Flush; a key taken by a concurrent request of another member is a 409, not a 500."""
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise IdempotencyConflictError(
            "this Idempotency-Key was already used for a different request"
        ) from exc


def refund_body(session: Session, entry: LedgerEntry) -> dict[str, Any]:
    """The answer to a refund, rebuilt from its entry (so a replay answers the same)."""
    scan = session.get_one(LedgerEntry, entry.refund_of_id)
    currency = scan.currency or "USD"
    total = scan.amount_minor or 0
    refunded = -int(
        session.scalar(
            select(func.coalesce(func.sum(LedgerEntry.amount_minor), 0)).where(
                LedgerEntry.refund_of_id == scan.id, LedgerEntry.id <= entry.id
            )
        )
        or 0
    )
    full = entry.reverses_id == scan.id
    return {
        "scan_id": scan.id,
        "member_id": entry.member_id,
        "reversal_id": entry.id,
        "points_reversed": -entry.points,
        "shortfall": entry.shortfall or 0,
        "balance": entry.balance_after if entry.balance_after is not None else 0,
        "tier": entry.tier_after,
        "amount": format_minor(-(entry.amount_minor or 0), currency),
        "refunded_total": format_minor(refunded, currency),
        "remaining_amount": format_minor(max(0, total - refunded), currency),
        "currency": currency,
        "partial": not full,
    }


def refund_scan(
    session: Session,
    actor: Actor,
    scan_id: object,
    ctx: Context,
    *,
    amount: object = None,
    idempotency_key: object = None,
    within_refund_window: bool = False,
) -> Outcome:
    """Refund a scan in part (`amount`) or the rest of it in full (no amount).

    Points come back in proportion (cumulative ceil, at most the scan's points) as far as the
    balance holds, the rest recorded as `shortfall`; lifetime spend falls by the amount; the tier
    is re-evaluated at once (down only); a full refund also takes back the visit, the stamp
    (unless a card was completed since) and restores discount coupons redeemed with the scan;
    referral bonuses the purchase earned are clawed back once it no longer qualifies for them.
    """
    wanted = _integer(scan_id, "scan_id", "scan_id must be an integer")
    key = _optional_key(idempotency_key)
    original = session.scalar(
        select(LedgerEntry).where(
            LedgerEntry.id == wanted,
            LedgerEntry.brand_id == actor.brand_id,
            LedgerEntry.kind == "earn",
        )
    ) if _may_exist(wanted) else None  # fmt: skip
    if original is None:
        raise NotFoundError("scan not found")
    program = _program_of(session, original.member_id)
    if within_refund_window:
        _check_window(program, original.created_at, ctx, "scan")
    currency = original.currency or program.currency
    amount_minor = None if amount is None else parse_amount(amount, currency)
    fingerprint = request_fingerprint("refund", {"scan": original.id, "amount": amount_minor})
    # The member's row lock serialises refunds of one scan: the second sees the first's total.
    member = lock_member(session, original.member_id)
    session.refresh(original)
    used = _keyed_entry(session, actor.brand_id, key)
    if used is not None:
        if used.kind != "reversal" or used.request_hash != fingerprint:
            raise IdempotencyConflictError(
                "this Idempotency-Key was already used for a different request"
            )
        return Outcome(body=refund_body(session, used), replayed=True)
    total = original.amount_minor or 0
    before = original.refunded_minor or 0
    fully_refunded = original.refunded_minor is not None and before >= total
    if fully_refunded or session.scalar(
        select(LedgerEntry.id).where(LedgerEntry.reverses_id == original.id)
    ):
        raise AlreadyReversedError("this scan was already refunded in full")
    rest = total - before
    if amount_minor is None:
        amount_minor = rest
    elif amount_minor > rest:
        raise ValidationError(
            f"at most {format_minor(rest, currency)} {currency} of this scan is left to refund",
            field="amount",
        )
    after = before + amount_minor
    full = after >= total
    due = points_due(original.points, total, after) - points_due(original.points, total, before)
    taken = max(0, min(due, member.points))
    entry = _append(
        session,
        member,
        kind="reversal",
        points=-taken,
        ctx=ctx,
        amount_minor=-amount_minor,
        currency=original.currency,
        refund_of_id=original.id,
        reverses_id=original.id if full else None,
        shortfall=due - taken,
        reason="refund",
        idempotency_key=key,
        request_hash=fingerprint if key is not None else None,
        api_key_id=actor.api_key_id,
        staff_id=actor.staff_id,
    )
    original.refunded_minor = after
    member.lifetime_spend_minor = max(0, member.lifetime_spend_minor - amount_minor)
    session.flush()
    taken_back: dict[str, Any] = {}
    if full:
        taken_back = _take_back_visit(session, program, member, original, ctx)
    if (full or total - after < program.referral_min_purchase_minor) and not session.scalar(
        select(LedgerEntry.id).where(
            LedgerEntry.earned_by_id == original.id, LedgerEntry.kind == "reversal"
        )
    ):
        # The purchase no longer qualifies for the referral it paid: the bonuses go, once.
        _claw_back_bonuses(session, member, original, ctx)
    tiers = _tiers(session, program.id)
    tier_before = _tier_name(tiers, member.tier_id)
    session.flush()
    best = tier_for(qualifying_value(session, member, program, ctx.now), tiers)
    if (best.threshold if best else -1) < _rank(tiers, member.tier_id):
        # Down at once on a refund (normal downgrades wait for the nightly re-evaluation):
        # a purchase refunded the same day must not leave the member in the tier it bought.
        member.tier_id = best.id if best else None
    entry.balance_after = member.points
    entry.tier_after = _tier_name(tiers, member.tier_id)
    touch_cards(session, cards_of_member(session, member.id), ctx)
    _flush_keyed(session)
    body = refund_body(session, entry)
    record(
        session, actor, "scan.refunded", "scan", original.id, now=ctx.now,
        changes={"amount": body["amount"], "currency": currency, "partial": not full,
                 "points_reversed": taken, "shortfall": due - taken, "reversal_id": entry.id,
                 **taken_back},
    )  # fmt: skip
    webhook_events.scan_reversed(session, member, original, entry, now=ctx.now)
    webhook_events.tier_changed(
        session, member, tier_before, entry.tier_after, reason="refund", now=ctx.now
    )
    return Outcome(body=body)


def _take_back_visit(
    session: Session, program: Program, member: Member, scan: LedgerEntry, ctx: Context
) -> dict[str, Any]:
    """A fully refunded purchase is no visit: count, dates, its stamp and its coupons go back."""
    member.visits = max(0, member.visits - 1)
    if member.last_visit_at is not None and member.last_visit_at <= scan.created_at:
        latest = session.scalar(
            select(func.max(LedgerEntry.created_at)).where(
                LedgerEntry.member_id == member.id, LedgerEntry.kind == "earn", is_visit()
            )
        )
        # Visits imported from another system have no entries: keep their date unless none is left.
        if latest is not None or member.visits == 0:
            member.last_visit_at = latest
    if member.visits == 0:
        member.first_visit_at = None
    stamp = _take_back_stamp(session, program, member, scan)
    restored = _restore_coupons(session, scan, ctx)
    return {"stamp_taken_back": stamp, "coupons_restored": restored}


def _take_back_stamp(session: Session, program: Program, member: Member, scan: LedgerEntry) -> bool:
    """Remove the stamp a refunded scan gave, unless a card was completed since.

    A completed card has issued its reward: the stamps in it stay spent (the reward is not
    taken back), and the stamps on the new card are not this scan's to remove.
    """
    extras = ScanExtras.decode(scan.scan_extras)
    if extras.stamps is None or extras.stamps[0] == 0 or member.stamps <= 0:
        return False  # no stamp card then, or this very scan completed the card
    minimum = program.stamps_min_spend_minor
    if minimum is not None and (scan.amount_minor or 0) < minimum:
        return False  # below the minimum spend: the scan gave no stamp
    later = session.scalars(
        select(LedgerEntry.scan_extras).where(
            LedgerEntry.member_id == member.id,
            LedgerEntry.kind == "earn",
            LedgerEntry.id > scan.id,
        )
    ).all()
    for data in later:
        stamps = ScanExtras.decode(data).stamps
        if stamps is not None and stamps[0] == 0:
            return False
    member.stamps -= 1
    return True


def _restore_coupons(session: Session, scan: LedgerEntry, ctx: Context) -> list[int]:
    """Discount coupons redeemed with a fully refunded scan become usable again.

    Bonus-points coupons stay redeemed: their points were credited under a key that is used
    once, so a restored one could never pay again.
    """
    from walletd.offers.wallets import coupon_changed  # offers build on the ledger

    coupons = session.scalars(
        select(Coupon)
        .join(Offer, Offer.id == Coupon.offer_id)
        .where(
            Coupon.redeemed_scan_id == scan.id,
            Coupon.status == "redeemed",
            Offer.kind != "bonus_points",
        )
        .order_by(Coupon.id)
    ).all()
    for coupon in coupons:
        coupon.status = "active"
        coupon.redeemed_at = None
        coupon.redeemed_scan_id = None
        coupon.purchase_minor = None
        coupon.discount_minor = None
        coupon.redeemed_api_key_id = None
        coupon.updated_at = ctx.now
        coupon_changed(session, coupon, ctx)
    return [c.id for c in coupons]


def redemption_reversal_body(entry: LedgerEntry) -> dict[str, Any]:
    """The answer to a redemption reversal, rebuilt from its entry."""
    return {
        "redemption_id": entry.reverses_id,
        "member_id": entry.member_id,
        "reversal_id": entry.id,
        "points_restored": entry.points,
        "balance": entry.balance_after if entry.balance_after is not None else 0,
    }


def reverse_redemption(
    session: Session,
    actor: Actor,
    redemption_id: object,
    ctx: Context,
    *,
    idempotency_key: object = None,
    within_refund_window: bool = False,
) -> Outcome:
    """Give a redemption's points back, exactly as many as were spent, as a new lot."""
    wanted = _integer(redemption_id, "redemption_id", "redemption_id must be an integer")
    key = _optional_key(idempotency_key)
    original = session.scalar(
        select(LedgerEntry).where(
            LedgerEntry.id == wanted,
            LedgerEntry.brand_id == actor.brand_id,
            LedgerEntry.kind == "redeem",
        )
    ) if _may_exist(wanted) else None  # fmt: skip
    if original is None:
        raise NotFoundError("redemption not found")
    program = _program_of(session, original.member_id)
    if within_refund_window:
        _check_window(program, original.created_at, ctx, "redemption")
    fingerprint = request_fingerprint("redemption_reversal", {"redemption": original.id})
    member = lock_member(session, original.member_id)
    used = _keyed_entry(session, actor.brand_id, key)
    if used is not None:
        if used.kind != "reversal" or used.request_hash != fingerprint:
            raise IdempotencyConflictError(
                "this Idempotency-Key was already used for a different request"
            )
        return Outcome(body=redemption_reversal_body(used), replayed=True)
    if session.scalar(select(LedgerEntry.id).where(LedgerEntry.reverses_id == original.id)):
        raise AlreadyReversedError("this redemption was already reversed")
    points = -original.points
    if points > MAX_BALANCE - max(member.points, 0):
        raise ValidationError(
            f"the balance cannot exceed {MAX_BALANCE:,} points", field="redemption_id"
        )
    entry = _append(
        session,
        member,
        kind="reversal",
        points=points,
        ctx=ctx,
        program=program,
        reverses_id=original.id,
        reward_id=original.reward_id,
        reason="redemption reversed",
        idempotency_key=key,
        request_hash=fingerprint if key is not None else None,
        api_key_id=actor.api_key_id,
        staff_id=actor.staff_id,
    )
    entry.balance_after = member.points
    touch_cards(session, cards_of_member(session, member.id), ctx)
    _flush_keyed(session)
    record(
        session, actor, "redemption.reversed", "redemption", original.id, now=ctx.now,
        changes={"points_restored": points, "reversal_id": entry.id},
    )  # fmt: skip
    return Outcome(body=redemption_reversal_body(entry))
