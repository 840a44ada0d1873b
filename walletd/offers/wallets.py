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
    cards = list(
        session.scalars(
            select(Card).where(Card.member_id == coupon.member_id, Card.kind == "loyalty")
        ).all()
    )
    if coupon.card_id is not None:
        own = session.get(Card, coupon.card_id)
        if own is not None:
            cards.append(own)
    touch_cards(session, cards, ctx)
    # Google: the coupon's offer object, and its link into the member's loyalty object.
    queue_google_coupon(session, coupon, ctx)
