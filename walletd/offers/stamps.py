"""Stamp cards: a stamp per qualifying visit; a full card issues an offer and starts again."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from walletd.errors import ValidationError
from walletd.loyalty.brands import get_program
from walletd.loyalty.context import Context
from walletd.loyalty.money import parse_amount
from walletd.models import Member, Program
from walletd.models.offer import Coupon, Offer

MIN_STAMPS = 2
MAX_STAMPS = 50


@dataclass(frozen=True)
class StampResult:
    """The member's card after a visit: stamps now held, of how many, and a coupon when full."""

    count: int
    of: int
    coupon: Coupon | None = None
    completed: bool = False


def add_stamp(
    session: Session, program: Program, member: Member, amount_minor: int, ctx: Context
) -> StampResult | None:
    """Stamp a qualifying visit (None when the program has no stamp card).

    The caller holds the member's row lock. A full card issues the stamps offer with occasion
    f"stamps:{n}" (n counts the member's completed cards of that offer, so each is issued once)
    and starts again at zero, whether or not the offer could still be issued.
    """
    if not program.stamps_enabled:
        return None
    of = program.stamps_per_reward
    minimum = program.stamps_min_spend_minor
    if minimum is not None and amount_minor < minimum:
        return StampResult(count=member.stamps, of=of)
    member.stamps += 1
    if member.stamps < of:
        return StampResult(count=member.stamps, of=of)
    member.stamps = 0
    coupon = None
    offer = (
        session.get(Offer, program.stamps_offer_id) if program.stamps_offer_id is not None else None
    )
    if offer is not None and offer.status == "active" and offer.brand_id == member.brand_id:
        from walletd.offers.coupons import issue_coupon

        done = session.scalar(
            select(func.count())
            .select_from(Coupon)
            .where(
                Coupon.offer_id == offer.id, Coupon.member_id == member.id,
                Coupon.source == "stamps",
            )
        )  # fmt: skip
        coupon = issue_coupon(
            session, offer, member, source="stamps", occasion=f"stamps:{(done or 0) + 1}", ctx=ctx
        )
    return StampResult(count=0, of=of, coupon=coupon, completed=True)


def set_stamps(
    session: Session,
    brand_id: int,
    program_id: int,
    *,
    enabled: bool,
    stamps_per_reward: int,
    min_spend: object,
    offer_id: int | None,
) -> Program:
    """Switch a program's stamp card on or off and set its size, minimum spend and offer."""
    program = get_program(session, brand_id, program_id)
    if not MIN_STAMPS <= stamps_per_reward <= MAX_STAMPS:
        raise ValidationError(
            f"stamps_per_reward must be {MIN_STAMPS} to {MAX_STAMPS}", field="stamps_per_reward"
        )
    if offer_id is None and enabled:
        raise ValidationError("a stamp card needs an offer to issue", field="offer_id")
    if offer_id is not None:
        offer = session.scalar(
            select(Offer).where(
                Offer.id == offer_id, Offer.brand_id == brand_id, Offer.status == "active",
                Offer.program_id == program.id,
            )
        ) if 1 <= offer_id <= 2**31 - 1 else None  # fmt: skip
        if offer is None:
            raise ValidationError(
                "offer_id is not an active offer of this program", field="offer_id"
            )
    program.stamps_enabled = enabled
    program.stamps_per_reward = stamps_per_reward
    program.stamps_min_spend_minor = (
        None if min_spend is None else parse_amount(min_spend, program.currency, field="min_spend")
    )
    program.stamps_offer_id = offer_id
    session.flush()
    return program
