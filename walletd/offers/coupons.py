"""Coupons: issuing one to a member, redeeming it exactly once at a till, expiring and voiding."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any

from sqlalchemy import false, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from walletd.audit import record
from walletd.errors import (
    AuthenticationError,
    BelowMinSpendError,
    ConflictError,
    CouponExpiredError,
    CouponNotYetValidError,
    CouponRedeemedError,
    CouponVoidError,
    IdempotencyConflictError,
    NotFoundError,
    UnknownCouponError,
    ValidationError,
)
from walletd.loyalty.barcodes import new_auth_token, new_serial
from walletd.loyalty.brands import key_still_live
from walletd.loyalty.context import Context
from walletd.loyalty.folded import flush_folded
from walletd.loyalty.ledger import (
    MAX_BALANCE,
    MAX_ID,
    Actor,
    Outcome,
    _check_key,
    grant_bonus,
    lock_member,
    request_fingerprint,
    staff_reason,
)
from walletd.loyalty.money import format_minor, minor_unit_exponent, parse_amount
from walletd.messages.store import live_reminders_exist, note_no_reminders
from walletd.models import Card, Coupon, Member, Offer, Program, Tier
from walletd.observability.metrics import REDEMPTIONS, counted, coupon_kind
from walletd.offers.catalog import offer_value_for
from walletd.offers.codes import (
    CODE_ALPHABET,
    CODE_LENGTH,
    coupon_serial_from_barcode,
    make_coupon_barcode,
    new_coupon_code,
)
from walletd.offers.wallets import coupon_changed
from walletd.push.outbox import Later
from walletd.webhooks import active_endpoints_exist, note_no_endpoints
from walletd.webhooks import events as webhook_events


def _tier_name(session: Session, member: Member) -> str | None:
    if member.tier_id is None:
        return None
    tier = session.get(Tier, member.tier_id)
    return tier.name if tier is not None else None


def _expiry(offer: Offer, now: datetime) -> datetime | None:
    """The earlier of N days after issue and the offer's end date; None when neither is set."""
    ends = [now + timedelta(days=offer.valid_days)] if offer.valid_days else []
    if offer.valid_until is not None:
        ends.append(offer.valid_until)
    return min(ends) if ends else None


def issue_coupon(
    session: Session, offer: Offer, member: Member, *, source: str, occasion: str, ctx: Context
) -> Coupon | None:
    """Give a member a coupon of an offer once per occasion; None when it is not issued.

    Not issued: the offer is archived or over, the member belongs to another program, the member
    already has a coupon for this occasion, or holds `per_member_limit` coupons of the offer.
    """
    if offer.status != "active" or member.program_id != offer.program_id:
        return None
    if offer.valid_until is not None and offer.valid_until <= ctx.now:
        return None
    # The member's row lock serialises issues to one member, so the limit cannot be overrun.
    # No populate_existing: the caller may hold unflushed changes of this member.
    session.execute(select(Member.id).where(Member.id == member.id).with_for_update())
    duplicate = session.scalar(
        select(Coupon.id).where(
            Coupon.offer_id == offer.id,
            Coupon.member_id == member.id,
            Coupon.occasion == occasion,
        )
    )
    if duplicate is not None:
        return None
    if offer.per_member_limit:
        held = session.scalar(
            select(func.count(Coupon.id)).where(
                Coupon.offer_id == offer.id, Coupon.member_id == member.id
            )
        )
        if int(held or 0) >= offer.per_member_limit:
            return None
    serial = new_serial()
    barcode = make_coupon_barcode(serial, ctx.secret_key)
    now = ctx.now
    card = Card(
        brand_id=member.brand_id,
        member_id=member.id,
        kind="coupon",
        serial_number=serial,
        auth_token=new_auth_token(),
        barcode=barcode,
        update_tag=0,
        updated_at=now.replace(microsecond=0),
        created_at=now,
    )
    coupon = Coupon(
        brand_id=member.brand_id,
        offer_id=offer.id,
        member_id=member.id,
        code=new_coupon_code(),
        barcode=barcode,
        status="active",
        value=offer_value_for(offer, _tier_name(session, member)),
        source=source,
        occasion=occasion,
        issued_at=now,
        expires_at=_expiry(offer, now),
        updated_at=now,
    )
    try:
        # A twin issuing the same occasion at the same moment loses on the unique constraint.
        with session.begin_nested():
            session.add(card)
            session.flush()
            coupon.card_id = card.id
            session.add(coupon)
            session.flush()
    except IntegrityError:
        return None
    coupon_changed(session, coupon, ctx)
    webhook_events.coupon_issued(session, member, coupon, now=ctx.now)
    return coupon


def effective_status(coupon: Coupon, now: datetime) -> str:
    """The state a till sees: an active coupon past its expiry is expired before the job runs."""
    if coupon.status == "active" and coupon.expires_at is not None and coupon.expires_at <= now:
        return "expired"
    return coupon.status


def list_member_coupons(
    session: Session,
    brand_id: int,
    member_id: int,
    *,
    status: str | None = None,
    now: datetime | None = None,
) -> list[Coupon]:
    """A member's coupons, newest first; `status` filters (by effective status when `now` given)."""
    if not 1 <= member_id <= MAX_ID:
        raise NotFoundError("member not found")
    member = session.get(Member, member_id)
    if member is None or member.brand_id != brand_id or member.erased_at is not None:
        raise NotFoundError("member not found")
    coupons = session.scalars(
        select(Coupon)
        .where(Coupon.member_id == member_id, Coupon.brand_id == brand_id)
        .order_by(Coupon.issued_at.desc(), Coupon.id.desc())
    ).all()
    if status is None:
        return list(coupons)
    if now is None:
        return [c for c in coupons if c.status == status]
    return [c for c in coupons if effective_status(c, now) == status]


def coupon_body(coupon: Coupon, offer: Offer, currency: str) -> dict[str, Any]:
    """The answer to a redemption, rebuilt from the coupon (so a replay answers the same)."""
    body: dict[str, Any] = {
        "coupon_id": coupon.id,
        "member_id": coupon.member_id,
        "kind": offer.kind,
    }
    if coupon.discount_minor is not None:
        body["discount"] = format_minor(coupon.discount_minor, currency)
    if coupon.points_awarded is not None:
        body["points_awarded"] = coupon.points_awarded
    if offer.kind == "free_item":
        body["item"] = offer.item
    return body


def discount_minor_for(
    offer: Offer, value: Decimal | None, amount_minor: int | None, currency: str
) -> int | None:
    """What the till takes off, in minor units; never more than the amount."""
    if value is None:
        return None
    if offer.kind == "percent_off":
        if amount_minor is None:
            return None
        with localcontext() as exact:
            exact.prec = 64
            off = (Decimal(amount_minor) * value / 100).quantize(Decimal(1), ROUND_HALF_UP)
        return min(int(off), amount_minor)
    if offer.kind == "amount_off":
        with localcontext() as exact:
            exact.prec = 64
            off_minor = int(
                value.scaleb(minor_unit_exponent(currency)).to_integral_value(ROUND_HALF_UP)
            )
        return off_minor if amount_minor is None else min(off_minor, amount_minor)
    return None


def _normalised(barcode: object) -> str:
    if not isinstance(barcode, str) or not barcode.strip():
        raise ValidationError("barcode is required and must be a string", field="barcode")
    return barcode.strip().upper()


def _is_code(text: str) -> bool:
    return len(text) == CODE_LENGTH and all(ch in CODE_ALPHABET for ch in text)


def _locked_coupon(
    session: Session,
    brand_id: int,
    barcode: object,
    ctx: Context,
    member_id: int | None = None,
    key: str | None = None,
    api_key_id: int | None = None,
) -> _LockedCoupon:
    """The brand's coupon a barcode (or typed code) names, holding its row lock, read in one
    statement with its offer and its program's currency; with `key`, also whether a coupon of
    the brand was redeemed with that Idempotency-Key (as of the statement's snapshot).

    It also learns whether the brand has webhook endpoints and whether the member holds a live
    reminder, so that a redemption's event and its cards' reminder check cost no query of their
    own when there are none (most brands, most members). With `api_key_id`, it refuses the key
    once revoked (AuthenticationError): the web layer may have taken it from its cache.
    """
    text = _normalised(barcode)
    if _is_code(text):
        match = Coupon.code == text
    elif coupon_serial_from_barcode(text, ctx.secret_keys) is not None:
        match = Coupon.barcode == text
    else:
        raise UnknownCouponError("this barcode is not a coupon of this brand")
    used: Any = false()
    if key is not None:
        other = aliased(Coupon)
        used = select(other.id).where(other.brand_id == brand_id, other.redeem_key == key).exists()
    query = (
        select(
            Coupon,
            Offer,
            Program.currency,
            used,
            active_endpoints_exist(Coupon.brand_id),
            live_reminders_exist(Coupon.member_id),
            key_still_live(api_key_id or 0),
        )  # fmt: skip
        .join(Offer, Offer.id == Coupon.offer_id)
        .join(Program, Program.id == Offer.program_id)
        .where(match, Coupon.brand_id == brand_id)
    )
    if member_id is not None:
        query = query.where(Coupon.member_id == member_id)
    row = session.execute(
        query.with_for_update(of=Coupon).execution_options(populate_existing=True)
    ).first()
    if row is None:
        raise UnknownCouponError("this barcode is not a coupon of this brand")
    coupon, offer, currency, key_used, hooks, reminders, live_key = row
    if api_key_id is not None and not live_key:
        raise AuthenticationError("invalid API key")  # revoked since the web layer checked it
    if not hooks:
        note_no_endpoints(session, brand_id)
    if not reminders and offer.kind != "bonus_points":
        # The cards it touches re-check the member's reminders: none to check. Only for a
        # coupon that leaves the balance alone: this read does not hold the member's lock, so
        # a reminder written meanwhile could be made untrue by bonus points (they re-check).
        note_no_reminders(session, coupon.member_id)
    return _LockedCoupon(coupon, offer, str(currency), bool(key_used))


@dataclass(frozen=True)
class _LockedCoupon:
    coupon: Coupon
    offer: Offer
    currency: str
    key_used: bool  # a coupon of the brand was redeemed with the key given (snapshot)


def _check_redeemable(
    coupon: Coupon, offer: Offer, amount_minor: int | None, currency: str, now: datetime
) -> None:
    if coupon.status == "redeemed":
        raise CouponRedeemedError("this coupon was already redeemed")
    if coupon.status == "void":
        raise CouponVoidError("this coupon was voided")
    if effective_status(coupon, now) == "expired":
        raise CouponExpiredError("this coupon has expired")
    if offer.valid_from is not None and offer.valid_from > now:
        raise CouponNotYetValidError("this coupon is not valid yet")
    if offer.min_spend_minor is not None:
        if amount_minor is None:
            raise ValidationError(
                "this coupon has a minimum spend: send the purchase amount", field="amount"
            )
        if amount_minor < offer.min_spend_minor:
            raise BelowMinSpendError(
                "the purchase is below this coupon's minimum spend of "
                f"{format_minor(offer.min_spend_minor, currency)} {currency}",
                field="amount",
            )
    if offer.kind == "percent_off" and amount_minor is None:
        raise ValidationError("a percent-off coupon needs the purchase amount", field="amount")


def _apply(
    session: Session,
    actor: Actor,
    coupon: Coupon,
    offer: Offer,
    amount_minor: int | None,
    currency: str,
    ctx: Context,
    member: Member | None = None,
    *,
    fold: bool = False,
) -> Later | None:
    """Mark a checked coupon redeemed: the discount, or the bonus points credited.

    With `fold`, the caller writes the changes with flush_folded and sends what comes back.
    """
    coupon.discount_minor = discount_minor_for(offer, coupon.value, amount_minor, currency)
    if offer.kind == "bonus_points":
        points = int(coupon.value or 0)
        member = member or lock_member(session, coupon.member_id)
        if points > MAX_BALANCE - max(member.points, 0):
            raise ValidationError(
                f"these points would take the balance above {MAX_BALANCE:,}", field="barcode"
            )
        entry = grant_bonus(
            session, member, points, reason=f"coupon {coupon.code}",
            idempotency_key=f"coupon:{coupon.id}", ctx=ctx, touch=False,
        )  # fmt: skip
        coupon.points_awarded = points if entry is not None else 0
    coupon.status = "redeemed"
    coupon.redeemed_at = ctx.now
    coupon.purchase_minor = amount_minor
    coupon.redeemed_api_key_id = actor.api_key_id
    coupon.updated_at = ctx.now
    later = coupon_changed(session, coupon, ctx, fold=fold)
    webhook_events.coupon_redeemed(session, coupon, currency, now=ctx.now)
    return later


def _offer_and_currency(session: Session, coupon: Coupon) -> tuple[Offer, str]:
    offer = session.get_one(Offer, coupon.offer_id)
    program = session.get_one(Program, offer.program_id)
    return offer, program.currency


@counted(REDEMPTIONS, coupon_kind)
def redeem_coupon(
    session: Session,
    actor: Actor,
    *,
    barcode: object,
    amount: object,
    idempotency_key: object,
    ctx: Context,
) -> Outcome:
    """Redeem a coupon exactly once per Idempotency-Key; the body says what the till takes off."""
    key = _check_key(idempotency_key)
    locked = _locked_coupon(
        session, actor.brand_id, barcode, ctx, key=key, api_key_id=actor.api_key_id
    )
    coupon, offer, currency = locked.coupon, locked.offer, locked.currency
    amount_minor = None if amount is None else parse_amount(amount, currency)
    fingerprint = request_fingerprint("coupon", {"coupon": coupon.id, "amount": amount_minor})
    # The locked read's snapshot shows keys used before it began; a twin of this request that
    # committed while this one waited for the coupon's lock shows in the coupon row itself
    # (re-read under the lock). Either way the key's coupon is looked up now, as it stands.
    used = None
    if locked.key_used or coupon.redeem_key == key:
        used = session.scalar(
            select(Coupon).where(Coupon.brand_id == actor.brand_id, Coupon.redeem_key == key)
        )
    if used is not None:
        if used.id != coupon.id or used.redeem_fingerprint != fingerprint:
            raise IdempotencyConflictError(
                "this Idempotency-Key was already used for a different request"
            )
        return Outcome(body=coupon_body(coupon, offer, currency), replayed=True)
    _check_redeemable(coupon, offer, amount_minor, currency, ctx.now)
    coupon.redeem_key = key
    coupon.redeem_fingerprint = fingerprint
    later = _apply(session, actor, coupon, offer, amount_minor, currency, ctx, fold=True)
    try:
        flush_folded(session, None, later)
    except IntegrityError as exc:
        # Another coupon took this key in a concurrent transaction. Nothing of this request is
        # kept (the transaction rolls back), so no savepoint is needed to answer so.
        raise IdempotencyConflictError(
            "this Idempotency-Key was already used for a different request"
        ) from exc
    return Outcome(body=coupon_body(coupon, offer, currency))


def redeem_coupons_in_scan(
    session: Session,
    actor: Actor,
    member: Member,
    barcodes: list[str],
    amount_minor: int,
    scan_entry_id: int,
    ctx: Context,
) -> list[dict[str, Any]]:
    """Redeem the member's coupons with a scan (its Idempotency-Key covers them); one body each."""
    seen: set[str] = set()
    bodies: list[dict[str, Any]] = []
    for barcode in barcodes:
        locked = _locked_coupon(session, actor.brand_id, barcode, ctx, member_id=member.id)
        coupon, offer, currency = locked.coupon, locked.offer, locked.currency
        if coupon.barcode in seen:
            raise ValidationError("a coupon is listed twice", field="coupons")
        seen.add(coupon.barcode)
        _check_redeemable(coupon, offer, amount_minor, currency, ctx.now)
        coupon.redeemed_scan_id = scan_entry_id
        _apply(session, actor, coupon, offer, amount_minor, currency, ctx, member=member)
        bodies.append(coupon_body(coupon, offer, currency))
    session.flush()
    return bodies


def coupons_of_scan(session: Session, scan_entry_id: int) -> list[dict[str, Any]]:
    """The coupon bodies of a scan, rebuilt for its replay."""
    coupons = session.scalars(
        select(Coupon).where(Coupon.redeemed_scan_id == scan_entry_id).order_by(Coupon.id)
    ).all()
    bodies = []
    for coupon in coupons:
        offer, currency = _offer_and_currency(session, coupon)
        bodies.append(coupon_body(coupon, offer, currency))
    return bodies


def expire_due_coupons(session: Session, ctx: Context, *, limit: int = 500) -> int:
    """Mark active coupons past their expiry expired and tell the wallets; how many were."""
    query = (
        select(Coupon)
        .where(Coupon.status == "active", Coupon.expires_at <= ctx.now)
        .order_by(Coupon.expires_at, Coupon.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    coupons = session.scalars(query).all()
    for coupon in coupons:
        coupon.status = "expired"
        coupon.updated_at = ctx.now
        coupon_changed(session, coupon, ctx)
    session.flush()
    return len(coupons)


# Why a coupon that is not active cannot be voided, by its state as a till sees it (the
# messages a till gets for the same coupon).
_NOT_ACTIVE: dict[str, tuple[type[ConflictError], str]] = {
    "redeemed": (CouponRedeemedError, "this coupon was already redeemed"),
    "expired": (CouponExpiredError, "this coupon has expired"),
    "void": (CouponVoidError, "this coupon was voided"),
}


def void_coupon(session: Session, brand_id: int, coupon_id: int, ctx: Context) -> Coupon:
    """Withdraw an active coupon; its passes show it voided. Not found for another brand's;
    coupon_redeemed, coupon_expired (past its expiry, even before the nightly job marks it) or
    coupon_void for one that is no longer active."""
    if not 1 <= coupon_id <= MAX_ID:
        raise NotFoundError("coupon not found")
    coupon = session.scalar(
        select(Coupon)
        .where(Coupon.id == coupon_id, Coupon.brand_id == brand_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if coupon is None:
        raise NotFoundError("coupon not found")
    status = effective_status(coupon, ctx.now)
    if status != "active":
        error, message = _NOT_ACTIVE.get(status, (ConflictError, "this coupon is not active"))
        raise error(message)
    coupon.status = "void"
    coupon.updated_at = ctx.now
    coupon_changed(session, coupon, ctx)
    session.flush()
    return coupon


def withdraw_coupon(
    session: Session, actor: Actor, coupon_id: int, reason: object, ctx: Context
) -> Coupon:
    """A brand's admin voids a coupon (issued by mistake, or to the wrong member): the coupon
    gives nothing at any till from now on, its pass and the member's card show it voided, and
    the audit log keeps who did it and why (1 to 200 printable characters)."""
    reason = staff_reason(reason)
    coupon = void_coupon(session, actor.brand_id, coupon_id, ctx)
    record(
        session, actor, "coupon.voided", "coupon", coupon.id, now=ctx.now,
        changes={"status": ["active", "void"], "reason": [None, reason]},
    )  # fmt: skip
    return coupon
