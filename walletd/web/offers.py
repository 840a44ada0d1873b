"""Offers, issuing coupons, member coupons and coupon redemption at the till under /api/v1."""

from __future__ import annotations

import hashlib
import importlib
import secrets
from typing import Any

from flask import Blueprint, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from walletd.errors import ConflictError, NotFoundError, ValidationError
from walletd.loyalty.money import format_minor
from walletd.models import Card, Coupon, Member, Offer, Program
from walletd.offers import catalog, coupons, reports
from walletd.web import links
from walletd.web.auth import principal
from walletd.web.deps import context, run_in_transaction, services
from walletd.web.endpoint import Header, endpoint
from walletd.web.offer_schemas import (
    CouponList,
    CouponOut,
    CouponQuery,
    CouponRedemptionCreate,
    CouponRedemptionOut,
    CouponVoidCreate,
    OfferCreate,
    OfferIssueCreate,
    OfferIssueOut,
    OfferList,
    OfferOut,
    OfferReport,
    OfferUpdate,
)

bp = Blueprint("offers", __name__, url_prefix="/api/v1")
ADMIN = ("admin",)
TILL = ("cashier", "admin")
IDEMPOTENCY_KEY = Header(
    "Idempotency-Key",
    "the till's key for this redemption: a retry with the same key replays the first answer",
)
ISSUE_KEY = Header(
    "Idempotency-Key",
    "optional: a retry with the same key gives the member no second coupon",
)


def offer_body(session: Session, offer: Offer) -> OfferOut:
    """The API's offer object."""
    currency = session.get_one(Program, offer.program_id).currency
    minimum = offer.min_spend_minor
    return OfferOut(
        id=offer.id,
        program_id=offer.program_id,
        name=offer.name,
        kind=offer.kind,
        value=None if offer.value is None else catalog.decimal_text(offer.value),
        item=offer.item,
        tier_values={str(k): str(v) for k, v in offer.tier_values.items()}
        if offer.tier_values
        else None,
        min_spend=None if minimum is None else format_minor(minimum, currency),
        valid_from=offer.valid_from,
        valid_until=offer.valid_until,
        valid_days=offer.valid_days,
        per_member_limit=offer.per_member_limit,
        terms=offer.terms,
        status=offer.status,
        created_at=offer.created_at,
        updated_at=offer.updated_at,
    )


def coupon_out(session: Session, coupon: Coupon) -> CouponOut:
    """The API's coupon object, with its state as a till would see it now."""
    card = session.get(Card, coupon.card_id) if coupon.card_id is not None else None
    settings = services().settings
    return CouponOut(
        id=coupon.id,
        offer_id=coupon.offer_id,
        member_id=coupon.member_id,
        code=coupon.code,
        barcode=coupon.barcode,
        status=coupons.effective_status(coupon, context().now),
        value=None if coupon.value is None else catalog.decimal_text(coupon.value),
        issued_at=coupon.issued_at,
        expires_at=coupon.expires_at,
        redeemed_at=coupon.redeemed_at,
        apple_pass_url=None if card is None else links.apple_pass_url(settings, card.serial_number),
    )


def _input(body: OfferCreate) -> catalog.OfferInput:
    return catalog.OfferInput(
        program_id=body.program_id,
        name=body.name,
        kind=body.kind,
        value=body.value,
        item=body.item,
        tier_values=body.tier_values,
        min_spend=body.min_spend,
        valid_from=body.valid_from,
        valid_until=body.valid_until,
        valid_days=body.valid_days,
        per_member_limit=body.per_member_limit,
        terms=body.terms,
    )


@bp.post("/offers")
@endpoint("Create an offer", tag="offers", roles=ADMIN, body=OfferCreate, response=OfferOut,
          status=201)  # fmt: skip
def create_offer(body: OfferCreate) -> OfferOut:
    """Create an offer that coupons are issued from."""
    brand_id = principal().brand_id
    data = _input(body)
    return run_in_transaction(
        lambda s: offer_body(s, catalog.create_offer(s, brand_id, data, context()))
    )


@bp.get("/offers")
@endpoint("The brand's offers", tag="offers", roles=ADMIN, response=OfferList)
def list_offers() -> OfferList:
    """Every offer of the brand, newest first."""
    brand_id = principal().brand_id
    rows = run_in_transaction(
        lambda s: [offer_body(s, o) for o in catalog.list_offers(s, brand_id)]
    )
    return OfferList(offers=rows)


@bp.get("/offers/<int:offer_id>")
@endpoint("One offer", tag="offers", roles=ADMIN, response=OfferOut)
def get_offer(offer_id: int) -> OfferOut:
    """One offer of the brand."""
    brand_id = principal().brand_id
    return run_in_transaction(lambda s: offer_body(s, catalog.get_offer(s, brand_id, offer_id)))


@bp.patch("/offers/<int:offer_id>")
@endpoint("Change an offer (null clears an optional field)", tag="offers", roles=ADMIN,
          body=OfferUpdate, response=OfferOut)  # fmt: skip
def update_offer(offer_id: int, body: OfferUpdate) -> OfferOut:
    """Change some fields of an offer; coupons already issued keep their value and expiry."""
    brand_id = principal().brand_id
    changes: dict[str, Any] = {name: getattr(body, name) for name in body.model_fields_set}
    return run_in_transaction(
        lambda s: offer_body(s, catalog.update_offer(s, brand_id, offer_id, changes, context()))
    )


@bp.post("/offers/<int:offer_id>/archive")
@endpoint("Archive an offer (no more coupons are issued)", tag="offers", roles=ADMIN,
          response=OfferOut)  # fmt: skip
def archive_offer(offer_id: int) -> OfferOut:
    """Stop issuing an offer; coupons already issued stay valid until they expire."""
    brand_id = principal().brand_id
    return run_in_transaction(
        lambda s: offer_body(s, catalog.archive_offer(s, brand_id, offer_id, context()))
    )


def _issue_to_member(
    session: Session, brand_id: int, offer_id: int, member_id: int, key: str | None
) -> tuple[OfferIssueOut, int]:
    offer = catalog.get_offer(session, brand_id, offer_id)
    if offer.status != "active":
        raise ConflictError("the offer is archived; it can no longer be issued")
    member = session.get(Member, member_id)
    if member is None or member.brand_id != brand_id or member.erased_at is not None:
        raise NotFoundError("member not found")
    if member.program_id != offer.program_id:
        raise ValidationError("the member belongs to another program", field="member_id")
    # A retry with the same key is the same occasion: the member gets one coupon.
    token = hashlib.sha256(key.encode()).hexdigest()[:40] if key else secrets.token_hex(16)
    occasion = f"manual:{token}"
    coupon = coupons.issue_coupon(
        session, offer, member, source="manual", occasion=occasion, ctx=context()
    )
    if coupon is not None:
        return OfferIssueOut(issued=True, coupon=coupon_out(session, coupon)), 201
    earlier = session.scalar(
        select(Coupon).where(
            Coupon.offer_id == offer.id, Coupon.member_id == member.id, Coupon.occasion == occasion
        )
    )
    if earlier is not None:
        return OfferIssueOut(issued=True, coupon=coupon_out(session, earlier)), 200
    return OfferIssueOut(issued=False, status="limit_reached"), 200


def _issue_to_segment(
    session: Session, brand_id: int, offer_id: int, segment: dict[str, Any]
) -> tuple[OfferIssueOut, int]:
    try:
        issues: Any = importlib.import_module("walletd.offers.issues")
    except ImportError:
        raise ValidationError(
            "issuing to a segment is not available yet", field="segment"
        ) from None
    issue = issues.create_issue(session, brand_id, offer_id, segment, context())
    return OfferIssueOut(issued=False, issue_id=issue.id, status=issue.status), 202


@bp.post("/offers/<int:offer_id>/issue")
@endpoint(
    "Issue an offer to a member now, or to a segment by a batch job",
    tag="offers",
    roles=ADMIN,
    body=OfferIssueCreate,
    response=OfferIssueOut,
    status=201,
    headers=(ISSUE_KEY,),
    other_responses={
        200: "not issued (per-member limit), or a retry: the coupon already issued",
        202: "a segment issue queued for the worker",
    },
)
def issue_offer(offer_id: int, body: OfferIssueCreate) -> tuple[OfferIssueOut, int]:
    """Give one member a coupon of the offer, or queue an issue to a segment."""
    brand_id = principal().brand_id
    key = (request.headers.get("Idempotency-Key") or "").strip() or None
    member_id, segment = body.member_id, body.segment
    if member_id is not None:
        return run_in_transaction(lambda s: _issue_to_member(s, brand_id, offer_id, member_id, key))
    assert segment is not None  # the model requires one of the two
    return run_in_transaction(lambda s: _issue_to_segment(s, brand_id, offer_id, segment))


@bp.get("/offers/<int:offer_id>/report")
@endpoint("How an offer performs", tag="offers", roles=ADMIN, response=OfferReport)
def offer_report(offer_id: int) -> dict[str, Any]:
    """Issued, redeemed, redemption rate, discount given and revenue of the redeeming visits."""
    brand_id = principal().brand_id
    return run_in_transaction(lambda s: reports.offer_report(s, brand_id, offer_id))


@bp.get("/members/<int:member_id>/coupons")
@endpoint("A member's coupons", tag="offers", roles=TILL, query=CouponQuery,
          response=CouponList)  # fmt: skip
def member_coupons(member_id: int, query: CouponQuery) -> CouponList:
    """A member's coupons, newest first, optionally only those in one state."""
    brand_id = principal().brand_id
    now = context().now

    def work(session: Session) -> list[CouponOut]:
        rows = coupons.list_member_coupons(
            session, brand_id, member_id, status=query.status, now=now
        )
        return [coupon_out(session, c) for c in rows]

    return CouponList(coupons=run_in_transaction(work))


@bp.post("/coupons/<int:coupon_id>/void")
@endpoint(
    "Void a coupon (it gives nothing from now on; audited with the reason)",
    tag="offers",
    roles=ADMIN,
    body=CouponVoidCreate,
    response=CouponOut,
    other_responses={
        404: "no such coupon of this brand",
        409: "coupon_redeemed, coupon_expired or coupon_void: the coupon is no longer active",
    },
)
def void_coupon(coupon_id: int, body: CouponVoidCreate) -> CouponOut:
    """Withdraw an active coupon; its pass and the member's card update."""
    actor = principal().actor
    return run_in_transaction(
        lambda s: coupon_out(
            s, coupons.withdraw_coupon(s, actor, coupon_id, body.reason, context())
        )
    )


@bp.post("/coupons/redemptions")
@endpoint(
    "Redeem a coupon at the till (a replay answers 200 with the first result)",
    tag="offers",
    roles=TILL,
    body=CouponRedemptionCreate,
    response=CouponRedemptionOut,
    status=201,
    headers=(IDEMPOTENCY_KEY,),
    other_responses={200: "a replay: the first answer"},
    key_rechecked=True,  # coupons.redeem_coupon's locked read refuses a revoked key
)
def redeem_coupon(body: CouponRedemptionCreate) -> tuple[dict[str, Any], int]:
    """Redeem a coupon exactly once per Idempotency-Key; the answer says what to take off."""
    p = principal()
    actor = p.actor
    key = request.headers.get("Idempotency-Key")
    outcome = run_in_transaction(
        lambda s: coupons.redeem_coupon(
            s, actor, barcode=body.barcode, amount=body.amount, idempotency_key=key, ctx=context()
        )
    )
    return outcome.body, 200 if outcome.replayed else 201
