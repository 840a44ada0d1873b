"""What a coupon's change means for the wallets: every issue, redemption, expiry and void."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from walletd.loyalty.cards import touch_cards
from walletd.loyalty.context import Context
from walletd.models import Card, Coupon
from walletd.push.google_sync import queue_google_coupon


def coupon_changed(session: Session, coupon: Coupon, ctx: Context) -> None:
    """Touch the coupon's own pass and the member's loyalty card (whose back lists coupons)."""
    loyalty = (Card.member_id == coupon.member_id) & (Card.kind == "loyalty")
    mine = loyalty if coupon.card_id is None else loyalty | (Card.id == coupon.card_id)
    touch_cards(session, list(session.scalars(select(Card).where(mine)).all()), ctx)
    # Google: the coupon's offer object, and its link into the member's loyalty object.
    queue_google_coupon(session, coupon, ctx)
