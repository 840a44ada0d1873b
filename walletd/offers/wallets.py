"""What a coupon's change means for the wallets: every issue, redemption, expiry and void."""

from __future__ import annotations

from contextlib import nullcontext

from sqlalchemy import select
from sqlalchemy.orm import Session

from walletd.loyalty.cards import touch_cards
from walletd.loyalty.context import Context
from walletd.models import Card, Coupon
from walletd.push.google_sync import queue_google_coupon
from walletd.push.outbox import Later


def coupon_changed(
    session: Session, coupon: Coupon, ctx: Context, *, fold: bool = False
) -> Later | None:
    """Touch the coupon's own pass and the member's loyalty card (whose back lists coupons).

    With `fold`, the caller writes the changes with flush_folded (touch_cards' `fold`): the
    cards are read without flushing the coupon's change first, and the push rows' INSERT comes
    back for the caller to send.
    """
    loyalty = (Card.member_id == coupon.member_id) & (Card.kind == "loyalty")
    mine = loyalty if coupon.card_id is None else loyalty | (Card.id == coupon.card_id)
    with session.no_autoflush if fold else nullcontext():
        cards = list(session.scalars(select(Card).where(mine)).all())
    later = touch_cards(session, cards, ctx, fold=fold)
    # Google: the coupon's offer object, and its link into the member's loyalty object.
    queue_google_coupon(session, coupon, ctx)
    return later
