"""The member page's coupons panel: the member's coupons in every state, and voiding one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import abort, request
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as WerkzeugResponse

from walletd.errors import NotFoundError
from walletd.models import Coupon, Member, Offer
from walletd.offers import coupons
from walletd.web.deps import context
from walletd.web.pages.dashboard import bp, me, member_action, staff_only
from walletd.web.pages.forms import MAX_ID
from walletd.web.pages.render import _

SHOWN = 50  # the newest coupons; the API lists them all


@dataclass(frozen=True)
class CouponRow:
    """One coupon as the panel lists it."""

    id: int
    offer: str
    code: str
    status: str  # as a till sees it now: an active coupon past its expiry is expired
    issued_at: datetime
    expires_at: datetime | None
    redeemed_at: datetime | None


@dataclass(frozen=True)
class CouponsPanel:
    """The member's newest coupons, and how many there are in all."""

    rows: list[CouponRow]
    total: int


def coupons_panel(session: Session, member: Member, now: datetime) -> CouponsPanel:
    """The panel of a member the caller has already looked up in their brand."""
    found = coupons.list_member_coupons(session, member.brand_id, member.id)
    shown = found[:SHOWN]
    offer_ids = {c.offer_id for c in shown}
    names = {
        offer_id: name
        for offer_id, name in session.execute(
            select(Offer.id, Offer.name).where(Offer.id.in_(offer_ids))
        ).tuples()
    }
    rows = [
        CouponRow(
            id=c.id,
            offer=names.get(c.offer_id, ""),
            code=c.code,
            status=coupons.effective_status(c, now),
            issued_at=c.issued_at,
            expires_at=c.expires_at,
            redeemed_at=c.redeemed_at,
        )
        for c in shown
    ]
    return CouponsPanel(rows=rows, total=len(found))


@bp.post("/members/<int:member_id>/coupons/<int:coupon_id>/void")
@staff_only
def void_member_coupon(member_id: int, coupon_id: int) -> WerkzeugResponse:
    """Void one of the member's coupons with a reason (kept in the audit log)."""
    viewer = me()
    reason = request.form.get("reason", "")
    if not 1 <= coupon_id <= MAX_ID:
        abort(404)
    actor, ctx = viewer.actor, context()

    def work(session: Session) -> None:
        coupon = session.get(Coupon, coupon_id)
        if coupon is None or coupon.member_id != member_id:
            raise NotFoundError("coupon not found")  # the URL's member must own it
        coupons.withdraw_coupon(session, actor, coupon_id, reason, ctx)

    done = _("Coupon voided: it gives nothing at the till from now on.")
    return member_action(member_id, work, done, "coupons")
