"""Turning a card row into the neutral CardView both wallets render."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from walletd.db import utcnow
from walletd.loyalty.discovery import stores_of
from walletd.loyalty.money import format_minor
from walletd.messages.store import KEPT, live_messages
from walletd.models import Brand, Card, Coupon, Member, Offer, Program, Tier
from walletd.offers.promotions import active_promotions
from walletd.passes.view import (
    CLOSED_MESSAGE,
    CardView,
    CouponLine,
    CouponView,
    MessageLine,
    StoreView,
)

# The loyalty card lists this many active coupons at most (the pass renders ten).
LISTED_COUPONS = 10


def card_view(session: Session, card: Card, *, now: datetime | None = None) -> CardView:
    """The neutral view of one card, from its member, program, tier and brand.

    A coupon card (kind "coupon") carries its coupon; a loyalty card carries the stamp card,
    the tier's benefits, a promotion running `now` and the member's active coupons.
    """
    moment = now or utcnow()
    member, program, brand = session.execute(
        select(Member, Program, Brand)
        .join(Program, Program.id == Member.program_id)
        .join(Brand, Brand.id == Member.brand_id)
        .where(Member.id == card.member_id)
    ).one()
    tier = session.get(Tier, member.tier_id) if member.tier_id is not None else None
    view = CardView(
        serial_number=card.serial_number,
        authentication_token=card.auth_token,
        barcode_message=card.barcode,
        barcode_alt_text=card.serial_number[-8:],
        organization_name=brand.name,
        program_name=program.name,
        member_name=member.name,
        points=member.points,
        tier=tier.name if tier else None,
        background_color=program.background_color,
        foreground_color=program.foreground_color,
        label_color=program.label_color,
        template=program.template,
        updated_at=card.updated_at,
        message=card.message,
        message_id=card.message_id,
        member_since=member.created_at.date().isoformat(),
        program_id=program.id,
        brand_id=brand.id,
    )
    if member.erased_at is not None:
        # Nothing of the person and nothing to use: the wallets show the card closed.
        view = replace(view, member_name="", message=CLOSED_MESSAGE, message_id=None, voided=True)
    else:
        view = _with_stores(session, view, program)
    if card.kind == "coupon":
        return _coupon_view(session, card, view, program)
    if view.voided:
        return view
    messages = _messages(session, member.id, program)
    if messages:
        view = replace(view, message=messages[0].text, message_id=messages[0].id, messages=messages)
    return replace(
        view,
        stamps=(member.stamps, program.stamps_per_reward) if program.stamps_enabled else None,
        benefits=(tier.benefits or None) if tier else None,
        promotion=_running_promotion(session, program, view.tier, moment),
        coupons=_active_coupons(session, member.id, program, moment),
    )


def _with_stores(session: Session, view: CardView, program: Program) -> CardView:
    """The card surfaces near the brand's stores (a closed card near none)."""
    stores, max_distance = stores_of(session, program)
    if not stores:
        return view
    return replace(
        view,
        stores=tuple(StoreView(s.latitude, s.longitude, s.relevant_text) for s in stores),
        max_distance=max_distance,
    )


def _zone(program: Program) -> ZoneInfo:
    try:
        return ZoneInfo(program.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _coupon_view(session: Session, card: Card, view: CardView, program: Program) -> CardView:
    """The view of a coupon's own pass: the program's look, the offer's words."""
    row = session.execute(
        select(Coupon, Offer)
        .join(Offer, Offer.id == Coupon.offer_id)
        .where(Coupon.card_id == card.id)
    ).first()
    if row is None:
        raise LookupError(f"card {card.serial_number} is of kind coupon but has no coupon")
    coupon, offer = row
    min_spend = (
        format_minor(offer.min_spend_minor, program.currency) if offer.min_spend_minor else None
    )
    return replace(
        view,
        kind="coupon",
        barcode_message=coupon.barcode,
        barcode_alt_text=coupon.code,
        coupon=CouponView(
            offer_name=offer.name,
            offer_kind=offer.kind,
            value=coupon.value if coupon.value is not None else offer.value,
            item=offer.item,
            currency=program.currency,
            code=coupon.code,
            status=coupon.status,
            expires_at=coupon.expires_at,
            terms=offer.terms,
            min_spend=min_spend,
        ),
    )


def _messages(session: Session, member_id: int, program: Program) -> tuple[MessageLine, ...]:
    """The member's live messages, newest first, as many as a card shows."""
    zone = _zone(program)
    return tuple(
        MessageLine(id=m.message_id, text=m.text, sent_at=m.created_at.astimezone(zone))
        for m in live_messages(session, [member_id])[member_id][:KEPT]
    )


def _running_promotion(
    session: Session, program: Program, tier_name: str | None, now: datetime
) -> str | None:
    """The name of the biggest promotion of the program running now for every location, if any.

    A promotion limited to some locations is not shown: the card cannot know where it is used.
    """
    running = active_promotions(session, program, tier_name, None, now)
    if not running:
        return None
    return max(running, key=lambda p: (p.multiplier, -p.id)).name


def _active_coupons(
    session: Session, member_id: int, program: Program, now: datetime
) -> tuple[CouponLine, ...]:
    """The member's usable coupons, soonest to expire first."""
    rows = session.execute(
        select(Coupon.code, Coupon.expires_at, Offer.name)
        .join(Offer, Offer.id == Coupon.offer_id)
        .where(
            Coupon.member_id == member_id,
            Coupon.status == "active",
            or_(Coupon.expires_at.is_(None), Coupon.expires_at > now),
        )
        .order_by(Coupon.expires_at.is_(None), Coupon.expires_at, Coupon.id)
        .limit(LISTED_COUPONS)
    ).all()
    zone = _zone(program)
    return tuple(
        CouponLine(
            name=name,
            code=code,
            expires_at=expires.astimezone(zone) if expires is not None else None,
        )
        for code, expires, name in rows
    )


def find_card_by_serial(session: Session, serial: str) -> Card | None:
    """A card by its serial number, or None; an erased member's cards are not found."""
    return session.scalar(
        select(Card)
        .join(Member, Member.id == Card.member_id)
        .where(Card.serial_number == serial, Member.erased_at.is_(None))
    )
