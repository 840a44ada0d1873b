"""How an offer performs: coupons issued and redeemed, discounts given, revenue of those visits."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from walletd.loyalty.money import format_minor
from walletd.models import Coupon, LedgerEntry, Program
from walletd.models.ledger import net_amount
from walletd.offers.catalog import get_offer


def _ratio(part: int, whole: int) -> float | None:
    if not whole:
        return None
    return float((Decimal(part) / Decimal(whole)).quantize(Decimal("0.0001")))


def offer_report(session: Session, brand_id: int, offer_id: int) -> dict[str, Any]:
    """Issued, redeemed, expired, redemption rate, discount given and revenue of one offer.

    Revenue is the purchase amount of each visit a coupon was redeemed at: the scan's amount
    when redeemed with a scan, else the amount the till sent with the redemption.
    """
    offer = get_offer(session, brand_id, offer_id)
    currency = session.get_one(Program, offer.program_id).currency
    rows = session.execute(
        select(Coupon.status, func.count(Coupon.id))
        .where(Coupon.offer_id == offer.id)
        .group_by(Coupon.status)
    ).all()
    by_status: dict[str, int] = {status: int(n) for status, n in rows}
    totals = session.execute(
        select(
            func.coalesce(func.sum(Coupon.discount_minor), 0),
            func.coalesce(func.sum(Coupon.points_awarded), 0),
        ).where(Coupon.offer_id == offer.id, Coupon.status == "redeemed")
    ).one()
    till = session.scalar(
        select(func.coalesce(func.sum(Coupon.purchase_minor), 0)).where(
            Coupon.offer_id == offer.id,
            Coupon.status == "redeemed",
            Coupon.redeemed_scan_id.is_(None),
        )
    )
    # A scan that redeemed two coupons of this offer is one visit: count its amount once.
    scans = (
        select(Coupon.redeemed_scan_id)
        .where(Coupon.offer_id == offer.id, Coupon.status == "redeemed")
        .where(Coupon.redeemed_scan_id.is_not(None))
        .distinct()
        .scalar_subquery()
    )
    with_scans = session.scalar(
        # Net of refunds: a coupon of a scan refunded in full is restored, so it is not here.
        select(func.coalesce(func.sum(net_amount()), 0)).where(LedgerEntry.id.in_(scans))
    )
    issued = sum(by_status.values())
    count = by_status.get("redeemed", 0)
    return {
        "offer_id": offer.id,
        "currency": currency,
        "issued": issued,
        "redeemed": count,
        "expired": by_status.get("expired", 0),
        "redemption_rate": _ratio(count, issued),
        "discount_given": format_minor(int(totals[0]), currency),
        "revenue": format_minor(int(till or 0) + int(with_scans or 0), currency),
        "points_awarded": int(totals[1]),
    }
