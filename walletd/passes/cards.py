"""Turning a card row into the neutral CardView both wallets render."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from walletd.db import utcnow
from walletd.loyalty.discovery import stores_of
from walletd.loyalty.money import format_minor
from walletd.messages.store import KEPT, live_messages
from walletd.models import Brand, Card, CardMessage, Coupon, Member, Offer, Program, Tier
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
    return card_views(session, [card], now=now)[card.id]


def card_views(
    session: Session, cards: Sequence[Card], *, now: datetime | None = None
) -> dict[int, CardView]:
    """card_view of many cards by card id: a fixed number of queries for the loyalty cards,
    plus one per coupon card (its coupon and offer).

    The members with their programs and brands, their tiers, messages and coupons are read
    once for all the cards; the stores and the running promotion once per program (and tier).
    The worker signs a batch of changed cards' passes with it (walletd/passes/serving.py):
    reading them card by card took about nine queries each and most of a pass's signing time.
    """
    moment = now or utcnow()
    if not cards:
        return {}
    member_ids = sorted({card.member_id for card in cards})
    held = {
        member.id: (member, program, brand)
        for member, program, brand in session.execute(
            select(Member, Program, Brand)
            .join(Program, Program.id == Member.program_id)
            .join(Brand, Brand.id == Member.brand_id)
            .where(Member.id.in_(member_ids))
        ).all()
    }
    tier_ids = sorted({m.tier_id for m, _, _ in held.values() if m.tier_id is not None})
    tiers = (
        {t.id: t for t in session.scalars(select(Tier).where(Tier.id.in_(tier_ids))).all()}
        if tier_ids
        else {}
    )
    # Only a live member's loyalty card shows messages and coupons.
    showing = sorted(
        {
            card.member_id
            for card in cards
            if card.kind == "loyalty" and held[card.member_id][0].erased_at is None
        }
    )
    messages = live_messages(session, showing) if showing else {}
    coupons = _active_coupons(session, showing, moment)
    stores: dict[int, tuple[tuple[StoreView, ...], int | None]] = {}
    promotions: dict[tuple[int, str | None], str | None] = {}
    views = {}
    for card in cards:
        member, program, brand = held[card.member_id]
        tier = tiers.get(member.tier_id) if member.tier_id is not None else None
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
            view = replace(
                view, member_name="", message=CLOSED_MESSAGE, message_id=None, voided=True
            )
        else:
            if program.id not in stores:
                stores[program.id] = _stores(session, program)
            found, max_distance = stores[program.id]
            if found:
                view = replace(view, stores=found, max_distance=max_distance)
        if card.kind == "coupon":
            views[card.id] = _coupon_view(session, card, view, program)
            continue
        if view.voided:
            views[card.id] = view
            continue
        lines = _messages(messages.get(member.id, []), program)
        if lines:
            view = replace(view, message=lines[0].text, message_id=lines[0].id, messages=lines)
        running = (program.id, view.tier)
        if running not in promotions:
            promotions[running] = _running_promotion(session, program, view.tier, moment)
        views[card.id] = replace(
            view,
            stamps=(member.stamps, program.stamps_per_reward) if program.stamps_enabled else None,
            benefits=(tier.benefits or None) if tier else None,
            promotion=promotions[running],
            coupons=tuple(
                CouponLine(
                    name=name,
                    code=code,
                    expires_at=expires.astimezone(_zone(program)) if expires else None,
                )
                for code, expires, name in coupons.get(member.id, [])
            ),
        )
    return views


def _stores(session: Session, program: Program) -> tuple[tuple[StoreView, ...], int | None]:
    """The stores a card of the program surfaces near, and the maxDistance (a closed card: none)."""
    stores, max_distance = stores_of(session, program)
    if not stores:
        return (), None
    found = tuple(StoreView(s.latitude, s.longitude, s.relevant_text) for s in stores)
    return found, max_distance


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


def _messages(rows: Sequence[CardMessage], program: Program) -> tuple[MessageLine, ...]:
    """A member's live messages (newest first), as many as a card shows."""
    zone = _zone(program)
    return tuple(
        MessageLine(id=m.message_id, text=m.text, sent_at=m.created_at.astimezone(zone))
        for m in rows[:KEPT]
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
    session: Session, member_ids: Sequence[int], now: datetime
) -> dict[int, list[tuple[str, datetime | None, str]]]:
    """Each member's usable coupons (code, expiry, offer name), soonest to expire first, at
    most LISTED_COUPONS each: one query for all of them."""
    if not member_ids:
        return {}
    rank = (
        func.row_number()
        .over(
            partition_by=Coupon.member_id,
            order_by=(Coupon.expires_at.is_(None), Coupon.expires_at, Coupon.id),
        )
        .label("rank")
    )
    ranked = (
        select(Coupon.member_id, Coupon.code, Coupon.expires_at, Offer.name, rank)
        .join(Offer, Offer.id == Coupon.offer_id)
        .where(
            Coupon.member_id.in_(member_ids),
            Coupon.status == "active",
            or_(Coupon.expires_at.is_(None), Coupon.expires_at > now),
        )
        .subquery()
    )
    found: dict[int, list[tuple[str, datetime | None, str]]] = {}
    for member_id, code, expires, name, _ in session.execute(
        select(ranked)
        .where(ranked.c.rank <= LISTED_COUPONS)
        .order_by(ranked.c.member_id, ranked.c.rank)
    ).all():
        found.setdefault(member_id, []).append((code, expires, name))
    return found


def find_card_by_serial(session: Session, serial: str) -> Card | None:
    """A card by its serial number, or None; an erased member's cards are not found."""
    return session.scalar(
        select(Card)
        .join(Member, Member.id == Card.member_id)
        .where(Card.serial_number == serial, Member.erased_at.is_(None))
    )
